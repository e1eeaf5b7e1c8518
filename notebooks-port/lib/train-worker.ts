/**
 * One data-parallel training replica, run in a worker thread (tfjs-wasm uses one core per
 * instance, so two workers use both cores). Every replica holds the full model and its own Adam
 * state; each step it computes gradients on its share of the batch, the main thread averages
 * them in shared memory, and every replica applies the same average, so replicas stay identical.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { DecoderConfig } from "../../model/config.ts";
import { initParams, teacherForcedLoss, type Params } from "../../model/decoder.ts";
import { decodeBatch, greedyBatch } from "../../model/batch-decode.ts";
import { initBackend, tf } from "../../model/tf.ts";
import { loadArrays, saveArrays, type NamedArray } from "../../model/weights.ts";

export interface WorkerInit {
  id: number;
  config: DecoderConfig;
  glove: Float32Array | null;
  /** Feature rows [n, L*D] shared by all replicas: training rows (original then mirrored) and dev rows. */
  train: SharedArrayBuffer;
  dev: SharedArrayBuffer;
  /** Their class scores [n, K], row for row (a decoder with tags), else null. */
  trainTags: SharedArrayBuffer | null;
  devTags: SharedArrayBuffer | null;
  /** This replica's gradient slot and the averaged gradient, both [total trainable params]. */
  grad: SharedArrayBuffer;
  avg: SharedArrayBuffer;
  trainable: string[];
  lr: number;
  seed: number;
  /** Checkpoint folder to load weights from (null: fresh init), and its weight file (trainer.ts paramsOf). */
  resumeFrom: string | null;
  paramsFrom: string | null;
  /** Load weights only, not Adam's state (fine-tuning changes what is trained). */
  freshOptimizer: boolean;
}

export type WorkerRequest =
  | { type: "grads"; rows: Int32Array; input: Int32Array; target: Int32Array; T: number; B: number; dropout: number; attnReg: number; weights?: Float32Array }
  | { type: "sample"; rows: Int32Array; maxLen: number; seed: number }
  | { type: "apply"; lr: number }
  | { type: "loss"; rows: Int32Array; input: Int32Array; target: Int32Array; T: number; B: number }
  | { type: "greedy"; rows: Int32Array; maxLen: number; repeatable: number[] }
  | { type: "save"; path: string };

const init = workerData as WorkerInit;
const port = parentPort!;

await initBackend();
const cfg = init.config;
const per = cfg.grid[0] * cfg.grid[1] * cfg.featureDim;
const trainFeats = new Float32Array(init.train);
const devFeats = new Float32Array(init.dev);
const K = cfg.tags ?? 0;
const trainTags = init.trainTags && new Float32Array(init.trainTags), devTags = init.devTags && new Float32Array(init.devTags);
const vars = initParams(cfg, init.glove ?? undefined, init.seed);
const params: Params = vars;
const optimizer = tf.train.adam(init.lr);
// Offsets of each trainable weight inside the flat gradient buffers.
const offsets = new Map<string, number>();
let total = 0;
for (const n of init.trainable) offsets.set(n, (total += vars[n].size) - vars[n].size);
const gradSlot = new Float32Array(init.grad);
const avg = new Float32Array(init.avg);

if (init.paramsFrom) {
  const saved = loadArrays(init.paramsFrom);
  // Starting from a decoder with tags without --tags would silently drop what it learnt.
  const dropped = Object.keys(saved).filter((n) => !(n in vars));
  if (dropped.length) throw new Error(`${init.paramsFrom} has weights this decoder lacks (${dropped.join(", ")}): ${dropped.includes("tagIn") ? "add --tags" : "its architecture differs"}`);
  for (const [n, v] of Object.entries(vars)) {
    // A decoder given tags for the first time keeps its zero projection (decoder.ts initParams).
    if (!saved[n] && n === "tagIn" && init.freshOptimizer) continue;
    if (!saved[n]) throw new Error(`${init.paramsFrom} has no weight ${n}`);
    v.assign(tf.tensor(saved[n].data, v.shape));
  }
}
if (init.resumeFrom && !init.freshOptimizer) {
  const adam = loadArrays(init.resumeFrom + "/adam");
  // Apply a zero step first so Adam creates its slots, then overwrite them with the saved state.
  optimizer.applyGradients(Object.fromEntries(init.trainable.map((n) => [n, tf.zerosLike(vars[n])])) as never);
  const current = await optimizer.getWeights();
  await optimizer.setWeights(current.map((w) => ({ name: w.name, tensor: tf.tensor(adam[w.name].data, adam[w.name].shape) })));
}

