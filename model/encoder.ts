/**
 * The frozen image encoder: any TF.js graph model plus the name of the node whose output is
 * the spatial grid the decoder attends over. Nothing is downloaded: weights are read from
 * npm packages already on disk.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { decodeWeights, graphToOnnx } from "./onnx-encoder.ts";
import { importOnnxRuntime } from "./onnxruntime.ts";
import { tf, initBackend } from "./tf.ts";

/** One frozen TF.js graph and the node to read. */
export interface GraphSpec {
  /** Where the graph comes from, for error messages. */
  source: string;
  /** Reads the graph (topology and weights) from disk. */
  read(): Promise<tf.io.ModelArtifacts>;
  /** Graph node giving [1, h, w, channels]. */
  node: string;
  /** The graph's input is pixel (0..255) times this. */
  inputScale: number;
  /** Its output is multiplied by this (default 1), so concatenated graphs contribute on a similar scale. */
  outputScale?: number;
  /** Extra outputs the graph can also give from the same pass (name -> node, each [1, h, w, c]), read when asked for. */
  heads?: Record<string, string>;
  /** Rewrites constants that pin the graph to one input size (called with the size in use). */
  resize?: (artifacts: tf.io.ModelArtifacts, size: number) => void;
}

export interface EncoderSpec {
  /** Short name, stored with features and trained weights so they never get mixed up. */
  name: string;
  /** Square input size in pixels, shared by all graphs. */
  inputSize: number;
  /** Graphs run on the same pixels; their grids must match and their channels are concatenated in this order. */
  graphs: GraphSpec[];
}

const require = createRequire(import.meta.url);

/** Folder of an installed npm package (its "exports" may hide package.json and data files). */
export function packageDir(name: string): string {
  // Walk up from the entry point to the package.json that names the package (nested ones, such as
  // dist/cjs/package.json holding only {"type": "commonjs"}, do not count).
  let dir = path.dirname(require.resolve(name));
  const named = (d: string) => existsSync(path.join(d, "package.json")) && JSON.parse(readFileSync(path.join(d, "package.json"), "utf8")).name === name;
  while (!named(dir)) {
    if (path.dirname(dir) === dir) throw new Error(`cannot find the folder of package "${name}"`);
    dir = path.dirname(dir);
  }
  return dir;
}

/**
 * CenterNet's MobileNetV3 backbone (COCO detection) from @vladmandic/human: 8x8x480 at 256 px,
 * input RGB 0..255. Its detection head's outputs come from the same pass when asked for: the
 * class heatmap `keypoints` [1, s/4, s/4, 80] and the box sides `wh` [1, s/4, s/4, 4] (model/detector.ts decodes them).
 */
export function centernetGraph(): GraphSpec {
  const modelPath = path.join(packageDir("@vladmandic/human"), "models", "centernet.json");
  return {
    source: modelPath, read: () => readGraphModel(modelPath), node: "tower_0/extern1/hard_swish/mul_1", inputScale: 1,
    heads: { keypoints: "tower_0/keypoints", wh: "tower_0/wh" },
    resize: resizeCenternet,
  };
}

/**
 * The head's three 2x upsamplings take their target sizes from int32 constants made for 512 px
 * (32, 64, 128); tfjs would produce those sizes at any input, so they are rewritten for `size`
 * (s/16, s/8, s/4). The ONNX conversion uses a scale of 2 instead and needs no rewrite.
 */
function resizeCenternet(a: tf.io.ModelArtifacts, size: number) {
  const targets: Record<string, number> = { "up_sampling2d/mul": size / 16, "up_sampling2d_1/mul": size / 8, "up_sampling2d_2/mul": size / 4 };
  const bytes: Record<string, number> = { float32: 4, int32: 4, float16: 2, uint16: 2, uint8: 1, bool: 1 };
  const view = new DataView(a.weightData as ArrayBuffer);
  let offset = 0;
  for (const w of a.weightSpecs!) {
    const n = w.shape.reduce((x, y) => x * y, 1);
    const key = Object.keys(targets).find((k) => w.name.endsWith("/" + k));
    if (key) {
      if (w.dtype !== "int32" || w.quantization || n !== 2) throw new Error(`unexpected ${w.name} in ${a.modelTopology}`);
      view.setInt32(offset, targets[key], true);
      view.setInt32(offset + 4, targets[key], true);
    }
    offset += n * bytes[w.quantization?.dtype ?? w.dtype];
  }
}

