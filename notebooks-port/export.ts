/**
 * Step 7: export trained weights for shipping: model/weights/{config.json, vocab.json,
 * decoder.json, decoder.bin (float16)} plus the training section of model-card.json.
 *   npm run pipeline:export -- --from=checkpoints/sat-combo-ft/best
 * A comma-separated --from exports an ensemble: decoder.bin, decoder-2.bin, ... and config.members
 * (the shipped model: --from=checkpoints/sat-combo-ft/best,checkpoints/sat-combo-s3-ft/best).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_MODEL_DIR } from "../model/index.ts";
import { loadArrays, saveArrays } from "../model/weights.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { datasetName, loadDataset } from "./lib/dataset.ts";
import { REPO_ROOT } from "./lib/flickr8k.ts";
import { ancestry, drawCurves, readCheckpointState } from "./lib/trainer.ts";
import type { ModelCard } from "../model/model-card.ts";
import { writeModelCardMarkdown } from "./lib/model-card.ts";

const defaults = {
  from: "checkpoints/sat-combo-ft/best", // a checkpoint folder (its weights and its run's state.json, so it can be anywhere; older checkpoints keep state.json one level up)
  out: DEFAULT_MODEL_DIR,
  dtype: "float16", // or float32
};

/** The settings the card lists for each run (older runs may lack the newer ones). */
const HYPER_PARAMETERS = ["batch", "lr", "lrDecay", "dropout", "attnReg", "clip", "trainEmbeddings", "glove", "workers", "patience", "scst", "scstXent", "seed", "tags", "only"] as const;

runStep(async () => {
  const cfg = parseConfig(defaults);
  if (cfg.dtype !== "float16" && cfg.dtype !== "float32") throw new Error(`--dtype must be float16 or float32`);
  // Several checkpoints (comma-separated, trained apart with the same architecture) make an ensemble.
  const froms = cfg.from.split(",").map((f) => path.resolve(REPO_ROOT, f.trim()));
  for (const from of froms) if (!existsSync(path.join(from, "params.json"))) throw new Error(`no checkpoint at ${from}`);
  const states = froms.map(readCheckpointState);
  const state = states[0];
  for (const [i, s] of states.entries()) {
    if (JSON.stringify(s.decoder) !== JSON.stringify(state.decoder)) throw new Error(`${froms[i]} has another architecture than ${froms[0]}: an ensemble needs one`);
  }
  const { data, vocab } = loadDataset();
  mkdirSync(cfg.out, { recursive: true });
  const members = froms.map((_, i) => (i === 0 ? "decoder" : `decoder-${i + 1}`));
  froms.forEach((from, i) => saveArrays(path.join(cfg.out, members[i]), loadArrays(path.join(from, "params")), cfg.dtype as "float16" | "float32"));
  for (const f of readdirSync(cfg.out)) if (/^decoder-\d+\.(bin|json)$/.test(f) && !members.includes(f.replace(/\.\w+$/, ""))) rmSync(path.join(cfg.out, f)); // an earlier, larger ensemble
  writeFileSync(path.join(cfg.out, "config.json"), JSON.stringify(members.length > 1 ? { ...state.decoder, members } : state.decoder, null, 2) + "\n");
  writeFileSync(path.join(cfg.out, "vocab.json"), JSON.stringify(vocab.toJSON()) + "\n");
  // Training facts for the model card; evaluate.ts adds the measured scores.
  const cardFile = path.join(cfg.out, "model-card.json");
  const card: ModelCard = existsSync(cardFile) ? JSON.parse(readFileSync(cardFile, "utf8")) : {};
  // A fine-tuned run starts from another run's checkpoint, which may itself be fine-tuned: record
  // every run back to the first, oldest first, for each member (trainer.ts ancestry).
  const chains = states.map((last) => [...ancestry(last), last]);
  card.architecture = members.length > 1 ? { ...state.decoder, members } : state.decoder;
  // Augmentation is a property of each member's cross-entropy run (the first of its chain):
  // say so per member when they differ.
  const mirrored = chains.map((c) => Boolean(c[0].config.flip));
  const augmentation = mirrored.every((m) => m === mirrored[0])
    ? (mirrored[0] ? "mirrored images (left/right swapped in captions)" : "none")
    : chains.map((c, i) => `${c[0].config.name}: ${mirrored[i] ? "mirrored images" : "none"}`).join("; ");
  card.data = {
    dataset: datasetName(data), train: data.splits.train.length, dev: data.splits.dev.length, test: data.splits.test.length,
    vocabulary: vocab.size, minCount: data.minCount, augmentation,
  };
  // Members may share runs (two fine-tunings of one model): each run is recorded once.
  const runs = [...new Map(chains.flat().map((s) => [s.config.name, s])).values()];
  card.training = runs.map((s) => ({
    run: s.config.name, init: s.config.init, epochs: s.epoch, bestEpoch: s.best.epoch, bestDevCiderGreedy: s.best.cider,
    seconds: Math.round(s.trainSeconds), tokensPerSec: Math.round(s.tokens / Math.max(1, s.trainSeconds)),
    hyperParameters: Object.fromEntries(HYPER_PARAMETERS.filter((k) => k in s.config).map((k) => [k, s.config[k]])),
    changes: s.changes ?? [],
    history: s.history,
  }));
  // The loss and score curves of every run travel with the weights, as curves-<run>.png, drawn from
  // the runs' records, so a person can open them next to the card. Pictures of runs no longer
  // exported are removed.
  for (const f of readdirSync(cfg.out)) if (/^curves-.+\.png$|^(training|finetune\d*)-curves\.png$/.test(f)) rmSync(path.join(cfg.out, f));
  card.curves = [];
  for (const s of runs) {
    const file = path.join(cfg.out, `curves-${s.config.name}.png`);
    await drawCurves(s, file);
    card.curves.push(path.relative(path.join(cfg.out, ".."), file));
  }
  const bytes = members.reduce((sum, m) => sum + statSync(path.join(cfg.out, `${m}.bin`)).size, 0);
  card.weights = { dtype: cfg.dtype, bytes, from: froms.map((f) => path.relative(REPO_ROOT, f)).join(",") };
  writeFileSync(cardFile, JSON.stringify(card, null, 2) + "\n");
  if (path.resolve(cfg.out) === DEFAULT_MODEL_DIR) writeModelCardMarkdown(cfg.out);
  console.log(`exported ${froms.join(", ")} -> ${cfg.out} (${members.length > 1 ? `an ensemble of ${members.length}, ` : ""}${cfg.dtype}, ${(bytes / 1e6).toFixed(1)} MB)`);
});
