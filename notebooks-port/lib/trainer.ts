/**
 * The training loop shared by train.ts and finetune.ts (fine-tuning is training from trained
 * weights with other settings, as in nanoGPT). Reads top to bottom: settings, then train(): the
 * state, the data and replicas, and one plain loop of epochs and steps with evaluation,
 * checkpoints, learning-rate decay and early stopping; each piece it calls (batching, self-critical
 * items, the gradient average, dev evaluation, checkpoints) is a named function below it.
 * A checkpoint folder (latest/, best/) holds its weights and the run's record (state.json), so it
 * can be copied elsewhere and exported on its own.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { DEFAULT_CONFIG, type DecoderConfig } from "../../model/config.ts";
import { paramShapes } from "../../model/decoder.ts";
import type { ModelCard } from "../../model/model-card.ts";
import { END, FUNCTION_WORDS, START, type Vocabulary } from "../../model/vocab.ts";
import { loadDataset, type PreparedDataset, type PreparedImage } from "./dataset.ts";
import { loadFeatures, loadTags, readIndex, type FeatureIndex } from "./features.ts";
import { CiderD, scoreCaptions } from "./metrics.ts";
import { REPO_ROOT } from "./flickr8k.ts";
import { CHECKPOINT_DIR, EMBEDDING_FILE, RUNS_DIR } from "./paths.ts";
import { writeChart } from "./plot.ts";
import { fmt, Progress } from "./progress.ts";
import type { WorkerInit, WorkerRequest } from "./train-worker.ts";

export const TRAIN_DEFAULTS = {
  name: "sat-combo", // run name: checkpoints/<name>/ and runs/<name>/
  encoder: "centernet+mnv2-256", // see model/encoder.ts; the model card compares it with CenterNet alone
  embedDim: DEFAULT_CONFIG.embedDim,
  hiddenDim: DEFAULT_CONFIG.hiddenDim,
  attnDim: DEFAULT_CONFIG.attnDim,
  outDim: DEFAULT_CONFIG.outDim,
  maxLen: DEFAULT_CONFIG.maxLen,
  init: "auto", // auto: start fresh, or resume checkpoints/<name> if present; scratch: always fresh; or a checkpoint folder to start from (unless resuming)
  workers: 2, // data-parallel replicas, one per core
  batch: 128, // captions per step, split across workers
  lr: 8e-4,
  lrDecay: 0.7, // multiply the learning rate after an epoch without a better dev CIDEr-D
  epochs: 20,
  patience: 4, // stop after this many epochs without a better dev CIDEr-D
  dropout: 0.5,
  attnReg: 1, // doubly stochastic attention penalty (lambda)
  clip: 5, // global gradient-norm clip
  flip: true, // train on mirrored images too (with left/right swapped in the caption)
  glove: true, // start word vectors from GloVe
  trainEmbeddings: false, // GloVe vectors stay frozen unless fine-tuning
  scst: 0, // > 0: self-critical training (Rennie et al. 2017) with this many sampled captions per image, rewarded by CIDEr-D
  scstXent: 0, // self-critical only: weight of the teacher-forced loss on one reference caption per image, mixed into each batch (an anchor against collapse)
  maxImages: 0, // > 0: use only this many train and dev images (quick runs, tests)
  saveEvery: 100, // steps between mid-epoch checkpoints
  evalEvery: 0, // > 0: also measure dev every this many steps within an epoch and keep the best weights seen (fine-tuning moves fast)
  logEvery: 20, // steps between training-loss points on the curve
  seed: 1,
  tags: false, // the decoder also reads the detection head's class scores (model/config.ts tags; the feature cache must have them)
  only: "", // comma-separated weights to train, the rest frozen (e.g. tagIn: teach a new input without moving the trained rest); empty: all but frozen word vectors
};
export type TrainConfig = typeof TRAIN_DEFAULTS;

interface EpochRecord { epoch: number; trainXent: number; trainReward?: number; devXent: number; bleu4: number; cider: number; lr: number; seconds: number; tokensPerSec: number; /** Peak resident memory of the whole process (replicas are threads in it) so far. */ peakRssMB?: number }
export interface State {
  epoch: number; stepInEpoch: number; step: number; lr: number;
  best: { cider: number; epoch: number }; badEpochs: number;
  history: EpochRecord[]; steps: [number, number][]; trainSeconds: number; tokens: number;
  config: TrainConfig; decoder: DecoderConfig;
  /** Settings changed when resuming (e.g. a lower dropout from epoch 9), so the record stays honest. */
  changes?: { atEpoch: number; from: Partial<TrainConfig>; to: Partial<TrainConfig> }[];
  /** The records of the runs this one started from (--init), oldest first, so a checkpoint folder carries its whole history. */
  ancestors?: State[];
}

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Time-major teacher-forcing arrays for a list of captions (ids without start/end). */
export function toBatch(caps: number[][]): { input: Int32Array; target: Int32Array; T: number; B: number; tokens: number } {
  const B = caps.length, T = Math.max(...caps.map((c) => c.length)) + 1;
  const input = new Int32Array(T * B), target = new Int32Array(T * B);
  let tokens = 0;
  caps.forEach((c, b) => {
    for (let t = 0; t <= c.length; t++) {
      input[t * B + b] = t === 0 ? START : c[t - 1];
      target[t * B + b] = t < c.length ? c[t] : END;
      tokens++;
    }
  });
  return { input, target, T, B, tokens };
}