/**
 * nsfwjs' MobileNetV2-1.4 (ImageNet, then fine-tuned on nsfwjs' own classes), input RGB in [0, 1].
 * We read the last inverted-residual block's linear bottleneck (448 channels): the 1792-channel
 * Conv_1 after it is a 1x1 conv + ReLU6 of exactly this, so it holds the same information at a
 * quarter of the width, and the decoder's per-word cost grows with the width. At 256 px: 8x8x448.
 */
export function mobilenetV2Graph(): GraphSpec {
  const dir = path.join(packageDir("nsfwjs"), "dist", "models", "mobilenet_v2_mid");
  return {
    source: dir,
    read: () => readBundledGraphModel(dir),
    node: "StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/StatefulPartitionedCall/predict/MobilenetV2/expanded_conv_16/project/BatchNorm/FusedBatchNormV3",
    inputScale: 1 / 255,
    // Measured on Flickr8k: this layer's RMS is 1.43, CenterNet's 0.44; scaled to match when both are concatenated.
    outputScale: 0.3,
  };
}

export const ENCODERS: Readonly<Record<string, () => EncoderSpec>> = Object.freeze({
  "centernet-mnv3-256": () => ({ name: "centernet-mnv3-256", inputSize: 256, graphs: [centernetGraph()] }),
  "nsfwjs-mnv2-256": () => ({ name: "nsfwjs-mnv2-256", inputSize: 256, graphs: [mobilenetV2Graph()] }),
  // Both on the same 256 px pixels: 8x8x(480 + 448). The retrieval probe in the model issue found the pair better than either.
  "centernet+mnv2-256": () => ({ name: "centernet+mnv2-256", inputSize: 256, graphs: [centernetGraph(), mobilenetV2Graph()] }),
});

export function encoderSpec(name: string): EncoderSpec {
  const make = ENCODERS[name];
  if (!make) throw new Error(`unknown encoder "${name}"; known: ${Object.keys(ENCODERS).join(", ")}`);
  return make();
}

/**
 * Model JSON plus its weight shards -> in-memory artifacts. The exported graphs pin their input to
 * one size (e.g. 1x512x512x3); the convolutions take any batch and size, so the placeholder is
 * relaxed to let us choose both.
 */
