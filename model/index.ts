/**
 * The captioner: `const captioner = await loadCaptioner()`, then `captioner.caption(image)` or
 * `for await (const step of captioner.steps(image)) ...`. Everything is read from local files
 * (model/weights/ and the encoder's npm package); nothing is downloaded.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { DecoderConfig } from "./config.ts";
import { paramShapes, type Params } from "./decoder.ts";
import { encoderSpec, loadEncoder, type EncoderSpec } from "./encoder.ts";
import { toRgbSquare } from "./image.ts";
import { search } from "./search.ts";
import { detokenize } from "./text.ts";
import { initBackend, tf } from "./tf.ts";
import type { CaptionOptions, CaptionResult, CaptionStep, Captioner, ImageInput } from "./types.ts";
import { FUNCTION_WORDS, Vocabulary } from "./vocab.ts";
import { loadArrays } from "./weights.ts";

export type * from "./types.ts";
export { ImageError } from "./image.ts";

/** The shipped model, resolved from this file (not the working directory). */
export const DEFAULT_MODEL_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "weights");

export interface LoadOptions {
  /** Folder with config.json, vocab.json, decoder.{json,bin} and model-card.json. */
  modelDir?: string;
  /** Override the encoder named in config.json (it must produce the same grid and channels). */
  encoder?: EncoderSpec;
  /** Decoding defaults for calls that pass no options. */
  defaults?: Partial<Omit<CaptionOptions, "signal">>;
}

// lengthPenalty 1.0 was chosen on the dev split for the shipped model (beam 3, CIDEr-D / BLEU-4:
// 0.454 / 0.192 at 1.0, 0.444 / 0.188 at 0.7); the model card has the details.
const DECODE_DEFAULTS = { beam: 3, maxLen: 20, lengthPenalty: 1.0 };

function readJson<T>(file: string, what: string): T {
  if (!existsSync(file)) throw new Error(`${what} not found at ${file} (set modelDir to a folder exported by \`npm run pipeline:export\`)`);
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

/** Reads the trained decoder as tensors (weights are stored as float16, computed in float32). */
export function loadDecoder(modelDir: string): { config: DecoderConfig; params: Params; vocab: Vocabulary } {
  const config = readJson<DecoderConfig>(path.join(modelDir, "config.json"), "decoder config");
  const vocab = new Vocabulary(readJson<string[]>(path.join(modelDir, "vocab.json"), "vocabulary"));
  if (!existsSync(path.join(modelDir, "decoder.bin"))) throw new Error(`decoder weights not found at ${path.join(modelDir, "decoder.bin")}`);
  const arrays = loadArrays(path.join(modelDir, "decoder"));
  const params: Params = {};
  for (const [name, shape] of Object.entries(paramShapes(config))) {
    const a = arrays[name];
    if (!a || a.shape.join() !== shape.join()) throw new Error(`decoder weights in ${modelDir}: ${name} should be [${shape}], found ${a ? `[${a.shape}]` : "nothing"}`);
    params[name] = tf.tensor(a.data, shape);
  }
  if (vocab.size !== config.vocabSize) throw new Error(`vocab.json has ${vocab.size} words but the decoder expects ${config.vocabSize}`);
  return { config, params, vocab };
}

export async function loadCaptioner(opts: LoadOptions = {}): Promise<Captioner> {
  const modelDir = opts.modelDir ?? DEFAULT_MODEL_DIR;
  const cardFile = path.join(modelDir, "model-card.json");
  await initBackend();
  const [encoder, { config, params, vocab }] = await Promise.all([
    (async () => {
      const cfg = readJson<DecoderConfig>(path.join(modelDir, "config.json"), "decoder config");
      return loadEncoder(opts.encoder ?? encoderSpec(cfg.encoder));
    })(),
    (async () => loadDecoder(modelDir))(),
  ]);
  const card = existsSync(cardFile) ? (JSON.parse(readFileSync(cardFile, "utf8")) as Record<string, unknown>) : null;
  const regions = config.grid[0] * config.grid[1];
  if (encoder.grid[0] * encoder.grid[1] !== regions || encoder.channels !== config.featureDim) {
    throw new Error(`encoder ${encoder.spec.name} gives ${encoder.grid.join("x")}x${encoder.channels} but the decoder was trained on ${config.grid.join("x")}x${config.featureDim}`);
  }
  const defaults = { ...DECODE_DEFAULTS, maxLen: config.maxLen, ...opts.defaults };
  const repeatable = new Set(vocab.words.flatMap((w, i) => (FUNCTION_WORDS.has(w) ? [i] : [])));

  async function* steps(image: ImageInput, o: CaptionOptions = {}): AsyncGenerator<CaptionStep, CaptionResult, void> {
    const t0 = performance.now();
    const beam = o.beam ?? defaults.beam;
    const maxLen = o.maxLen ?? defaults.maxLen;
    if (!Number.isInteger(beam) || beam < 1 || beam > 10) throw new RangeError(`beam must be an integer from 1 to 10, got ${beam}`);
    if (!Number.isInteger(maxLen) || maxLen < 1 || maxLen > 50) throw new RangeError(`maxLen must be an integer from 1 to 50, got ${maxLen}`);
    const pixels = await toRgbSquare(image, encoder.spec.inputSize);
    o.signal?.throwIfAborted();
    const feats = await encoder.encode([pixels]);
    const it = search(params, feats, { beam, maxLen, lengthPenalty: o.lengthPenalty ?? defaults.lengthPenalty, blockRepeats: true, repeatable, signal: o.signal });
    try {
      let r = await it.next();
      while (!r.done) {
        const best = r.value.best;
        const n = best.ids.length;
        if (n > 0) {
          yield {
            index: n - 1,
            word: vocab.words[best.ids[n - 1]],
            prob: best.probs[n - 1],
            alpha: Array.from(best.alphas[n - 1]),
            hypothesis: vocab.decode(best.ids),
          };
        }
        r = await it.next();
      }
      const words = r.value.ids.map((id, i) => ({ word: vocab.words[id], prob: r.value.probs[i], alpha: Array.from(r.value.alphas[i]) }));
      return { caption: detokenize(words.map((w) => w.word)), words, grid: config.grid, ms: performance.now() - t0 };
    } finally {
      // A consumer that stops early (break, return) closes this generator; close the search
      // too, so its finally frees the decoder state.
      await it.return(undefined as never);
      feats.dispose();
    }
  }

  async function caption(image: ImageInput, o?: CaptionOptions): Promise<CaptionResult> {
    const it = steps(image, o);
    let r = await it.next();
    while (!r.done) r = await it.next();
    return r.value;
  }

  // Warm-up: the first call compiles kernels and allocates; pay it here, not on a user's photo.
  await caption({ data: new Uint8Array(32 * 32 * 3).fill(128), width: 32, height: 32, channels: 3 }, { beam: 1, maxLen: 3 });

  return {
    grid: config.grid,
    card,
    words: vocab.words,
    caption,
    steps,
    dispose() {
      encoder.dispose();
      tf.dispose(Object.values(params));
    },
  };
}