class Replica {
  private waiting: ((m: any) => void) | null = null; // replies come one at a time, in order
  constructor(readonly worker: Worker) {
    worker.on("message", (m) => {
      if (m.type === "error") {
        console.error(`\ntraining worker failed:\n${m.message}`);
        process.exit(1);
      }
      const w = this.waiting;
      this.waiting = null;
      w?.(m);
    });
    worker.on("error", (e) => { console.error("\ntraining worker crashed:", e); process.exit(1); });
  }
  call(msg: WorkerRequest | null): Promise<any> {
    return new Promise((res) => {
      this.waiting = res;
      if (msg) this.worker.postMessage(msg);
    });
  }
}

/** A training example: a row of the shared feature memory, a caption, and its loss weight (self-critical: the advantage). */
interface Item { row: number; ids: number[]; weight: number }
interface Caption { img: number; ids: number[] }

/** What one run reads: its settings, its data (features in shared memory) and the replicas that hold the model. */
interface Run {
  cfg: TrainConfig;
  vocab: Vocabulary;
  trainImgs: PreparedImage[];
  devImgs: PreparedImage[];
  captions: Caption[];
  devCaps: Caption[];
  /** Each training image's reference captions as ids (the self-critical anchor). */
  refIds: number[][][];
  /** "left" <-> "right", for the captions of mirrored images. */
  swap: Map<number, number>;
  cider: CiderD | null;
  /** Function words, which the app's repeat rule lets a caption use more than once. */
  repeatable: number[];
  replicas: Replica[];
  /** Each replica's gradient, and the averaged one they all apply (shared memory). */
  grads: Float32Array[];
  avg: Float32Array;
}

export async function train(cfg: TrainConfig): Promise<State> {
  if (cfg.scst && (cfg.scst < 2 || cfg.flip)) throw new Error("--scst needs at least 2 samples per image and --flip=false");
  const ckptDir = path.join(CHECKPOINT_DIR, cfg.name);
  const runDir = path.join(RUNS_DIR, cfg.name);
  mkdirSync(ckptDir, { recursive: true });
  mkdirSync(runDir, { recursive: true });
  const { data, vocab } = loadDataset();
  const index = readIndex(cfg.encoder);
  if (cfg.tags && !index.tags) throw Object.assign(new Error(`--tags: the feature cache for ${cfg.encoder} has no class scores: its encoder has no detection head, or the cache was made before they were cached (delete it and rerun \`npm run pipeline:features\`)`), { name: "DataError" });
  const decoder: DecoderConfig = {
    encoder: index.encoder, grid: index.grid, featureDim: index.channels, vocabSize: vocab.size,
    embedDim: cfg.embedDim, hiddenDim: cfg.hiddenDim, attnDim: cfg.attnDim, outDim: cfg.outDim, maxLen: cfg.maxLen,
    ...(cfg.tags ? { tags: index.tags ?? 0 } : {}),
  };
  const { state, startFrom, resuming } = startState(cfg, ckptDir, decoder);
  const run = await startRun(cfg, data, vocab, index, decoder, state, startFrom, resuming);
  try {
    await trainLoop(cfg, run, state, ckptDir, runDir, startFrom);
  } finally {
    await Promise.all(run.replicas.map((r) => r.worker.terminate()));
  }
  console.log(`done: best dev CIDEr-D ${state.best.cider.toFixed(4)} at epoch ${state.best.epoch}; ${fmt(state.trainSeconds)} of training, ${(state.tokens / Math.max(1, state.trainSeconds)).toFixed(0)} tok/s overall`);
  console.log(`best weights: ${path.join(ckptDir, "best")}; curves: ${path.join(runDir, "curves.png")}`);
  return state;
}

