/**
 * Step 6: evaluate a shipped model end to end (image file -> encoder -> decoder -> search) on a
 * Flickr8k split and on coco-dev (408 everyday COCO photos, evaluated whole), with
 * pycocoevalcap-faithful BLEU-1..4, ROUGE-L and CIDEr-D, object recall, mean length, the share of
 * distinct captions and the median time per photo. Each set's human agreement (caption 0 against
 * the others, same scorer) is printed and saved next to it. Writes
 * runs/eval/<set>[-<split>]-<model>[-no-objects][-firstN][-lpX].json; with --card it also records the
 * scores in the model card (model-card.json and MODEL_CARD.md).
 *   npm run pipeline:evaluate -- --set=both --beams=1,3 --card
 *   npm run pipeline:evaluate -- --set=coco-dev --beams=3 --objects=false   # the Flickr8k-only behaviour
 *   npm run pipeline:evaluate -- --set=both --split=dev --beams=3 --decoderWeights=float32   # the reference's numbers
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { GROUNDING_DEFAULTS, type GroundingSettings } from "../model/grounding.ts";
import { DEFAULT_MODEL_DIR, loadCaptioner } from "../model/index.ts";
import type { Captioner } from "../model/types.ts";
import { tokenize } from "../model/text.ts";
import { DEFAULT_COCO_DEV_DIR, findCocoCaptionFile, readCoco } from "./lib/coco.ts";
import { ConfigError, parseConfig, runStep } from "./lib/config.ts";
import { DataError, DEFAULT_DATA_DIR, readFlickr8k } from "./lib/flickr8k.ts";
import type { CardScores, ModelCard } from "../model/model-card.ts";
import { writeModelCardMarkdown } from "./lib/model-card.ts";
import { humanAgreement, scoreCaptions } from "./lib/metrics.ts";
import { RUNS_DIR } from "./lib/paths.ts";
import { Progress } from "./lib/progress.ts";

const defaults = {
  data: DEFAULT_DATA_DIR, // Flickr8k
  coco: DEFAULT_COCO_DEV_DIR, // coco-dev: its folder or its captions json
  model: DEFAULT_MODEL_DIR,
  set: "both", // flickr8k | coco-dev | both
  split: "test", // the Flickr8k split: train | dev | test (coco-dev has none: all of it is scored)
  beams: "1,3", // beam sizes to evaluate, comma-separated
  objects: true, // detect objects and ground the caption in them; false = the Flickr8k-only captioner (the ablation)
  lengthPenalty: -1, // >= 0: beam ranking by logP / len^this (tune it on dev, not test); -1: the model's default
  limit: 0, // > 0: only the first N images of each set (quick checks)
  grounding: "", // grounding settings to try (tune them on dev sets), e.g. useScore=0.3,constraints=2 (model/grounding.ts); "": the model's defaults
  decoderWeights: "int8", // the decoder's matrices on onnxruntime: int8 (the app's default) or float32 (the tfjs reference's numbers)
  card: false, // write the scores into the model card
};
type Config = typeof defaults;

/** "useScore=0.3,constraints=2" -> { useScore: 0.3, constraints: 2 }, checked against the settings that exist. */
function parseGrounding(spec: string): Partial<GroundingSettings> {
  const out: Partial<GroundingSettings> = {};
  for (const part of spec.split(",").filter(Boolean)) {
    const [key, value] = part.split("=");
    if (!(key in GROUNDING_DEFAULTS)) throw new ConfigError(`--grounding: unknown setting "${key}"; known: ${Object.keys(GROUNDING_DEFAULTS).join(", ")}`);
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n)) throw new ConfigError(`--grounding: ${key} needs a number, got "${value}"`);
    out[key as keyof GroundingSettings] = n;
  }
  return out;
}

/** One evaluation set: photo paths and their tokenised references, in a fixed order. */
interface EvalSet { name: string; label: string; cardKey: string; images: { file: string; path: string }[]; refs: string[][][] }

function flickr8kSet(cfg: Config): EvalSet {
  const ds = readFlickr8k(cfg.data);
  const split = ds.splits[cfg.split as keyof typeof ds.splits];
  if (!split) throw new ConfigError(`--split must be train, dev or test`);
  const files = cfg.limit ? split.slice(0, cfg.limit) : split;
  // The card keeps the Flickr8k scores under the split's name ("test"): the studio reads scores.test.
  return { name: `flickr8k-${cfg.split}`, label: `Flickr8k ${cfg.split}`, cardKey: cfg.split,
    images: files.map((file) => ({ file, path: path.join(ds.imageDir, file) })), refs: files.map((f) => ds.captions.get(f)!.map(tokenize)) };
}

function cocoDevSet(cfg: Config): EvalSet {
  const file = cfg.coco.endsWith(".json") ? cfg.coco : findCocoCaptionFile(cfg.coco);
  if (!file) throw new DataError(`no captions_*.json in ${cfg.coco} (pass --coco=DIR or the json)`);
  // No split: every photo, in the caption file's order (dev and test shares of 0 put all in "train").
  const ds = readCoco(file, { devFraction: 0, testFraction: 0 });
  const files = cfg.limit ? ds.splits.train.slice(0, cfg.limit) : ds.splits.train;
  return { name: "coco-dev", label: "coco-dev", cardKey: "coco-dev",
    images: files.map((f) => ({ file: f, path: path.join(ds.imageDir, f) })), refs: files.map((f) => ds.captions.get(f)!.map(tokenize)) };
}