function toArtifacts(json: { modelTopology: { node?: { op: string; attr?: { shape?: { shape?: { dim?: unknown[] } } } }[] }; weightsManifest: tf.io.WeightsManifestConfig; format?: string; generatedBy?: string; convertedBy?: string | null }, shards: Buffer[]): tf.io.ModelArtifacts {
  for (const node of json.modelTopology.node ?? []) {
    if (node.op === "Placeholder" && node.attr?.shape?.shape?.dim) {
      node.attr.shape.shape.dim = node.attr.shape.shape.dim.map((_: unknown, i: number) => ({ size: i === 3 ? "3" : "-1" }));
    }
  }
  const all = Buffer.concat(shards);
  return {
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
}

/** Reads a graph model from local files: an IOHandler, since tfjs (without tfjs-node) has no file:// loader. */
export async function readGraphModel(modelPath: string): Promise<tf.io.ModelArtifacts> {
  const json = JSON.parse(await readFile(modelPath, "utf8"));
  const dir = path.dirname(modelPath);
  const shards = await Promise.all((json.weightsManifest as tf.io.WeightsManifestConfig).flatMap((g) => g.paths).map((p) => readFile(path.join(dir, p))));
  return toArtifacts(json, shards);
}

/**
 * nsfwjs ships its graphs as CommonJS bundles: model.min.js exports the model JSON and each
 * group1-shardNofM.min.js exports one weight shard as base64. Decoding them directly takes
 * milliseconds (nsfwjs.load goes through a much slower path: seconds and over a gigabyte).
 */
async function readBundledGraphModel(dir: string): Promise<tf.io.ModelArtifacts> {
  const json = structuredClone(require(path.join(dir, "model.min.js")));
  const shards = (json.weightsManifest as tf.io.WeightsManifestConfig).flatMap((g) => g.paths).map((p) => Buffer.from(require(path.join(dir, `${p}.min.js`)) as string, "base64"));
  return toArtifacts(json, shards);
}

/** Where the encoder runs: onnxruntime-node's native kernels, or tfjs-wasm (the reference). */
export type EncoderRuntime = "onnx" | "tfjs";

/** A graph's extra output as plain numbers, NHWC. */
export interface Head {
  data: Float32Array;
  shape: [number, number, number, number];
}

export interface Encoder {
  spec: EncoderSpec;
  runtime: EncoderRuntime;
  /** [h, w] of the attention grid. */
  grid: [number, number];
  /** Channels per grid cell. */
  channels: number;
  /** RGB pixels (batch of inputSize^2 * 3 bytes each) -> [batch, h*w, channels] features. Caller disposes. */
  encode(pixels: Uint8Array[]): Promise<tf.Tensor3D>;
  /** The same features plus every head the encoder was loaded with (loadEncoder's `heads`), from the same pass. */
  encodeWithHeads(pixels: Uint8Array[]): Promise<{ feats: tf.Tensor3D; heads: Record<string, Head> }>;
  dispose(): void;
}

/** One graph ready to run: pixels -> [batch, h*w, channels], plus its heads when loaded with them. */
interface LoadedGraph {
  runtime: EncoderRuntime;
  grid: [number, number];
  channels: number;
  run(pixels: Uint8Array[]): Promise<{ feats: tf.Tensor3D; heads: Record<string, Head> }>;
  dispose(): void;
}

async function loadGraph(g: GraphSpec, s: number, runtime: EncoderRuntime | "auto", withHeads: boolean): Promise<LoadedGraph> {
  let artifacts: tf.io.ModelArtifacts;
  try {
    artifacts = await g.read();
  } catch (e) {
    throw new Error(`cannot read the encoder graph at ${g.source}: ${(e as Error).message}`);
  }
  const heads = withHeads ? g.heads ?? {} : {};
  if (Object.keys(heads).length) g.resize?.(artifacts, s);
  if (runtime !== "tfjs") {
    try {
      return await onnxGraph(g, artifacts, s, heads);
    } catch (e) {
      if (runtime === "onnx") throw new Error(`the encoder graph at ${g.source} cannot run on onnxruntime: ${(e as Error).message}`);
      // "auto": the tfjs graph below is always available.
    }
  }
  return tfjsGraph(g, artifacts, s, heads);
}

/**
 * The graph converted to ONNX and run by onnxruntime-node. The conversion does not use tfjs (its
 * wasm heap would keep the weights' and a probe's memory for good): the constants are decoded in plain
 * JavaScript, and the grid is learnt from the warm-up run.
 */
async function onnxGraph(g: GraphSpec, artifacts: tf.io.ModelArtifacts, s: number, heads: Record<string, string>): Promise<LoadedGraph> {
  const ort = await importOnnxRuntime();
  const input = (artifacts.modelTopology as { node: { op: string; name: string }[] }).node.find((n) => n.op === "Placeholder")!.name;
  const onnx = graphToOnnx(artifacts.modelTopology as never, decodeWeights(artifacts), input, { features: g.node, ...heads });
  // No spinning: by default a pool thread busy-waits after each run, and with two graphs (two
  // pools) plus the decoder on 2 cores those spinners took the cores from the work itself. Off,
  // the combined encoder ran in 10.0 ms instead of 21.6 (npm run bench, medians).
  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 2, graphOptimizationLevel: "all", extra: { session: { intra_op: { allow_spinning: "0" } } } });
  const scale = g.outputScale ?? 1;
  const run = async (pixels: Uint8Array[]) => {
    // Interleaved RGB bytes -> planar NCHW floats.
    const n = s * s, data = new Float32Array(pixels.length * 3 * n);
    pixels.forEach((p, b) => {
      const o = b * 3 * n;
      for (let j = 0; j < n; j++) {
        data[o + j] = p[3 * j] * g.inputScale;
        data[o + n + j] = p[3 * j + 1] * g.inputScale;
        data[o + 2 * n + j] = p[3 * j + 2] * g.inputScale;
      }
    });
    return session.run({ [input]: new ort.Tensor("float32", data, [pixels.length, 3, s, s]) });
  };
  try {
    // Warm-up with zeros: learns the grid ([1, h, w, c]) and pays the first run's allocations here.
    const probe = await run([new Uint8Array(s * s * 3)]);
    const [, h, w, c] = probe.features.dims as number[];
    for (const t of Object.values(probe)) t.dispose();
    return {
      grid: [h, w],
      channels: c,
      runtime: "onnx",
      async run(pixels) {
        const out = await run(pixels);
        const f = out.features, feats = f.data as Float32Array;
        if (scale !== 1) for (let i = 0; i < feats.length; i++) feats[i] *= scale;
        const t = tf.tensor3d(feats, [pixels.length, h * w, c]);
        f.dispose();
        const got: Record<string, Head> = {};
        for (const name of Object.keys(heads)) got[name] = { data: out[name].data as Float32Array, shape: out[name].dims as Head["shape"] };
        return { feats: t, heads: got };
      },
      dispose: () => void session.release(),
    };
  } catch (e) {
    await session.release();
    throw e;
  }
}