/** The loop: epochs of steps, with dev evaluation, checkpoints, learning-rate decay and early stopping. */
async function trainLoop(cfg: TrainConfig, run: Run, state: State, ckptDir: string, runDir: string, startFrom: string | null) {
  const record = async () => {
    saveState(ckptDir, state);
    await writeCurves(state, runDir);
  };

  if (state.epoch === 0 && state.stepInEpoch === 0 && startFrom) {
    // Fine-tuning: measure the starting point so the gain can be reported. If fine-tuning never
    // beats it, "best" is the starting point.
    const ev = await evaluateDev(run);
    process.stderr.write(`starting point: dev xent ${ev.devXent.toFixed(3)} BLEU-4 ${ev.bleu4.toFixed(4)} CIDEr-D ${ev.cider.toFixed(4)}\n`);
    state.history.push({ epoch: 0, trainXent: NaN, devXent: ev.devXent, bleu4: ev.bleu4, cider: ev.cider, lr: state.lr, seconds: 0, tokensPerSec: 0 });
    state.best = { cider: ev.cider, epoch: 0 };
    await saveWeights(run, path.join(ckptDir, "best"));
    saveState(ckptDir, state);
  }
  while (state.epoch < cfg.epochs && state.badEpochs < cfg.patience) {
    const { batches, flips } = epochBatches(run, rng(cfg.seed * 1000 + state.epoch));
    const progress = new Progress(`epoch ${state.epoch + 1}/${cfg.epochs}`, batches.length, "steps");
    progress.done = state.stepInEpoch;
    const t0 = performance.now();
    let mark = t0; // time up to `mark` is already counted in state.trainSeconds
    const countTime = () => { const now = performance.now(); state.trainSeconds += (now - mark) / 1000; mark = now; };
    let epochTokens = 0, xentSum = 0, stepsRun = 0, rewardSum = 0;
    let evalMs = 0; // dev measurements within the epoch, left out of its tokens/s
    for (let bi = state.stepInEpoch; bi < batches.length; bi++) {
      let items: Item[];
      if (cfg.scst) {
        const sc = await selfCriticalItems(run, batches[bi], state.step);
        items = sc.items;
        rewardSum += sc.meanReward;
      } else items = teacherItems(run, batches[bi], flips[bi]);
      const { xent, norm, tokens } = await trainStep(run, items, state.lr);
      if (!Number.isFinite(xent)) throw new Error(`loss became ${xent} at step ${state.step}; lower --lr`);
      xentSum += xent;
      stepsRun++;
      epochTokens += tokens;
      state.tokens += tokens;
      state.step++;
      state.stepInEpoch = bi + 1;
      if (state.step % cfg.logEvery === 0) state.steps.push([state.step, xent]);
      const secs = (performance.now() - t0 - evalMs) / 1000;
      progress.tick(1, `${cfg.scst ? `reward ${(rewardSum / stepsRun).toFixed(3)}` : `xent ${xent.toFixed(3)}`} |g| ${norm.toFixed(2)} ${(epochTokens / secs).toFixed(0)} tok/s`);
      if (state.step % cfg.saveEvery === 0) {
        countTime();
        await saveWeights(run, path.join(ckptDir, "latest"));
        saveState(ckptDir, state);
      }
      if (cfg.evalEvery > 0 && state.stepInEpoch % cfg.evalEvery === 0 && state.stepInEpoch < batches.length) {
        // A point between epochs, recorded at a fractional epoch. It can become "best"; the
        // learning-rate decay and early stopping still happen only at the end of an epoch.
        const e0 = performance.now();
        const ev = await evaluateDev(run);
        evalMs += performance.now() - e0;
        const at = state.epoch + state.stepInEpoch / batches.length;
        state.history.push({ epoch: at, trainXent: NaN, trainReward: cfg.scst ? rewardSum / Math.max(1, stepsRun) : undefined, devXent: ev.devXent, bleu4: ev.bleu4, cider: ev.cider, lr: state.lr, seconds: 0, tokensPerSec: 0, peakRssMB: peakRssMB() });
        if (process.stderr.isTTY) process.stderr.write("\n");
        console.log(`epoch ${at.toFixed(2)}: dev xent ${ev.devXent.toFixed(3)}, dev greedy BLEU-4 ${ev.bleu4.toFixed(4)} CIDEr-D ${ev.cider.toFixed(4)}`);
        countTime();
        await keepBest(run, ckptDir, state, ev.cider, at);
        saveState(ckptDir, state);
      }
    }
    const seconds = (performance.now() - t0 - evalMs) / 1000;
    progress.end(`${(epochTokens / seconds).toFixed(0)} tok/s`);
    const ev = await evaluateDev(run);
    // In self-critical mode the replicas' loss is reward-weighted, not a cross-entropy: record the mean reward instead.
    const rec: EpochRecord = { epoch: state.epoch + 1, trainXent: cfg.scst ? NaN : xentSum / Math.max(1, stepsRun), trainReward: cfg.scst ? rewardSum / Math.max(1, stepsRun) : undefined, devXent: ev.devXent, bleu4: ev.bleu4, cider: ev.cider, lr: state.lr, seconds, tokensPerSec: epochTokens / seconds, peakRssMB: peakRssMB() };
    state.history.push(rec);
    countTime();
    console.log(`epoch ${rec.epoch}: ${cfg.scst ? `train CIDEr-D reward ${rec.trainReward!.toFixed(3)}` : `train xent ${rec.trainXent.toFixed(3)}`}, dev xent ${rec.devXent.toFixed(3)}, dev greedy BLEU-4 ${rec.bleu4.toFixed(4)} CIDEr-D ${rec.cider.toFixed(4)}, lr ${rec.lr.toExponential(2)}, ${fmt(seconds)}, ${rec.tokensPerSec.toFixed(0)} tok/s, peak RSS ${rec.peakRssMB} MiB`);
    for (const s of ev.samples) console.log(`  e.g. "${s}"`);
    state.epoch++;
    state.stepInEpoch = 0;
    // An epoch that ends below the best point so far (a mid-epoch one included) counts as bad.
    if (await keepBest(run, ckptDir, state, ev.cider, state.epoch)) state.badEpochs = 0;
    else {
      state.badEpochs++;
      state.lr *= cfg.lrDecay;
    }
    await record();
  }
}