/** Rows of `n` floats copied out of shared memory, one after the other. */
function gather(src: Float32Array, rows: Int32Array, n: number): Float32Array {
  const out = new Float32Array(rows.length * n);
  rows.forEach((r, i) => out.set(src.subarray(r * n, (r + 1) * n), i * n));
  return out;
}

const gatherRows = (src: Float32Array, rows: Int32Array) => tf.tensor3d(gather(src, rows, per), [rows.length, cfg.grid[0] * cfg.grid[1], cfg.featureDim]);

/** The same rows' class scores [B, K] (decoders with tags), else undefined. */
const gatherTags = (src: Float32Array | null, rows: Int32Array) => (src && K ? tf.tensor2d(gather(src, rows, K), [rows.length, K]) : undefined);

port.on("message", async (msg: WorkerRequest) => {
  try {
    if (msg.type === "grads") {
      const feats = gatherRows(trainFeats, msg.rows), tags = gatherTags(trainTags, msg.rows);
      let xent = 0;
      const { value, grads } = tf.variableGrads(() => {
        const r = teacherForcedLoss(params, { feats, tags, input: msg.input, target: msg.target, T: msg.T, B: msg.B, weights: msg.weights }, msg);
        xent = r.xent.dataSync()[0];
        return r.loss;
      }, init.trainable.map((n) => vars[n]));
      for (const n of init.trainable) gradSlot.set(grads[n].dataSync() as Float32Array, offsets.get(n)!);
      const loss = value.dataSync()[0];
      tf.dispose([value, feats, ...(tags ? [tags] : []), ...Object.values(grads)]);
      port.postMessage({ type: "grads", loss, xent, tensors: tf.memory().numTensors });
    } else if (msg.type === "apply") {
      (optimizer as unknown as { learningRate: number }).learningRate = msg.lr;
      const g = Object.fromEntries(init.trainable.map((n) => [n, tf.tensor(avg.subarray(offsets.get(n)!, offsets.get(n)! + vars[n].size), vars[n].shape)]));
      optimizer.applyGradients(g as tf.NamedTensorMap as never);
      tf.dispose(Object.values(g));
      port.postMessage({ type: "applied" });
    } else if (msg.type === "loss") {
      const feats = gatherRows(devFeats, msg.rows), tags = gatherTags(devTags, msg.rows);
      const xent = tf.tidy(() => teacherForcedLoss(params, { feats, tags, input: msg.input, target: msg.target, T: msg.T, B: msg.B }, { dropout: 0, attnReg: 0 }).xent.dataSync()[0]);
      tf.dispose([feats, ...(tags ? [tags] : [])]);
      port.postMessage({ type: "loss", xent });
    } else if (msg.type === "sample") {
      const feats = gatherRows(trainFeats, msg.rows), tags = gatherTags(trainTags, msg.rows);
      const ids = decodeBatch(params, feats, msg.maxLen, "sample", msg.seed, undefined, tags);
      tf.dispose([feats, ...(tags ? [tags] : [])]);
      port.postMessage({ type: "sample", ids });
    } else if (msg.type === "greedy") {
      const feats = gatherRows(devFeats, msg.rows), tags = gatherTags(devTags, msg.rows);
      const ids = greedyBatch(params, feats, msg.maxLen, new Set(msg.repeatable), tags);
      tf.dispose([feats, ...(tags ? [tags] : [])]);
      port.postMessage({ type: "greedy", ids });
    } else if (msg.type === "save") {
      const arrays = (ts: Record<string, tf.Tensor>) => Object.fromEntries(Object.entries(ts).map(([n, t]) => [n, { shape: t.shape, data: t.dataSync() as Float32Array } as NamedArray]));
      saveArrays(msg.path + "/params", arrays(vars));
      const adam = await optimizer.getWeights();
      saveArrays(msg.path + "/adam", arrays(Object.fromEntries(adam.map((w) => [w.name, w.tensor]))));
      port.postMessage({ type: "saved" });
    }
  } catch (e) {
    port.postMessage({ type: "error", message: (e as Error).stack ?? String(e) });
  }
});
port.postMessage({ type: "ready" });
