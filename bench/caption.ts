/**
 * Captioning speed on this machine: end-to-end greedy caption of a 224 px JPEG (decode + encoder
 * + decoder), encoder time, decoder time per step, each on onnxruntime (what the app uses) and on
 * tfjs-wasm (the reference), the encoder's and the decoder step's FLOP counts against matmul
 * rooflines (tfjs-wasm and onnxruntime, 1 thread) measured in the same run, model load time and
 * peak RSS; end to end with objects (detection + grounding) against without them, on Flickr8k and
 * coco-dev photos (the variants take turns photo by photo), and against the encoder's own time.
 * Prints medians.
 *   npm run bench
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { flickr8kDir } from "../notebooks-port/lib/flickr8k.ts";
import { fileURLToPath } from "node:url";
import { encoderSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { DEFAULT_MODEL_DIR, loadCaptioner, loadDecoder, toParams, type Captioner } from "../model/index.ts";
import { onnxDecoder } from "../model/onnx-decoder.ts";
import { modelProto, nodeProto, tensorProto, valueInfo } from "../model/onnx-proto.ts";
import { importOnnxRuntime } from "../model/onnxruntime.ts";
import { ensembleDecoder, tfDecoder } from "../model/step-decoder.ts";
import { START } from "../model/vocab.ts";
import { initBackend, tf } from "../model/tf.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DATA = flickr8kDir();
const N = Number(process.argv[2] ?? 50);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];
const time = async (f: () => unknown | Promise<unknown>) => { const t = performance.now(); await f(); return performance.now() - t; };

await initBackend();

// Roofline: a plain 512x512 @ 512x1024 matmul, the shape class the decoder and 1x1 convs use.
const a = tf.randomNormal([512, 512]), b = tf.randomNormal([512, 1024]);
const mmMs: number[] = [];
for (let i = 0; i < 15; i++) mmMs.push(await time(() => tf.matMul(a, b).dataSync()));
const gflops = (2 * 512 * 512 * 1024) / median(mmMs.slice(3)) / 1e6;
// The same matmul on onnxruntime, 1 thread (what the decoder step runs on): its own roofline.
const ort = await importOnnxRuntime();
const mmModel = modelProto("matmul", { nodes: [nodeProto("MatMul", ["x", "w"], ["y"])], inits: [tensorProto("w", [512, 1024], (await b.data()) as Float32Array)], inputs: [valueInfo("x", [512, 512])], outputs: [valueInfo("y", [512, 1024])] });
const mmSession = await ort.InferenceSession.create(mmModel, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const x = new ort.Tensor("float32", (await a.data()) as Float32Array, [512, 512]);
const ortMs: number[] = [];
for (let i = 0; i < 15; i++) ortMs.push(await time(() => mmSession.run({ x })));
const ortGflops = (2 * 512 * 512 * 1024) / median(ortMs.slice(3)) / 1e6;
await mmSession.release();
tf.dispose([a, b]);

// Encoder FLOPs: every convolution and matmul each graph's output node depends on.
const spec = encoderSpec(JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, "config.json"), "utf8")).encoder);
const s = spec.inputSize;
let flops = 0;
for (const graphSpec of spec.graphs) {
  // Read the graph the same way the encoder reads it.
  const artifacts = await graphSpec.read();
  const graph = (artifacts.modelTopology as { node: { name: string; op: string; input?: string[] }[] }).node;
  const byName = new Map(graph.map((n) => [n.name, n]));
  const needed = new Set<string>();
  const stack = [graphSpec.node];
  while (stack.length) {
    const n = byName.get(stack.pop()!.replace(/^\^/, "").replace(/:\d+$/, ""));
    if (!n || needed.has(n.name)) continue;
    needed.add(n.name);
    stack.push(...(n.input ?? []));
  }
  const convs = graph.filter((n) => needed.has(n.name) && /Conv2D|Depthwise|MatMul/.test(n.op));
  // Run the graph asking for every conv output, to learn their shapes.
  const g = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const outs = g.execute(tf.zeros([1, s, s, 3]), convs.map((c) => c.name)) as tf.Tensor[];
  convs.forEach((c, i) => {
    const w = g.weights[c.input![1]]?.[0];
    if (!w) return;
    const [oh, ow] = outs[i].shape.slice(1, 3) as number[];
    const [kh, kw, cin, cout] = w.shape as number[];
    // Conv2D and depthwise both cost 2*oh*ow*kh*kw*cin*(cout or multiplier) FLOPs; a MatMul 2*k*n per row.
    flops += c.op.includes("MatMul") ? 2 * (w.shape[0] as number) * (w.shape[1] as number) : 2 * oh * ow * kh * kw * cin * cout;
  });
  tf.dispose(outs);
  g.dispose();
}

// Encoder alone on a decoded image, on both runtimes: onnxruntime (what the app uses) and tfjs (the reference).
const files = readdirSync(path.join(DATA, "images")).sort().slice(0, N).map((f) => path.join(DATA, "images", f));
const bytes = files.map((f) => readFileSync(f));
const px = await toRgbSquare(bytes[0], s);
const encMs: Record<string, number[]> = {};
let feats: tf.Tensor3D | null = null; // this image's features, for the decoder measurements below
for (const runtime of ["onnx", "tfjs"] as const) {
  const encoder = await loadEncoder(spec, runtime).catch(() => null);
  if (!encoder) continue;
  encMs[runtime] = [];
  for (let i = 0; i < 20; i++) encMs[runtime].push(await time(async () => { const t = await encoder.encode([px]); await t.data(); t.dispose(); }));
  feats ??= await encoder.encode([px]);
  encoder.dispose();
}

// Decoder alone, one step at a time for 1 and 3 rows (greedy, beam 3), on both runtimes.
const { config, members } = loadDecoder(DEFAULT_MODEL_DIR);
if (!feats) throw new Error("no encoder runtime could load");
// One step's FLOPs per row and member: every matmul (2 per multiply-add) of decoder.ts step() and the vocabulary projection.
const { hiddenDim: H, attnDim: A, outDim: O, featureDim: D, embedDim: E, vocabSize: V } = config;
const L = config.grid[0] * config.grid[1];
const stepFlops = members.length * 2 * (H * (A + 1 + 4 * H) + 2 * L * A + L * D + D * (4 * H + O) + E * (4 * H + O) + H * O + O * V);
const stepMs: Record<string, Record<number, number[]>> = {};
// A decoder with tags reads class scores once per image; their values do not change a step's cost.
const tags = config.tags ? new Float32Array(config.tags) : undefined;
// The app's decoder (onnxruntime, int8 weights), the same graph in float32, and tfjs (the reference).
for (const runtime of ["onnx int8", "onnx float32", "tfjs"] as const) {
  const params = runtime === "tfjs" ? members.map((m) => toParams(config, m)) : [];
  const onnx = runtime === "tfjs" ? null : await onnxDecoder(members, config, { int8: runtime === "onnx int8" }).catch(() => null);
  if (runtime !== "tfjs" && !onnx) continue;
  const decoder = onnx ?? ensembleDecoder(params.map(tfDecoder));
  stepMs[runtime] = { 1: [], 3: [] };
  for (const rows of [1, 3]) {
    const run = await decoder.start(feats, rows, tags);
    const prev = new Int32Array(rows).fill(START);
    for (let i = 0; i < 40; i++) stepMs[runtime][rows].push(await time(() => run.step(prev)));
    run.dispose();
  }
  tf.dispose(params.flatMap((p) => Object.values(p)));
  await onnx?.release();
}
feats.dispose();

const decodeMs: number[] = [];
for (const bt of bytes.slice(0, 20)) decodeMs.push(await time(() => toRgbSquare(bt, s)));

// End to end through the public API: what the app runs ("auto": onnxruntime where it works), the
// same without objects (loadCaptioner({ objects: false }): no detection head, no grounding: the
// captioner before objects existed), and everything on tfjs-wasm (the reference). Each on Flickr8k
// JPEGs and, where coco-dev is present, on everyday COCO photos (where grounding has work to do).
const cocoDir = process.env.COCO_DEV_DIR ?? path.resolve(ROOT, "../shared/data/coco-dev/images");
const cocoBytes = existsSync(cocoDir) ? readdirSync(cocoDir).sort().slice(0, N).map((f) => readFileSync(path.join(cocoDir, f))) : [];
const loadMs = await time(async () => (await loadCaptioner()).dispose());
type Row = { runtime: string; beam: Record<number, number[]>; firstWord: number[]; perWord: number[]; objects: number };
const e2e: Record<string, Row> = {};
const VARIANTS = [
  { name: "app (runtime auto, objects on)", load: { runtime: "auto" as const }, sets: ["flickr8k", "coco"] },
  { name: "app without objects (runtime auto, objects: false)", load: { runtime: "auto" as const, objects: false }, sets: ["flickr8k", "coco"] },
  { name: "reference (runtime tfjs, objects on)", load: { runtime: "tfjs" as const }, sets: ["flickr8k"], n: 20 },
];
const SETS: Record<string, Buffer[]> = { flickr8k: bytes, coco: cocoBytes };
const captioners = await Promise.all(VARIANTS.map((v) => loadCaptioner(v.load)));
/** One caption through steps(), timed: total and first word. */
async function timed(captioner: Captioner, image: Buffer, beam: number) {
  const t0 = performance.now();
  const it = captioner.steps(image, { beam });
  let r = await it.next();
  const first = performance.now() - t0;
  while (!r.done) r = await it.next();
  return { total: performance.now() - t0, first, result: r.value };
}
// Variants take turns photo by photo, so a slow spell of the machine (they come and go within
// seconds here) hits them alike and their ratios hold; each first captions 3 photos to warm up.
for (const [set, images] of Object.entries(SETS)) {
  const here = VARIANTS.flatMap((v, i) => (v.sets.includes(set) && images.length ? [i] : []));
  for (const i of here) {
    e2e[`${VARIANTS[i].name} on ${set}`] = { runtime: `encoder ${captioners[i].runtime.encoder}, decoder ${captioners[i].runtime.decoder}`, beam: { 1: [], 3: [] }, firstWord: [], perWord: [], objects: 0 };
    for (const bt of images.slice(0, 3)) await timed(captioners[i], bt, 1);
  }
  for (const beam of [1, 3]) {
    for (const [j, bt] of images.entries()) {
      for (const i of here) {
        if (j >= (VARIANTS[i].n ?? Infinity)) continue;
        const r0 = e2e[`${VARIANTS[i].name} on ${set}`];
        const { total, first, result } = await timed(captioners[i], bt, beam);
        r0.beam[beam].push(total);
        if (beam === 1) {
          r0.firstWord.push(first);
          r0.perWord.push((total - first) / Math.max(1, result.words.length - 1));
          r0.objects += result.objects.length;
        }
      }
    }
  }
}
for (const r of Object.values(e2e)) r.objects /= r.beam[1].length;
for (const c of captioners) c.dispose();
const rssMb = process.resourceUsage().maxRSS / 1024;
console.log(`captioning benchmark (${N} Flickr8k JPEGs, 224 px), medians:`);
console.log(`  matmul roofline (512x512x1024, 1 thread): tfjs-wasm ${gflops.toFixed(1)} GFLOP/s, onnxruntime ${ortGflops.toFixed(1)} GFLOP/s`);
for (const [runtime, ms] of Object.entries(encMs)) {
  const m = median(ms);
  console.log(`  encoder ${spec.name} on ${runtime}${runtime === "onnx" ? " (2 threads)" : " (1 thread)"}: ${(flops / 1e9).toFixed(3)} GFLOP per image -> ${m.toFixed(1)} ms = ${(flops / m / 1e6).toFixed(1)} GFLOP/s (${((100 * flops) / m / 1e6 / gflops).toFixed(0)}% of the 1-thread roofline; roofline time ${(flops / gflops / 1e6).toFixed(1)} ms)`);
}
console.log(`  JPEG decode + resize: ${median(decodeMs).toFixed(1)} ms`);
const flopMs = (rows: number, g: number) => (rows * stepFlops) / g / 1e6;
console.log(`  decoder step: ${(stepFlops / 1e6).toFixed(1)} MFLOP per row (${members.length}-decoder ensemble); FLOP time at the tfjs / onnxruntime roofline ${flopMs(1, gflops).toFixed(2)} / ${flopMs(1, ortGflops).toFixed(2)} ms for 1 row, ${flopMs(3, gflops).toFixed(2)} / ${flopMs(3, ortGflops).toFixed(2)} ms for 3`);
for (const [runtime, ms] of Object.entries(stepMs)) {
  const [m1, m3] = [median(ms[1].slice(5)), median(ms[3].slice(5))];
  const x = (m: number, rows: number) => `${(m / flopMs(rows, gflops)).toFixed(2)}x / ${(m / flopMs(rows, ortGflops)).toFixed(2)}x`;
  console.log(`  decoder step on ${runtime} (1 thread): ${m1.toFixed(2)} ms for 1 row (greedy) = ${x(m1, 1)} its FLOP time, ${m3.toFixed(2)} ms for 3 rows (beam 3) = ${x(m3, 3)} (target <= 2x)`);
}
for (const [name, r] of Object.entries(e2e)) {
  const n = r.beam[1].length;
  console.log(`  ${name}: ${r.runtime}; ${n} images, ${r.objects.toFixed(2)} objects per photo`);
  console.log(`    greedy: end-to-end ${median(r.beam[1]).toFixed(1)} ms (p99 ${p99(r.beam[1]).toFixed(1)}), first word ${median(r.firstWord).toFixed(1)} ms, then ${median(r.perWord).toFixed(2)} ms per word`);
  console.log(`    beam 3: end-to-end ${median(r.beam[3]).toFixed(1)} ms (p99 ${p99(r.beam[3]).toFixed(1)})`);
  const enc = encMs[r.runtime.startsWith("encoder onnx") ? "onnx" : "tfjs"], step = stepMs[r.runtime.endsWith("decoder onnx") ? "onnx int8" : "tfjs"];
  if (enc && step) {
    const e = median(enc), s1 = median(step[1].slice(5));
    console.log(`    greedy end to end / encoder: ${(median(r.beam[1]) / e).toFixed(2)}x (target <= 1.4x); first word ${median(r.firstWord).toFixed(1)} ms against encoder + 2 steps ${(e + 2 * s1).toFixed(1)} ms (JPEG decode ${median(decodeMs).toFixed(1)} ms not in the encoder's time)`);
  }
}
for (const set of ["flickr8k", "coco"]) {
  const on = e2e[`${VARIANTS[0].name} on ${set}`], off = e2e[`${VARIANTS[1].name} on ${set}`];
  if (!on || !off) continue;
  console.log(`  objects on / off, ${set}: greedy ${(median(on.beam[1]) / median(off.beam[1])).toFixed(2)}x (target <= 1.3x), beam 3 ${(median(on.beam[3]) / median(off.beam[3])).toFixed(2)}x, first word ${(median(on.firstWord) / median(off.firstWord)).toFixed(2)}x`);
}
console.log(`  load (encoder + decoder + warm-up): ${loadMs.toFixed(0)} ms; peak RSS ${rssMb.toFixed(0)} MiB (both runtimes and all three captioners loaded at once)`);