/**
 * The run's state: a fresh one, or the one in checkpoints/<name>/state.json when resuming (with any
 * changed settings recorded). Also where the weights start: the run's own latest checkpoint when
 * resuming, else --init's checkpoint, whose own record then becomes this run's ancestry.
 */
function startState(cfg: TrainConfig, ckptDir: string, decoder: DecoderConfig): { state: State; startFrom: string | null; resuming: boolean } {
  const stateFile = path.join(ckptDir, "state.json");
  // A run that has a state file resumes (fine-tuning too), unless --init=scratch asks for a fresh start.
  const resuming = cfg.init !== "scratch" && existsSync(stateFile);
  const startFrom = resuming ? path.join(ckptDir, "latest") : cfg.init !== "auto" && cfg.init !== "scratch" ? cfg.init : null;
  if (startFrom && !paramsOf(startFrom)) throw new Error(`no checkpoint at ${startFrom} (a checkpoint folder, or a shipped member such as model/weights/decoder-2)`);
  if (!resuming) {
    // A checkpoint carries its record; a shipped member's runs come from its model card; a bare
    // weights folder starts a run with no ancestry.
    const base = startFrom && hasCheckpointState(startFrom) ? readCheckpointState(startFrom) : null;
    const ancestors = base ? [...ancestry(base), { ...base, ancestors: undefined }] : startFrom ? shippedAncestry(startFrom) : [];
    return { state: { epoch: 0, stepInEpoch: 0, step: 0, lr: cfg.lr, best: { cider: -1, epoch: -1 }, badEpochs: 0, history: [], steps: [], trainSeconds: 0, tokens: 0, config: cfg, decoder, ancestors }, startFrom, resuming };
  }
  const state = JSON.parse(readFileSync(stateFile, "utf8")) as State;
  state.ancestors ??= ancestry(state); // a run started before checkpoints carried their ancestry
  process.stderr.write(`resuming ${cfg.name} at epoch ${state.epoch + 1}, step ${state.stepInEpoch} (best dev CIDEr-D ${state.best.cider.toFixed(3)})\n`);
  if (JSON.stringify(state.decoder) !== JSON.stringify(decoder)) throw new Error(`checkpoint ${ckptDir} was trained with another architecture; use --name=<new> or --init=scratch`);
  const keys = (Object.keys(cfg) as (keyof TrainConfig)[]).filter((k) => k !== "epochs" && k in state.config && state.config[k] !== cfg[k]);
  // What is trained is fixed for a run: the saved optimiser state holds slots for those weights only.
  const fixed = keys.filter((k) => k === "only" || k === "trainEmbeddings" || k === "tags");
  if (fixed.length) throw new Error(`checkpoint ${ckptDir} was trained with ${fixed.map((k) => `--${k}=${state.config[k]}`).join(" ")}; resume with the same, or start another run with --name=<new>`);
  if (keys.length) {
    const pick = (c: TrainConfig) => Object.fromEntries(keys.map((k) => [k, c[k]])) as Partial<TrainConfig>;
    (state.changes ??= []).push({ atEpoch: state.epoch + 1, from: pick(state.config), to: pick(cfg) });
    process.stderr.write(`settings changed from epoch ${state.epoch + 1}: ${keys.map((k) => `${k} ${state.config[k]} -> ${cfg[k]}`).join(", ")}\n`);
    state.config = cfg;
  }
  return { state, startFrom, resuming };
}

/**
 * The weights a run starts from: a checkpoint folder's params, or one member of an exported model
 * (model/weights/decoder-2: its float16 file, read back as float32), so a shipped decoder can be
 * fine-tuned without its checkpoints.
 */
function paramsOf(from: string): string | null {
  if (existsSync(path.join(from, "params.json"))) return path.join(from, "params");
  return existsSync(from + ".json") && existsSync(from + ".bin") ? from : null;
}

