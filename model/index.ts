/**
 * The captioner: `const captioner = await loadCaptioner()`, then `captioner.caption(image)` or
 * `for await (const step of captioner.steps(image)) ...`. Everything is read from local files
 * (model/weights/ and the encoder's npm package); nothing is downloaded.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { DecoderConfig } from "./config.ts";
import { paramShapes, type Params } from "./decoder.ts";
import { loadDetectorCalibration } from "./detector-calibration.ts";
import { classScores, decodeDetections } from "./detector.ts";
import { encodeBatcher } from "./encode-batcher.ts";
import { encoderSpec, loadEncoder, type EncoderRuntime as Runtime, type EncoderSpec } from "./encoder.ts";
import { loadLanguagePrior } from "./language-prior.ts";
import { PACKAGE_ROOT } from "./package-root.ts";
import type { ModelCard } from "./model-card.ts";
import { GROUNDING_DEFAULTS, groundingPlan, linkWords, wordClasses, type GroundingPlan, type GroundingSettings } from "./grounding.ts";
import { toRgbSquare } from "./image.ts";
import { onnxDecoder } from "./onnx-decoder.ts";
import { prefixIds } from "./prefix.ts";
import { search, type Alternative, type Hypothesis } from "./search.ts";
import { ensembleDecoder, tfDecoder } from "./step-decoder.ts";
import { detokenize, fixArticles } from "./text.ts";
import { initBackend, tf } from "./tf.ts";
import type { BeamHypothesis, CaptionOptions, CaptionResult, CaptionStep, Captioner, DetectedObject, ImageInput, WordChoice } from "./types.ts";
import { FUNCTION_WORDS, Vocabulary } from "./vocab.ts";
import { loadArrays, type NamedArray } from "./weights.ts";

export type * from "./types.ts";
// The one image decoder, for the server's uploads too (server/decode-upload.ts).
export { ImageError, imageError, imageSize, toRgb } from "./image.ts";
export { PrefixError } from "./prefix.ts";
export { SCORE_COLUMNS } from "./model-card.ts";

/** The shipped model, resolved from the package's folder (not the working directory). */
export const DEFAULT_MODEL_DIR = path.join(PACKAGE_ROOT, "model", "weights");

export interface LoadOptions {
  /** Folder with config.json, vocab.json, decoder.{json,bin} and model-card.json. */
  modelDir?: string;
  /** Override the encoder named in config.json (it must produce the same grid and channels). */
  encoder?: EncoderSpec;
  /** Decoding defaults for calls that pass no options. */
  defaults?: Partial<Omit<CaptionOptions, "signal">>;
  /**
   * Where the encoder and decoder run: "onnx" (onnxruntime-node's native kernels, fast), "tfjs"
   * (tfjs-wasm, the reference), or "auto" (default): onnx where it works, tfjs for the rest.
   */
  runtime?: Runtime | "auto";
  /** Grounding thresholds and weights (model/grounding.ts); the defaults were chosen on the dev sets. */
  grounding?: Partial<GroundingSettings>;
  /**
   * false: load the Flickr8k-only captioner, without the detector's head (its pass costs nothing
   * extra then, unless the decoder reads class scores: DecoderConfig.tags); every call behaves as
   * with CaptionOptions.objects false. Default true.
   */
  objects?: boolean;
  /**
   * The decoder's big matrices on onnxruntime: "int8" (default; one scale per column, and each step
   * reads a quarter of the bytes: a step mostly streams its weights, so it runs about 4x faster) or
   * "float32" (the same numbers as the tfjs reference, which tests compare against). The model card
   * has both's dev scores. tfjs always runs float32.
   */
  decoderWeights?: "int8" | "float32";
  /**
   * At most this many photos that concurrent calls want encoded at the same moment go through the
   * encoder together (model/encode-batcher.ts). Default 1, each photo alone: for a server, where a
   * shared pass delays the first words and grows onnxruntime's memory (bench/server-soak.ts: median
   * latency 395 / 465 ms and RSS 391 / 381 MiB batched at 2 against 349 ms and 344 MiB alone). The
   * `caption` CLI passes 8: folders want throughput (bench/folder.ts). At 1, concurrent photos still
   * take turns through the same queue, one pass each, as onnxruntime would run them anyway.
   */
  encoderBatch?: number;
}

/** At most this many objects are listed per photo. */
const MAX_OBJECTS = 10;
/** Alternatives reported per word (CaptionWord.top). */
const TOP_K = 5;

