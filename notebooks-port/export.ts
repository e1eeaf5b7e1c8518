/**
 * Step 7: export trained weights for shipping: model/weights/{config.json, vocab.json,
 * decoder.json, decoder.bin (float16)} plus the training section of model-card.json.
 *   npm run pipeline:export -- --from=checkpoints/sat-combo-ft/best
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_MODEL_DIR } from "../model/index.ts";
import { loadArrays, saveArrays } from "../model/weights.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { loadDataset } from "./lib/dataset.ts";
import { REPO_ROOT } from "./lib/flickr8k.ts";
import { RUNS_DIR } from "./lib/paths.ts";
import { writeModelCardMarkdown } from "./lib/model-card.ts";

const defaults = {
  from: "checkpoints/sat-combo-ft/best", // a checkpoint folder (its parent holds state.json)
  out: DEFAULT_MODEL_DIR,
  dtype: "float16", // or float32
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const from = path.resolve(REPO_ROOT, cfg.from);
  const stateFile = path.join(path.dirname(from), "state.json");
  if (!existsSync(path.join(from, "params.json"))) throw new Error(`no checkpoint at ${from}`);
  if (cfg.dtype !== "float16" && cfg.dtype !== "float32") throw new Error(`--dtype must be float16 or float32`);
  const state = JSON.parse(readFileSync(stateFile, "utf8"));
  const { data, vocab } = loadDataset();
  const params = loadArrays(path.join(from, "params"));
  mkdirSync(cfg.out, { recursive: true });
  saveArrays(path.join(cfg.out, "decoder"), params, cfg.dtype);
  writeFileSync(path.join(cfg.out, "config.json"), JSON.stringify(state.decoder, null, 2) + "\n");
  writeFileSync(path.join(cfg.out, "vocab.json"), JSON.stringify(vocab.toJSON()) + "\n");
  // Training facts for the model card; evaluate.ts adds the measured scores.
  const cardFile = path.join(cfg.out, "model-card.json");
  const card = existsSync(cardFile) ? JSON.parse(readFileSync(cardFile, "utf8")) : {};
  // A fine-tuned run starts from another run's checkpoint, which may itself be fine-tuned: record
  // every run back to the first, oldest first.
  const chain = [state];
  for (;;) {
    const init = chain[0].config.init;
    const base = init && !["auto", "scratch"].includes(init) ? path.join(path.resolve(REPO_ROOT, init), "..", "state.json") : null;
    if (!base || !existsSync(base) || chain.length > 8) break;
    chain.unshift(JSON.parse(readFileSync(base, "utf8")));
  }
  card.architecture = state.decoder;
  card.data = {
    dataset: "Flickr8k", train: data.splits.train.length, dev: data.splits.dev.length, test: data.splits.test.length,
    vocabulary: vocab.size, minCount: data.minCount, augmentation: state.config.flip ? "mirrored images (left/right swapped in captions)" : "none",
  };
  card.training = chain.map((s) => ({
    run: s.config.name, init: s.config.init, epochs: s.epoch, bestEpoch: s.best.epoch, bestDevCiderGreedy: s.best.cider,
    seconds: Math.round(s.trainSeconds), tokensPerSec: Math.round(s.tokens / Math.max(1, s.trainSeconds)),
    hyperParameters: Object.fromEntries(["batch", "lr", "lrDecay", "dropout", "attnReg", "clip", "trainEmbeddings", "glove", "workers", "patience", "scst", "scstXent"].filter((k) => k in s.config).map((k) => [k, s.config[k]])),
    changes: s.changes ?? [],
    history: s.history,
  }));
  // The loss and score curves of every run in the chain travel with the weights, so a person can
  // open them next to the card: training-curves.png for the first run, finetune-curves.png after it.
  card.curves = chain.flatMap((s, i) => {
    const src = path.join(RUNS_DIR, s.config.name, "curves.png");
    if (!existsSync(src)) return [];
    const dst = path.join(cfg.out, i === 0 ? "training-curves.png" : i === 1 ? "finetune-curves.png" : `finetune${i}-curves.png`);
    copyFileSync(src, dst);
    return [path.relative(path.join(cfg.out, ".."), dst)];
  });
  card.weights = { dtype: cfg.dtype, bytes: readFileSync(path.join(cfg.out, "decoder.bin")).length, from: path.relative(REPO_ROOT, from) };
  writeFileSync(cardFile, JSON.stringify(card, null, 2) + "\n");
  if (path.resolve(cfg.out) === DEFAULT_MODEL_DIR) writeModelCardMarkdown(cfg.out);
  console.log(`exported ${from} -> ${cfg.out} (${cfg.dtype}, ${(card.weights.bytes / 1e6).toFixed(1)} MB)`);
});