/** Where a checkpoint folder's record of its run is: state.json inside it (older checkpoints kept it one level up). */
const stateFileOf = (dir: string) => [path.join(dir, "state.json"), path.join(dir, "..", "state.json")].find((f) => existsSync(f));
export const hasCheckpointState = (dir: string) => stateFileOf(dir) !== undefined;

/** A checkpoint folder's record of its run. */
export function readCheckpointState(dir: string): State {
  const file = stateFileOf(dir);
  if (!file) throw new Error(`no state.json in ${dir} (nor in its parent): not a checkpoint of this pipeline`);
  return JSON.parse(readFileSync(file, "utf8"));
}

/**
 * The records of the runs a run started from (--init), oldest first: its own `ancestors`, or for a
 * record written before checkpoints carried them, found by following each run's --init folder
 * (relative paths from the repository) as far as records exist.
 */
export function ancestry(state: State): State[] {
  if (state.ancestors) return state.ancestors;
  const chain: State[] = [];
  for (let init = state.config.init; chain.length < 8; ) {
    const dir = init && !["auto", "scratch"].includes(init) ? path.resolve(REPO_ROOT, init) : null;
    if (!dir || !hasCheckpointState(dir)) break;
    const s = readCheckpointState(dir);
    chain.unshift({ ...s, ancestors: undefined });
    if (s.ancestors) return [...s.ancestors, ...chain];
    init = s.config.init;
  }
  return chain;
}

/**
 * The runs behind a shipped member (model/weights/decoder-2), rebuilt from its model card's
 * training records (the checkpoints it was exported from may be long gone), oldest first, so a
 * member fine-tuned again keeps its history. The card keeps each run's epochs, not its per-step
 * losses. Anything else (no card, a bare weights file) has no known ancestry.
 */
export function shippedAncestry(member: string): State[] {
  const cardFile = path.join(path.dirname(member), "model-card.json");
  const index = /^decoder(?:-(\d+))?$/.exec(path.basename(member));
  if (!index || !existsSync(cardFile)) return [];
  const card = JSON.parse(readFileSync(cardFile, "utf8")) as ModelCard;
  const runs = new Map((card.training ?? []).map((r) => [r.run, r]));
  // A checkpoint is <run>/best or <run>/latest (or <run>/epoch-N): its run is the folder above.
  const runOf = (from: string | undefined) => from && path.basename(path.dirname(from.trim()));
  const chain: State[] = [];
  const { members: _, ...decoder } = card.architecture ?? {};
  for (let name = runOf(card.weights?.from?.split(",")[index[1] ? Number(index[1]) - 1 : 0]); name && runs.has(name) && chain.length < 8; ) {
    const r = runs.get(name)!;
    chain.unshift({
      epoch: r.epochs, stepInEpoch: 0, step: 0, lr: r.history.at(-1)?.lr ?? 0, best: { cider: r.bestDevCiderGreedy, epoch: r.bestEpoch }, badEpochs: 0,
      history: r.history as EpochRecord[], steps: [], trainSeconds: r.seconds, tokens: r.tokensPerSec * r.seconds,
      // Only the settings the card kept; mirroring is the card's augmentation, which cross-entropy runs had.
      config: { ...r.hyperParameters, name: r.run, init: r.init, flip: !r.hyperParameters.scst && /mirror/.test(card.data?.augmentation ?? "") } as unknown as TrainConfig,
      decoder: decoder as DecoderConfig, changes: r.changes as State["changes"],
    });
    name = runOf(r.init);
  }
  return chain;
}

/**
 * Loads the data into shared memory and starts the replicas. Training rows are the original
 * images, then (with --flip) their mirrored versions; every replica reads them without a copy.
 */
