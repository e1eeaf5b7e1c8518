/**
 * Training-step throughput of one replica (one core) on random data shaped like Flickr8k batches
 * (64 captions x 13 steps), with the model's FLOPs per token against a matmul roofline measured in
 * the same run, and the kernel time breakdown. The real run uses 2 replicas; its tokens/s are
 * printed by the trainer and recorded in the model card.
 *   npx tsx bench/train.ts
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { DecoderConfig } from "../model/config.ts";
import { initParams, paramShapes, teacherForcedLoss } from "../model/decoder.ts";
import { DEFAULT_MODEL_DIR } from "../model/index.ts";
import { initBackend, tf } from "../model/tf.ts";

await initBackend();
const cfg = JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, "config.json"), "utf8")) as DecoderConfig;
const B = 64, T = 13, L = cfg.grid[0] * cfg.grid[1];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const a = tf.randomNormal([512, 512]), b = tf.randomNormal([512, 1024]);
const mm: number[] = [];
for (let i = 0; i < 15; i++) { const t = performance.now(); tf.matMul(a, b).dataSync(); mm.push(performance.now() - t); }
const roof = (2 * 512 * 512 * 1024) / median(mm.slice(3)) / 1e6;
tf.dispose([a, b]);

const vars = initParams(cfg);
const trainable = Object.keys(paramShapes(cfg)).filter((n) => n !== "embedding").map((n) => vars[n]);
const feats = tf.randomUniform([B, L, cfg.featureDim], 0, 2) as tf.Tensor3D;
const ids = () => Int32Array.from({ length: T * B }, () => 4 + Math.floor(Math.random() * (cfg.vocabSize - 4)));
const opt = tf.train.adam(1e-3);
const step = () => {
  const { value, grads } = tf.variableGrads(() => teacherForcedLoss(vars, { feats, input: ids(), target: ids(), T, B }, { dropout: 0.5, attnReg: 1 }).loss, trainable);
  opt.applyGradients(grads as never);
  value.dataSync();
  tf.dispose([value, grads]);
};
step();
const prof = await tf.profile(step);
const kernels = new Map<string, number>();
for (const k of prof.kernels) kernels.set(k.name, (kernels.get(k.name) ?? 0) + (k.kernelTimeMs as number));
const ms: number[] = [];
for (let i = 0; i < 5; i++) { const t = performance.now(); step(); ms.push(performance.now() - t); }
const { featureDim: D, hiddenDim: H, attnDim: A, embedDim: E, outDim: O, vocabSize: V } = cfg;
// Multiply-adds per token: recurrent+query+gate, context, word input, deep output, logits, attention scores/read-out.
const macs = H * (A + 1 + 4 * H) + D * (4 * H + O) + E * (4 * H + O) + H * O + O * V + L * A + L * D + (L * D * A) / T;
const flopsPerToken = 3 * 2 * macs; // forward + backward (2x)
const tps = (B * T) / (median(ms) / 1000);
console.log(`training step, 1 replica, batch ${B}x${T} tokens, median ${median(ms).toFixed(0)} ms -> ${tps.toFixed(0)} tokens/s`);
console.log(`  ${(flopsPerToken / 1e6).toFixed(1)} MFLOP per token -> ${((tps * flopsPerToken) / 1e9).toFixed(1)} GFLOP/s; matmul roofline ${roof.toFixed(1)} GFLOP/s (roofline bound ${(roof * 1e9 / flopsPerToken).toFixed(0)} tokens/s)`);
console.log(`  kernel time: ` + [...kernels].sort((x, y) => y[1] - x[1]).slice(0, 8).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(", "));
console.log(`  peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