const fmtRow = (row: Record<string, number>) =>
  Object.entries(row).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(", ");

async function evaluateSet(captioner: Captioner, set: EvalSet, cfg: Config): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {};
  for (const beam of cfg.beams.split(",").map(Number)) {
    if (!Number.isInteger(beam) || beam < 1) throw new ConfigError(`--beams must be positive integers, got "${cfg.beams}"`);
    const progress = new Progress(`${set.label} beam ${beam}${cfg.objects ? "" : " no objects"}`, set.images.length, "img");
    const cands: string[][] = [];
    const ms: number[] = [];
    let detected = 0;
    // Every caption goes to the results file (for reading errors later); the card keeps none.
    const captions: { file: string; caption: string; objects: string[] }[] = [];
    for (const img of set.images) {
      const r = await captioner.caption(img.path, { beam, objects: cfg.objects, ...(cfg.lengthPenalty >= 0 ? { lengthPenalty: cfg.lengthPenalty } : {}) });
      cands.push(r.words.map((w) => w.word));
      ms.push(r.ms);
      detected += r.objects?.length ?? 0; // a model without the detector returns none
      captions.push({ file: img.file, caption: r.caption, objects: (r.objects ?? []).map((o) => o.label) });
      progress.tick();
    }
    progress.end();
    const s = scoreCaptions(cands, set.refs);
    const distinct = new Set(cands.map((c) => c.join(" "))).size / cands.length;
    const meanLength = cands.reduce((a, c) => a + c.length, 0) / cands.length;
    ms.sort((a, b) => a - b);
    const row = { ...s, meanLength, distinct, medianMs: ms[ms.length >> 1], meanObjects: detected / cands.length, images: set.images.length };
    results[`beam${beam}`] = { ...row, captions };
    console.log(`${set.label} beam ${beam}${cfg.objects ? "" : " (no objects)"}: ${fmtRow(row)}`);
  }
  return results;
}

runStep(async () => {
  const cfg = parseConfig(defaults);
  if (!["flickr8k", "coco-dev", "both"].includes(cfg.set)) throw new ConfigError(`--set must be flickr8k, coco-dev or both, got "${cfg.set}"`);
  if (cfg.decoderWeights !== "int8" && cfg.decoderWeights !== "float32") throw new ConfigError(`--decoderWeights must be int8 or float32, got "${cfg.decoderWeights}"`);
  if (cfg.card && (cfg.limit || cfg.lengthPenalty >= 0 || cfg.grounding || cfg.decoderWeights !== "int8")) throw new ConfigError("--card records the model's defaults on whole sets (drop --limit, --lengthPenalty, --grounding and --decoderWeights)");
  const grounding = parseGrounding(cfg.grounding);
  // Read the data before loading the model, so a bad path fails at once.
  const sets = [...(cfg.set !== "coco-dev" ? [flickr8kSet(cfg)] : []), ...(cfg.set !== "flickr8k" ? [cocoDevSet(cfg)] : [])];
  const human = Object.fromEntries(sets.map((set) => {
    const { images, ...h } = humanAgreement(set.refs);
    console.log(`${set.label} human (caption 0 against the other ${set.refs[0].length - 1}, ${images} images): ${fmtRow(h)}`);
    return [set.cardKey, { ...h, images }];
  }));
  const captioner = await loadCaptioner({ modelDir: cfg.model, grounding, decoderWeights: cfg.decoderWeights });
  const out = path.join(RUNS_DIR, "eval");
  mkdirSync(out, { recursive: true });
  const suffix = `${cfg.objects ? "" : "-no-objects"}${cfg.limit ? `-first${cfg.limit}` : ""}${cfg.lengthPenalty >= 0 ? `-lp${cfg.lengthPenalty}` : ""}${cfg.grounding ? `-g-${cfg.grounding.replace(/[^\w.=,-]/g, "").replace(/[=,]/g, "_")}` : ""}${cfg.decoderWeights === "int8" ? "" : `-${cfg.decoderWeights}`}`;
  const scores: Record<string, Record<string, CardScores>> = {};
  for (const set of sets) {
    const results = await evaluateSet(captioner, set, cfg);
    const file = path.join(out, `${set.name}-${path.basename(cfg.model)}${suffix}.json`);
    writeFileSync(file, JSON.stringify({ set: set.name, model: cfg.model, objects: cfg.objects, human: human[set.cardKey], results }, null, 2));
    console.log(`wrote ${file}`);
    scores[set.cardKey + (cfg.objects ? "" : "-no-objects")] = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ...(v as CardScores), captions: undefined } as CardScores]));
  }
  captioner.dispose();
  if (cfg.card) {
    const cardFile = path.join(cfg.model, "model-card.json");
    const card = JSON.parse(readFileSync(cardFile, "utf8")) as ModelCard;
    // scores.test stays the Flickr8k test split (the studio shows it); coco-dev and the
    // objects:false ablation get keys of their own, so no run overwrites another's.
    card.scores = { ...(card.scores ?? {}), ...scores };
    card.human = { ...(card.human ?? {}), ...human };
    writeFileSync(cardFile, JSON.stringify(card, null, 2) + "\n");
    writeModelCardMarkdown(cfg.model);
    console.log(`updated ${cardFile} and MODEL_CARD.md`);
  }
});