async function startRun(cfg: TrainConfig, data: PreparedDataset, vocab: Vocabulary, index: FeatureIndex, decoder: DecoderConfig, state: State, startFrom: string | null, resuming: boolean): Promise<Run> {
  const trainImgs = cfg.maxImages ? data.splits.train.slice(0, cfg.maxImages) : data.splits.train;
  const devImgs = cfg.maxImages ? data.splits.dev.slice(0, cfg.maxImages) : data.splits.dev;
  const nTrain = trainImgs.length;
  process.stderr.write(`loading features for ${nTrain} train (${cfg.flip ? "+ mirrored" : "no mirror"}) and ${devImgs.length} dev images...\n`);
  const trainFiles = trainImgs.map((i) => i.file);
  // Rows of `per` floats in shared memory: training images (then, with --flip, mirrored), and dev images.
  const shared = (per: number, load: typeof loadFeatures) => {
    const train = new SharedArrayBuffer(nTrain * (cfg.flip ? 2 : 1) * per * 4), dev = new SharedArrayBuffer(devImgs.length * per * 4);
    load(index, "orig", trainFiles, undefined, new Float32Array(train, 0, nTrain * per));
    if (cfg.flip) load(index, "flip", trainFiles, undefined, new Float32Array(train, nTrain * per * 4, nTrain * per));
    load(index, "orig", devImgs.map((i) => i.file), undefined, new Float32Array(dev));
    return { train, dev };
  };
  const feats = shared(index.grid[0] * index.grid[1] * index.channels, loadFeatures);
  // Class scores, row for row with the features (a decoder with tags).
  const tags = decoder.tags ? shared(decoder.tags, loadTags) : null;
  const encode = (c: string[]) => vocab.encode(c).slice(0, cfg.maxLen);
  const captions = trainImgs.flatMap((img, i) => img.captions.map((c) => ({ img: i, ids: encode(c) }))).filter((c) => c.ids.length > 0);
  const devCaps = devImgs.flatMap((img, i) => img.captions.map((c) => ({ img: i, ids: encode(c) }))).filter((c) => c.ids.length > 0);
  const refIds: number[][][] = trainImgs.map(() => []);
  for (const c of captions) refIds[c.img].push(c.ids);
  let glove: Float32Array | null = null;
  if (cfg.glove && !startFrom) {
    if (!existsSync(EMBEDDING_FILE)) throw new Error(`${EMBEDDING_FILE} missing: run \`npm run pipeline:embeddings\` (or pass --glove=false)`);
    const buf = readFileSync(EMBEDDING_FILE);
    glove = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    if (glove.length !== vocab.size * cfg.embedDim) throw new Error(`${EMBEDDING_FILE} does not match the vocabulary: rerun \`npm run pipeline:embeddings\``);
  }
  const shapes = paramShapes(decoder);
  const only = cfg.only ? cfg.only.split(",").map((n) => n.trim()) : null;
  const unknown = only?.filter((n) => !(n in shapes)) ?? [];
  if (unknown.length) throw new Error(`--only names weights this decoder does not have: ${unknown.join(", ")} (it has ${Object.keys(shapes).join(", ")})`);
  const trainable = Object.keys(shapes).filter((n) => (only ? only.includes(n) : cfg.trainEmbeddings || n !== "embedding"));
  const nParams = trainable.reduce((s, n) => s + shapes[n].reduce((a, b) => a * b, 1), 0);
  const avgSab = new SharedArrayBuffer(nParams * 4);
  const gradSabs = Array.from({ length: cfg.workers }, () => new SharedArrayBuffer(nParams * 4));
  const replicas = gradSabs.map((grad, id) => {
    const init: WorkerInit = {
      id, config: decoder, glove, train: feats.train, dev: feats.dev, trainTags: tags?.train ?? null, devTags: tags?.dev ?? null, grad, avg: avgSab, trainable, lr: state.lr, seed: cfg.seed,
      resumeFrom: startFrom, paramsFrom: startFrom && paramsOf(startFrom), freshOptimizer: !resuming,
    };
    return new Replica(new Worker(new URL("./worker-boot.mjs", import.meta.url), { workerData: { ...init, module: new URL("./train-worker.ts", import.meta.url).href } }));
  });
  await Promise.all(replicas.map((r) => r.call(null)));
  process.stderr.write(`${cfg.workers} replicas ready: ${nParams.toLocaleString()} trainable parameters, ${captions.length} training captions\n`);
  return {
    cfg, vocab, trainImgs, devImgs, captions, devCaps, refIds,
    swap: new Map([[vocab.id("left"), vocab.id("right")], [vocab.id("right"), vocab.id("left")]]),
    cider: cfg.scst ? new CiderD(trainImgs.map((i) => i.captions)) : null,
    repeatable: vocab.words.flatMap((w, i) => (FUNCTION_WORDS.has(w) ? [i] : [])),
    replicas, grads: gradSabs.map((s) => new Float32Array(s)), avg: new Float32Array(avgSab),
  };
}

/**
 * One epoch's batches: shuffled, then sorted by length within windows of 50 batches so padding stays
 * small, then the batches shuffled. Teacher forcing walks over captions, self-critical training over
 * images (each sampled --scst times). With --flip, each example is mirrored with probability 1/2.
 */
function epochBatches(run: Run, rand: () => number): { batches: number[][]; flips: boolean[][] } {
  const { cfg, captions } = run;
  const perBatch = cfg.scst ? Math.max(1, Math.floor(cfg.batch / cfg.scst)) : cfg.batch;
  const lengthOf = (i: number) => (cfg.scst ? 0 : captions[i].ids.length);
  const order = (cfg.scst ? run.trainImgs : captions).map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
  const batches: number[][] = [];
  for (let w = 0; w < order.length; w += perBatch * 50) {
    const win = order.slice(w, w + perBatch * 50).sort((a, b) => lengthOf(a) - lengthOf(b));
    for (let i = 0; i < win.length; i += perBatch) batches.push(win.slice(i, i + perBatch));
  }
  for (let i = batches.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [batches[i], batches[j]] = [batches[j], batches[i]]; }
  return { batches, flips: batches.map((b) => b.map(() => cfg.flip && rand() < 0.5)) };
}

