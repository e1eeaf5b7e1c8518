/**
 * The frozen image encoder: any TF.js graph model plus the name of the node whose output is
 * the spatial grid the decoder attends over. Nothing is downloaded: weights are read from
 * npm packages already on disk.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { graphToOnnx } from "./onnx.ts";
import { tf, initBackend } from "./tf.ts";

export interface EncoderSpec {
  /** Short name, stored with features and trained weights so they never get mixed up. */
  name: string;
  /** Path of the TF.js graph-model JSON (weights shards are read from beside it). */
  modelPath: string;
  /** Graph node giving [1, h, w, channels]. */
  node: string;
  /** Square input size in pixels. */
  inputSize: number;
  /** The model's input is pixel (0..255) times this. */
  inputScale: number;
}

const require = createRequire(import.meta.url);

/** Folder of an installed npm package (its "exports" may hide package.json and data files). */
export function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (!existsSync(path.join(dir, "package.json")) || path.basename(dir) === "dist") dir = path.dirname(dir);
  return dir;
}

/**
 * CenterNet's MobileNetV3 backbone (COCO detection) from @vladmandic/human: 8x8x480 at 256 px.
 * A retrieval probe found it describes photos better than nsfwjs' MobileNetV2 (see the model card).
 */
export function centernetSpec(): EncoderSpec {
  return {
    name: "centernet-mnv3-256",
    modelPath: path.join(packageDir("@vladmandic/human"), "models", "centernet.json"),
    node: "tower_0/extern1/hard_swish/mul_1",
    inputSize: 256,
    inputScale: 1,
  };
}

export const ENCODERS: Readonly<Record<string, () => EncoderSpec>> = Object.freeze({
  "centernet-mnv3-256": centernetSpec,
});

export function encoderSpec(name: string): EncoderSpec {
  const make = ENCODERS[name];
  if (!make) throw new Error(`unknown encoder "${name}"; known: ${Object.keys(ENCODERS).join(", ")}`);
  return make();
}

/** Reads a graph model from local files: an IOHandler, since tfjs (without tfjs-node) has no file:// loader. */
export async function readGraphModel(modelPath: string): Promise<tf.io.ModelArtifacts> {
  const json = JSON.parse(await readFile(modelPath, "utf8"));
  const dir = path.dirname(modelPath);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest as tf.io.WeightsManifestConfig) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(await readFile(path.join(dir, p)));
  }
  // The exported graph pins its input to one size (e.g. 1x512x512x3); the convolutions take any
  // batch and size, so relax the placeholder to let us choose both.
  for (const node of json.modelTopology.node ?? []) {
    if (node.op === "Placeholder" && node.attr?.shape?.shape?.dim) {
      node.attr.shape.shape.dim = node.attr.shape.shape.dim.map((_: unknown, i: number) => ({ size: i === 3 ? "3" : "-1" }));
    }
  }
  const all = Buffer.concat(buffers);
  return {
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
}

/** Where the encoder runs: onnxruntime-node's native kernels, or tfjs-wasm (the reference). */
export type EncoderRuntime = "onnx" | "tfjs";

export interface Encoder {
  spec: EncoderSpec;
  runtime: EncoderRuntime;
  /** [h, w] of the attention grid. */
  grid: [number, number];
  /** Channels per grid cell. */
  channels: number;
  /** RGB pixels (batch of inputSize^2 * 3 bytes each) -> [batch, h*w, channels] features. Caller disposes. */
  encode(pixels: Uint8Array[]): Promise<tf.Tensor3D>;
  dispose(): void;
}

/**
 * Loads the encoder. runtime "auto" (default) uses onnxruntime-node when it is installed and the
 * graph converts, else tfjs-wasm.
 */
export async function loadEncoder(spec: EncoderSpec, runtime: EncoderRuntime | "auto" = "auto"): Promise<Encoder> {
  await initBackend();
  let artifacts: tf.io.ModelArtifacts;
  try {
    artifacts = await readGraphModel(spec.modelPath);
  } catch (e) {
    throw new Error(`encoder "${spec.name}": cannot read model at ${spec.modelPath}: ${(e as Error).message}`);
  }
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const s = spec.inputSize;
  const run = (x: tf.Tensor4D) => model.execute(x, spec.node) as tf.Tensor4D;
  // Probe once with zeros: learns the grid shape and warms the kernels up.
  const probe = tf.tidy(() => run(tf.zeros([1, s, s, 3])));
  const [, h, w, c] = probe.shape;
  probe.dispose();
  const check = (pixels: Uint8Array[]) => {
    for (const p of pixels) if (p.length !== s * s * 3) throw new Error(`encoder expects ${s}x${s}x3 pixels, got ${p.length} bytes`);
  };
  const base = { spec, grid: [h, w] as [number, number], channels: c };

  if (runtime !== "tfjs") {
    try {
      // onnxruntime-node >= 1.2x on Linux starts a telemetry client (uploads to a Microsoft collector,
      // leaves mat-debug-*.log and .ses files in $TMPDIR). A captioning studio has no business
      // phoning home, so it is switched off unless the user explicitly set the variable.
      process.env.ORT_DISABLE_TELEMETRY ??= "1";
      const ort = await import("onnxruntime-node");
      const input = (artifacts.modelTopology as { node: { op: string; name: string }[] }).node.find((n) => n.op === "Placeholder")!.name;
      const onnx = graphToOnnx(artifacts.modelTopology as never, model.weights, input, spec.node);
      const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 2, graphOptimizationLevel: "all" });
      model.dispose(); // the ONNX model now holds its own copy of the weights
      const encoder: Encoder = {
        ...base,
        runtime: "onnx",
        async encode(pixels) {
          check(pixels);
          // Interleaved RGB bytes -> planar NCHW floats.
          const n = s * s, data = new Float32Array(pixels.length * 3 * n);
          pixels.forEach((p, b) => {
            const o = b * 3 * n;
            for (let j = 0; j < n; j++) {
              data[o + j] = p[3 * j] * spec.inputScale;
              data[o + n + j] = p[3 * j + 1] * spec.inputScale;
              data[o + 2 * n + j] = p[3 * j + 2] * spec.inputScale;
            }
          });
          const out = await session.run({ [input]: new ort.Tensor("float32", data, [pixels.length, 3, s, s]) });
          const f = out.features;
          const t = tf.tensor3d(f.data as Float32Array, [pixels.length, h * w, c]);
          f.dispose();
          return t;
        },
        dispose: () => void session.release(),
      };
      await (await encoder.encode([new Uint8Array(s * s * 3)])).dispose();
      return encoder;
    } catch (e) {
      if (runtime === "onnx") throw new Error(`encoder "${spec.name}" cannot run on onnxruntime: ${(e as Error).message}`);
      // "auto": the tfjs graph below is always available.
    }
  }
  return {
    ...base,
    runtime: "tfjs",
    async encode(pixels) {
      check(pixels);
      return tf.tidy(() => {
        const flat = new Float32Array(pixels.length * s * s * 3);
        pixels.forEach((p, i) => {
          for (let j = 0; j < p.length; j++) flat[i * s * s * 3 + j] = p[j] * spec.inputScale;
        });
        const out = run(tf.tensor4d(flat, [pixels.length, s, s, 3]));
        return out.reshape([pixels.length, h * w, c]) as tf.Tensor3D;
      });
    },
    dispose: () => model.dispose(),
  };
}
