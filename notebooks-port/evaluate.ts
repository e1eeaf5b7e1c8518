/**
 * Step 6: evaluate a shipped model end to end (image file -> encoder -> decoder -> search) on a
 * Flickr8k split, with pycocoevalcap-faithful BLEU-1..4, ROUGE-L and CIDEr-D, plus mean length and
 * the share of distinct captions. Writes runs/eval/<split>-<model>.json; with --card it also records
 * the scores in the model card (model-card.json and MODEL_CARD.md).
 *   npm run pipeline:evaluate -- --split=test --beams=1,3 --card
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_MODEL_DIR, loadCaptioner } from "../model/index.ts";
import { tokenize } from "../model/text.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { DEFAULT_DATA_DIR, readFlickr8k } from "./lib/flickr8k.ts";
import { writeModelCardMarkdown } from "./lib/model-card.ts";
import { scoreCaptions } from "./lib/metrics.ts";
import { RUNS_DIR } from "./lib/paths.ts";
import { Progress } from "./lib/progress.ts";

const defaults = {
  data: DEFAULT_DATA_DIR,
  model: DEFAULT_MODEL_DIR,
  split: "test", // train | dev | test
  beams: "1,3", // beam sizes to evaluate, comma-separated
  lengthPenalty: -1, // >= 0: beam ranking by logP / len^this (tune it on dev, not test); -1: the model's default
  limit: 0, // > 0: only the first N images (quick checks)
  card: false, // write the scores into the model card
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const ds = readFlickr8k(cfg.data);
  const split = ds.splits[cfg.split as keyof typeof ds.splits];
  if (!split) throw new Error(`--split must be train, dev or test`);
  const images = cfg.limit ? split.slice(0, cfg.limit) : split;
  const refs = images.map((f) => ds.captions.get(f)!.map(tokenize));
  const captioner = await loadCaptioner({ modelDir: cfg.model });
  const results: Record<string, unknown> = {};
  for (const beam of cfg.beams.split(",").map(Number)) {
    const progress = new Progress(`${cfg.split} beam ${beam}`, images.length, "img");
    const cands: string[][] = [];
    const ms: number[] = [];
    const samples: { file: string; caption: string }[] = [];
    for (const f of images) {
      const r = await captioner.caption(path.join(ds.imageDir, f), { beam, ...(cfg.lengthPenalty >= 0 ? { lengthPenalty: cfg.lengthPenalty } : {}) });
      cands.push(r.words.map((w) => w.word));
      ms.push(r.ms);
      if (samples.length < 20) samples.push({ file: f, caption: r.caption });
      progress.tick();
    }
    progress.end();
    const s = scoreCaptions(cands, refs);
    const distinct = new Set(cands.map((c) => c.join(" "))).size / cands.length;
    const meanLength = cands.reduce((a, c) => a + c.length, 0) / cands.length;
    ms.sort((a, b) => a - b);
    const row = { ...s, meanLength, distinct, medianMs: ms[ms.length >> 1], images: images.length };
    results[`beam${beam}`] = { ...row, samples };
    console.log(`${cfg.split} beam ${beam}: ` + Object.entries(row).map(([k, v]) => `${k} ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : v}`).join(", "));
  }
  captioner.dispose();
  const out = path.join(RUNS_DIR, "eval");
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `${cfg.split}-${path.basename(cfg.model)}${cfg.limit ? `-first${cfg.limit}` : ""}${cfg.lengthPenalty >= 0 ? `-lp${cfg.lengthPenalty}` : ""}.json`);
  writeFileSync(file, JSON.stringify({ split: cfg.split, model: cfg.model, results }, null, 2));
  console.log(`wrote ${file}`);
  if (cfg.card) {
    if (cfg.limit || cfg.lengthPenalty >= 0) throw new Error("--card records the model's defaults on the whole split (drop --limit and --lengthPenalty)");
    const cardFile = path.join(cfg.model, "model-card.json");
    const card = JSON.parse(readFileSync(cardFile, "utf8"));
    card.scores = { ...(card.scores ?? {}), [cfg.split]: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ...(v as object), samples: undefined }])) };
    writeFileSync(cardFile, JSON.stringify(card, null, 2) + "\n");
    writeModelCardMarkdown(cfg.model);
    console.log(`updated ${cardFile} and MODEL_CARD.md`);
  }
});