/** The graph on tfjs-wasm: the reference path, and the fallback where onnxruntime is missing. */
async function tfjsGraph(g: GraphSpec, artifacts: tf.io.ModelArtifacts, s: number, heads: Record<string, string>): Promise<LoadedGraph> {
  const headNames = Object.keys(heads);
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const exec = (x: tf.Tensor4D) => {
    const r = model.execute(x, [g.node, ...Object.values(heads)]) as tf.Tensor4D | tf.Tensor4D[];
    return Array.isArray(r) ? r : [r]; // one requested node comes back bare
  };
  // Probe once with zeros: learns the grid shape and warms the kernels up.
  const probe = tf.tidy(() => exec(tf.zeros([1, s, s, 3])));
  const [, h, w, c] = probe[0].shape;
  tf.dispose(probe);
  const scale = g.outputScale ?? 1;
  return {
    grid: [h, w],
    channels: c,
    runtime: "tfjs",
    async run(pixels) {
      const [feats, ...outs] = tf.tidy(() => {
        const flat = new Float32Array(pixels.length * s * s * 3);
        pixels.forEach((p, i) => {
          for (let j = 0; j < p.length; j++) flat[i * s * s * 3 + j] = p[j] * g.inputScale;
        });
        const [f, ...rest] = exec(tf.tensor4d(flat, [pixels.length, s, s, 3]));
        return [f.mul(scale).reshape([pixels.length, h * w, c]) as tf.Tensor3D, ...rest];
      });
      const got: Record<string, Head> = {};
      for (const [i, name] of headNames.entries()) {
        got[name] = { data: (await outs[i].data()) as Float32Array, shape: outs[i].shape as Head["shape"] };
        outs[i].dispose();
      }
      return { feats: feats as tf.Tensor3D, heads: got };
    },
    dispose: () => model.dispose(),
  };
}

/**
 * Loads the encoder. runtime "auto" (default) uses onnxruntime-node when it is installed and the
 * graph converts, else tfjs-wasm. `heads`: also compute the graphs' extra outputs (CenterNet's
 * detection head) in the same pass, for encodeWithHeads.
 */
export async function loadEncoder(spec: EncoderSpec, runtime: EncoderRuntime | "auto" = "auto", opts: { heads?: boolean } = {}): Promise<Encoder> {
  await initBackend();
  const s = spec.inputSize;
  const graphs: LoadedGraph[] = [];
  try {
    for (const g of spec.graphs) graphs.push(await loadGraph(g, s, runtime, opts.heads ?? false));
    if (graphs.some((g) => g.grid.join() !== graphs[0].grid.join())) throw new Error(`encoder "${spec.name}": its graphs give different grids (${graphs.map((g) => g.grid.join("x")).join(", ")})`);
  } catch (e) {
    for (const g of graphs) g.dispose();
    throw e;
  }
  const encoder: Encoder = {
    spec,
    // "onnx" only when every graph runs there.
    runtime: graphs.every((g) => g.runtime === "onnx") ? "onnx" : "tfjs",
    grid: graphs[0].grid,
    channels: graphs.reduce((n, g) => n + g.channels, 0),
    async encode(pixels) {
      return (await encoder.encodeWithHeads(pixels)).feats;
    },
    async encodeWithHeads(pixels) {
      for (const p of pixels) if (p.length !== s * s * 3) throw new Error(`encoder expects ${s}x${s}x3 pixels, got ${p.length} bytes`);
      // One after the other: each ONNX session already uses both cores.
      const parts: tf.Tensor3D[] = [];
      const heads: Record<string, Head> = {};
      for (const g of graphs) {
        const r = await g.run(pixels);
        parts.push(r.feats);
        Object.assign(heads, r.heads);
      }
      if (parts.length === 1) return { feats: parts[0], heads };
      const feats = tf.concat(parts, 2);
      tf.dispose(parts);
      return { feats, heads };
    },
    dispose: () => graphs.forEach((g) => g.dispose()),
  };
  return encoder;
}