// lengthPenalty 1.0 was chosen on the dev split (beam 3, CIDEr-D / BLEU-4): for the first ensemble
// (decoder 1 with the seed-2 decoder) 0.458 / 0.199 at 1.0, 0.448 / 0.197 at 0.7, 0.460 / 0.196 at
// 1.3; it was not re-tuned for the shipped seed-3 pair. The model card has the details.
const DECODE_DEFAULTS = { beam: 3, maxLen: 20, lengthPenalty: 1.0 };

function readJson<T>(file: string, what: string): T {
  if (!existsSync(file)) throw new Error(`${what} not found at ${file} (set modelDir to a folder exported by \`npm run pipeline:export\`)`);
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

/**
 * Reads the trained decoder (weights are stored as float16 and computed in float32): one set of
 * weights, or several when the folder holds an ensemble (config.members). Words added after
 * training for detected objects (config.extraWords, extra-words.bin: notebooks-port/object-words.ts)
 * are appended to the vocabulary, the word vectors and every member's output layer.
 */
export function loadDecoder(modelDir: string): { config: DecoderConfig; members: Record<string, NamedArray>[]; vocab: Vocabulary; extraWords: number } {
  const config = readJson<DecoderConfig & { extraWords?: string[] }>(path.join(modelDir, "config.json"), "decoder config");
  const trained = readJson<string[]>(path.join(modelDir, "vocab.json"), "vocabulary");
  if (trained.length !== config.vocabSize) throw new Error(`vocab.json has ${trained.length} words but the decoder expects ${config.vocabSize}`);
  const files = config.members ?? ["decoder"];
  if (!Array.isArray(files) || !files.length || files.some((f) => typeof f !== "string" || !/^[\w.-]+$/.test(f))) throw new Error(`config.json in ${modelDir}: members must be a list of weight-file names`);
  const members = files.map((file) => {
    if (!existsSync(path.join(modelDir, `${file}.bin`))) throw new Error(`decoder weights not found at ${path.join(modelDir, `${file}.bin`)}`);
    const arrays = loadArrays(path.join(modelDir, file));
    for (const [name, shape] of Object.entries(paramShapes(config))) {
      const a = arrays[name];
      if (!a || a.shape.join() !== shape.join()) throw new Error(`decoder weights ${file} in ${modelDir}: ${name} should be [${shape}], found ${a ? `[${a.shape}]` : "nothing"}`);
    }
    return arrays;
  });
  const extra = config.extraWords ?? [];
  const { extraWords: _, ...decoder } = config;
  if (!extra.length) return { config: decoder, members, vocab: new Vocabulary(trained), extraWords: 0 };
  const x = loadArrays(path.join(modelDir, "extra-words"));
  const V = config.vocabSize, n = extra.length, E = config.embedDim, O = config.outDim;
  const need = (name: string, shape: number[]) => {
    if (x[name]?.shape.join() !== shape.join()) throw new Error(`extra-words in ${modelDir}: ${name} should be [${shape}] for the ${n} words in config.json`);
    return x[name].data;
  };
  const emb = need("embedding", [n, E]);
  const extended = members.map((m, k) => {
    const cols = need(`logits:${files[k]}`, [O, n]), bias = need(`logitsBias:${files[k]}`, [n]);
    const logits = new Float32Array(O * (V + n));
    for (let j = 0; j < O; j++) {
      logits.set(m.logits.data.subarray(j * V, (j + 1) * V), j * (V + n));
      logits.set(cols.subarray(j * n, (j + 1) * n), j * (V + n) + V);
    }
    const embedding = new Float32Array((V + n) * E);
    embedding.set(m.embedding.data);
    embedding.set(emb, V * E);
    const logitsBias = new Float32Array(V + n);
    logitsBias.set(m.logitsBias.data);
    logitsBias.set(bias, V);
    return { ...m, embedding: { shape: [V + n, E], data: embedding }, logits: { shape: [O, V + n], data: logits }, logitsBias: { shape: [V + n], data: logitsBias } };
  });
  return { config: { ...decoder, vocabSize: V + n }, members: extended, vocab: new Vocabulary([...trained, ...extra]), extraWords: n };
}

/** The same weights as tfjs tensors (the reference decoder, and what training uses). */
export function toParams(config: DecoderConfig, arrays: Record<string, NamedArray>): Params {
  return Object.fromEntries(Object.keys(paramShapes(config)).map((name) => [name, tf.tensor(arrays[name].data, arrays[name].shape)]));
}

/**
 * The decoder on the requested runtime. "auto" takes onnxruntime-node when it is installed and
 * can build the graphs, else tfjs.
 */
async function stepDecoders(config: DecoderConfig, members: Record<string, NamedArray>[], runtime: Runtime | "auto", weights: "int8" | "float32") {
  if (runtime !== "tfjs") {
    try {
      // The whole ensemble in one pair of graphs: one native call per step.
      const onnx = await onnxDecoder(members, config, { int8: weights === "int8" });
      return { runtime: "onnx" as const, decoder: onnx, dispose: () => void onnx.release() };
    } catch (e) {
      if (runtime === "onnx") throw new Error(`the decoder cannot run on onnxruntime: ${(e as Error).message}`);
    }
  }
  const params = members.map((m) => toParams(config, m));
  return { runtime: "tfjs" as const, decoder: ensembleDecoder(params.map(tfDecoder)), dispose: () => tf.dispose(params.flatMap((p) => Object.values(p))) };
}

export async function loadCaptioner(opts: LoadOptions = {}): Promise<Captioner> {
  // Checked before anything is loaded: a bad option must not leave native sessions behind.
  if (opts.encoderBatch !== undefined && (!Number.isInteger(opts.encoderBatch) || opts.encoderBatch < 1)) throw new RangeError(`encoderBatch must be a positive integer, got ${opts.encoderBatch}`);
  const modelDir = opts.modelDir ?? DEFAULT_MODEL_DIR;
  const cardFile = path.join(modelDir, "model-card.json");
  await initBackend();
  const runtime = opts.runtime ?? "auto";
  const { config, members, vocab, extraWords } = loadDecoder(modelDir);
  const objectsOn = opts.objects ?? true;
  const [encoder, dec] = await Promise.all([loadEncoder(opts.encoder ?? encoderSpec(config.encoder), runtime, { heads: objectsOn || Boolean(config.tags) }), stepDecoders(config, members, runtime, opts.decoderWeights ?? "int8")]);
  const card = existsSync(cardFile) ? (JSON.parse(readFileSync(cardFile, "utf8")) as ModelCard) : null;
  const regions = config.grid[0] * config.grid[1];
  if (encoder.grid[0] * encoder.grid[1] !== regions || encoder.channels !== config.featureDim) {
    throw new Error(`encoder ${encoder.spec.name} gives ${encoder.grid.join("x")}x${encoder.channels} but the decoder was trained on ${config.grid.join("x")}x${config.featureDim}`);
  }
  const defaults = { ...DECODE_DEFAULTS, maxLen: config.maxLen, ...opts.defaults };
  const batched = encodeBatcher(encoder, opts.encoderBatch ?? 1);
  const repeatable = new Set(vocab.words.flatMap((w, i) => (FUNCTION_WORDS.has(w) ? [i] : [])));
  const grounding = { ...GROUNDING_DEFAULTS, ...opts.grounding };
  const prior = loadLanguagePrior(modelDir, vocab.size);
  const calibration = loadDetectorCalibration(modelDir);
  const classes = wordClasses(vocab);
  const extraIds = new Set(Array.from({ length: extraWords }, (_, i) => vocab.size - extraWords + i));
  // Without objects the added words are never used: the captioner is Flickr8k's alone.
  const flickrOnly = new Float32Array(vocab.size);
  for (const id of extraIds) flickrOnly[id] = -Infinity;

  const articles = ["a", "an"].filter((w) => vocab.has(w)).map((w) => vocab.id(w));
  const choices = (top: readonly Alternative[]): WordChoice[] => top.map((a) => ({ word: vocab.words[a.id], prob: a.prob }));
  /** The model's own log-probability of a hypothesis (not the ranking score, which has grounding's biases in it). */
  const logProbOf = (h: Hypothesis) => h.probs.reduce((s, p) => s + Math.log(p), 0) + (h.endProb === undefined ? 0 : Math.log(h.endProb));
  const beamView = (beams: readonly Hypothesis[], best: Hypothesis): BeamHypothesis[] =>
    beams.map((h) => ({ words: fixArticles(vocab.decode(h.ids)), logProb: logProbOf(h), done: h.endProb !== undefined, best: h.ids.join() === best.ids.join() }));

  async function* steps(image: ImageInput, o: CaptionOptions = {}): AsyncGenerator<CaptionStep, CaptionResult, void> {
    const t0 = performance.now();
    const beam = o.beam ?? defaults.beam;
    const maxLen = o.maxLen ?? defaults.maxLen;
    if (!Number.isInteger(beam) || beam < 1 || beam > 10) throw new RangeError(`beam must be an integer from 1 to 10, got ${beam}`);
    if (!Number.isInteger(maxLen) || maxLen < 1 || maxLen > 50) throw new RangeError(`maxLen must be an integer from 1 to 50, got ${maxLen}`);
    // "a" and "an" are one word to a prefix: the page shows them fixed to the next word (fixArticles),
    // so forcing the shown one would put a word there the model did not choose.
    const prefix = (o.prefix === undefined ? [] : prefixIds(o.prefix, vocab, maxLen)).map((id) => (articles.includes(id) ? articles : id));
    const details = o.details ?? true;
    const pixels = await toRgbSquare(image, encoder.spec.inputSize, { pixelLimit: o.pixelLimit });
    o.signal?.throwIfAborted();
    const { feats, heads } = await batched.encode(pixels, o.signal);
    // A decoder with tags reads the head's class scores whether or not objects are shown or grounded.
    if (config.tags && !heads.keypoints) {
      feats.dispose();
      throw new Error(`the decoder reads class scores but encoder ${encoder.spec.name} has no detection head`);
    }
    const tags = config.tags ? classScores(heads.keypoints) : undefined;
    let objects: DetectedObject[] = [];
    let plan: GroundingPlan = { bias: flickrOnly, constraints: [] };
    if (objectsOn && (o.objects ?? true) && heads.keypoints && heads.wh) {
      const found = decodeDetections(heads.keypoints, heads.wh, encoder.spec.inputSize, { minScore: Math.min(grounding.absentScore, grounding.showScore), maxObjects: 50, iou: 0.5 });
      objects = found.filter((d) => d.score >= grounding.showScore).slice(0, MAX_OBJECTS);
      plan = groundingPlan(found, vocab, classes, extraIds, { ...grounding, useScore: Math.max(grounding.useScore, grounding.showScore) }, calibration);
    }
    try {
      o.onStart?.({ objects, grid: config.grid });
    } catch (e) {
      feats.dispose(); // a throwing callback must not leak the features
      throw e;
    }
    // The everyday-caption prior speaks only when a detected name must go in: Flickr8k-like photos decode as before.
    const fused = prior && grounding.priorWeight > 0 && plan.constraints.length ? { weight: grounding.priorWeight, model: prior } : undefined;
    const it = search(dec.decoder, feats, { beam, maxLen, lengthPenalty: o.lengthPenalty ?? defaults.lengthPenalty, blockRepeats: true, repeatable, tags, bias: plan.bias, constraints: plan.constraints, slack: grounding.slack, trustOwn: plan.trustOwn, prior: fused, prefix, topK: details ? TOP_K : 0, beams: details && beam > 1, signal: o.signal });
    try {
      let r = await it.next();
      while (!r.done) {
        const { best, beams } = r.value;
        const n = best.ids.length;
        if (n > 0) {
          const hypothesis = fixArticles(vocab.decode(best.ids));
          const object = linkWords(hypothesis, objects).at(-1);
          yield {
            index: n - 1,
            word: hypothesis.at(-1) ?? vocab.words[best.ids[n - 1]],
            prob: best.probs[n - 1],
            alpha: Array.from(best.alphas[n - 1]),
            hypothesis,
            text: detokenize(hypothesis),
            probs: [...best.probs],
            ...(object === undefined ? {} : { object }),
            ...(details ? { top: choices(best.top[n - 1]) } : {}),
            ...(beams ? { beams: beamView(beams, best) } : {}),
          };
        }
        r = await it.next();
      }
      const tokens = fixArticles(r.value.ids.map((id) => vocab.words[id]));
      const links = linkWords(tokens, objects);
      const words = r.value.ids.map((_, i) => ({
        word: tokens[i],
        prob: r.value.probs[i],
        alpha: Array.from(r.value.alphas[i]),
        ...(links[i] === undefined ? {} : { object: links[i] }),
        ...(details ? { top: choices(r.value.top[i]) } : {}),
      }));
      return { caption: detokenize(words.map((w) => w.word)), words, grid: config.grid, objects, logProb: logProbOf(r.value), ms: performance.now() - t0 };
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
    runtime: { encoder: encoder.runtime, decoder: dec.runtime },
    words: vocab.words,
    checkPrefix: (prefix, maxLen = defaults.maxLen) => prefixIds(prefix, vocab, maxLen).map((id) => vocab.words[id]),
    caption,
    steps,
    memory: () => {
      const { numTensors, numBytes } = tf.memory();
      return { tensors: numTensors, bytes: numBytes };
    },
    dispose() {
      encoder.dispose();
      dec.dispose();
    },
  };
}