/** Teacher forcing: a mirrored example reads the mirrored features (rows after the originals) and swaps left/right in its caption. */
function teacherItems(run: Run, batch: number[], flips: boolean[]): Item[] {
  const nTrain = run.trainImgs.length;
  return batch.map((ci, k) => {
    const { img, ids } = run.captions[ci];
    return flips[k] ? { row: img + nTrain, ids: ids.map((x) => run.swap.get(x) ?? x), weight: 1 } : { row: img, ids, weight: 1 };
  });
}

/**
 * Self-critical: sample captions per image, reward each by CIDEr-D against the image's references,
 * and weight its log-likelihood by the reward minus the mean reward of the image's other samples.
 * With --scstXent, one human caption per image is added, teacher-forced with that small weight, so
 * the network keeps describing images as people do while the reward sharpens it.
 */
async function selfCriticalItems(run: Run, imgs: number[], step: number): Promise<{ items: Item[]; meanReward: number }> {
  const { cfg, replicas } = run;
  const K = cfg.scst;
  const rows = imgs.flatMap((i) => Array<number>(K).fill(i));
  const parts = await Promise.all(replicas.map((r, w) => {
    const sub = rows.slice(Math.floor((w * rows.length) / replicas.length), Math.floor(((w + 1) * rows.length) / replicas.length));
    return sub.length ? r.call({ type: "sample", rows: Int32Array.from(sub), maxLen: cfg.maxLen, seed: cfg.seed * 7919 + step * 31 + w }).then((m) => m.ids as number[][]) : Promise.resolve([]);
  }));
  const samples = parts.flat();
  const rewards = samples.map((ids, j) => run.cider!.score(rows[j], run.vocab.decode(ids)));
  const sampled = samples.map((ids, j) => {
    const g = Math.floor(j / K) * K;
    const others = (rewards.slice(g, g + K).reduce((a, b) => a + b, 0) - rewards[j]) / (K - 1);
    return { row: rows[j], ids, weight: rewards[j] - others };
  });
  const anchors = cfg.scstXent > 0 ? imgs.map((i) => {
    const refs = run.refIds[i];
    return { row: i, ids: refs[(step + i) % refs.length], weight: cfg.scstXent }; // not rand(): resuming mid-epoch must see the same batches
  }) : [];
  return { items: [...sampled, ...anchors], meanReward: rewards.reduce((a, b) => a + b, 0) / rewards.length };
}

/**
 * One optimiser step: each replica takes the gradient of its shard, the gradients are averaged
 * (weighted by tokens) and clipped by global norm, and every replica applies the same average.
 */
async function trainStep(run: Run, items: Item[], lr: number): Promise<{ xent: number; norm: number; tokens: number }> {
  const { cfg, replicas } = run;
  const results = await Promise.all(replicas.map((r, w) => {
    const shard = items.slice(Math.floor((w * items.length) / replicas.length), Math.floor(((w + 1) * items.length) / replicas.length));
    const b = toBatch(shard.map((it) => it.ids));
    const weights = cfg.scst ? Float32Array.from(shard, (it) => it.weight) : undefined;
    return r.call({ type: "grads", rows: Int32Array.from(shard, (it) => it.row), ...b, weights, dropout: cfg.dropout, attnReg: cfg.scst ? 0 : cfg.attnReg }).then((m) => ({ xent: m.xent as number, tokens: b.tokens }));
  }));
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  const wts = results.map((r) => r.tokens / tokens);
  const norm = averageGradients(run.grads, wts, run.avg, cfg.clip);
  await Promise.all(replicas.map((r) => r.call({ type: "apply", lr })));
  return { xent: results.reduce((s, r, w) => s + r.xent * wts[w], 0), norm, tokens };
}

/** avg = sum of weights[w] * grads[w], scaled down to norm `clip` if longer; returns the norm before clipping. */
function averageGradients(grads: Float32Array[], weights: number[], avg: Float32Array, clip: number): number {
  let sq = 0;
  for (let i = 0; i < avg.length; i++) {
    let g = 0;
    for (let w = 0; w < grads.length; w++) g += grads[w][i] * weights[w];
    avg[i] = g;
    sq += g * g;
  }
  const norm = Math.sqrt(sq);
  if (norm > clip) for (let i = 0; i < avg.length; i++) avg[i] *= clip / norm;
  return norm;
}

/**
 * Dev measurements: the teacher-forced loss, and greedy captions of every dev image under the app's
 * repeat rule (model/search.ts isRepeat) scored by BLEU-4 and CIDEr-D, so the checkpoint is chosen
 * under the decoding that ships. Both are split across the replicas.
 */
async function evaluateDev(run: Run): Promise<{ devXent: number; bleu4: number; cider: number; samples: string[] }> {
  const { replicas, devCaps, devImgs, cfg } = run;
  let xsum = 0, tsum = 0;
  const chunks: Caption[][] = [];
  for (let i = 0; i < devCaps.length; i += 200) chunks.push(devCaps.slice(i, i + 200));
  for (let i = 0; i < chunks.length; i += replicas.length) {
    const rs = await Promise.all(replicas.map((r, w) => {
      const ch = chunks[i + w];
      if (!ch) return Promise.resolve(null);
      const b = toBatch(ch.map((c) => c.ids));
      return r.call({ type: "loss", rows: Int32Array.from(ch, (c) => c.img), ...b }).then((m) => ({ x: m.xent, t: b.tokens }));
    }));
    for (const r of rs) if (r) (xsum += r.x * r.t), (tsum += r.t);
  }
  const ids: number[][] = new Array(devImgs.length);
  const per = Math.ceil(devImgs.length / replicas.length);
  await Promise.all(replicas.map(async (r, w) => {
    for (let s = w * per; s < Math.min(devImgs.length, (w + 1) * per); s += 100) {
      const e = Math.min(s + 100, (w + 1) * per, devImgs.length);
      const m = await r.call({ type: "greedy", rows: Int32Array.from({ length: e - s }, (_, k) => s + k), maxLen: cfg.maxLen, repeatable: run.repeatable });
      m.ids.forEach((x: number[], k: number) => (ids[s + k] = x));
    }
  }));
  const cands = ids.map((x) => run.vocab.decode(x));
  const sc = scoreCaptions(cands, devImgs.map((i) => i.captions));
  return { devXent: xsum / tsum, bleu4: sc.bleu4, cider: sc.cider, samples: cands.slice(0, 3).map((c) => c.join(" ")) };
}

/** Writes the weights (and Adam's moments) to a checkpoint folder. */
async function saveWeights(run: Run, dir: string) {
  mkdirSync(dir, { recursive: true });
  await run.replicas[0].call({ type: "save", path: dir });
}

/**
 * The run's record: checkpoints/<name>/state.json (what resuming reads), and a copy inside latest/
 * and best/, so that either folder alone (copied elsewhere) holds its decoder config, history and
 * ancestry and can be exported.
 */
function saveState(ckptDir: string, state: State) {
  const json = JSON.stringify(state);
  writeFileSync(path.join(ckptDir, "state.json"), json);
  for (const sub of ["latest", "best"]) if (existsSync(path.join(ckptDir, sub, "params.json"))) writeFileSync(path.join(ckptDir, sub, "state.json"), json);
}

/**
 * Saves the current weights as "latest", and also as "best" when their dev CIDEr-D beats every
 * point measured so far (whole epochs and --evalEvery points alike).
 */
async function keepBest(run: Run, ckptDir: string, state: State, cider: number, at: number): Promise<boolean> {
  await saveWeights(run, path.join(ckptDir, "latest"));
  if (cider <= state.best.cider) return false;
  state.best = { cider, epoch: at };
  rmSync(path.join(ckptDir, "best"), { recursive: true, force: true });
  cpSync(path.join(ckptDir, "latest"), path.join(ckptDir, "best"), { recursive: true });
  return true;
}

const peakRssMB = () => Math.round(process.resourceUsage().maxRSS / 1024);

async function writeCurves(s: State, dir: string) {
  writeFileSync(path.join(dir, "history.json"), JSON.stringify({ history: s.history, steps: s.steps, best: s.best, config: s.config }, null, 1));
  await drawCurves(s, path.join(dir, "curves.png"));
}

/** A run's loss and dev-score curves as a picture (the trainer's runs/<name>/curves.png; export draws them again from a checkpoint's record). */
export async function drawCurves(s: Pick<State, "history" | "steps" | "step" | "epoch">, file: string) {
  await writeChart(file, [
    { title: "cross-entropy per word", xLabel: "epoch", series: [
      { name: "train (per step)", color: "#9bb", points: s.steps.map(([st, x]) => [st / Math.max(1, s.step / Math.max(1, s.epoch)), x]) },
      { name: "train (epoch mean)", color: "#1a7", points: s.history.filter((h) => Number.isFinite(h.trainXent)).map((h) => [h.epoch, h.trainXent]) },
      { name: "dev", color: "#d33", points: s.history.map((h) => [h.epoch, h.devXent]) },
    ] },
    { title: "dev scores (greedy)", xLabel: "epoch", series: [
      { name: "CIDEr-D", color: "#36c", points: s.history.map((h) => [h.epoch, h.cider]) },
      { name: "BLEU-4 x 4", color: "#c63", points: s.history.map((h) => [h.epoch, h.bleu4 * 4]) },
    ] },
  ]);
}
