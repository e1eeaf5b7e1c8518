/** The public types of the captioner: plain data only, tensors never leave model/. */
import type { ImageInput } from "./image.ts";
import type { ModelCard } from "./model-card.ts";

export type { ImageInput, RawImage } from "./image.ts";
export type { CardEpoch, CardScores, CardTrainingRun, ModelCard } from "./model-card.ts";

export interface CaptionOptions {
  /** 1 = greedy; N > 1 = beam search with N hypotheses. Default 3. */
  beam?: number;
  /** Maximum words, not counting the end marker. Default 20. */
  maxLen?: number;
  /** Beam length normalisation: score = logP / len^alpha. Default 1.0 (chosen on the dev split). */
  lengthPenalty?: number;
  /**
   * Detect objects and ground the caption in them (default true): confident detections may put
   * their names into the caption, words that name a detection point at it (CaptionWord.object),
   * and the result lists them. false: the Flickr8k-only captioner, with no detection at all.
   */
  objects?: boolean;
  /**
   * Words the caption must start with ("what if"): they are forced in order and the model decodes
   * the rest from them, with the same search. Each must be a vocabulary word (see
   * Captioner.checkPrefix); a string is split into words. At most maxLen words.
   */
  prefix?: string | readonly string[];
  /**
   * Report each word's most likely alternatives (`top`) and, with beam search, the live beams in
   * every step (default true). false saves a little time when only the caption matters.
   */
  details?: boolean;
  /**
   * Most pixels an encoded image may have (decompression-bomb guard; default 40 million,
   * model/image.ts). A server with its own --pixel-limit passes it here, so both agree.
   */
  pixelLimit?: number;
  /** Called once the image is encoded, before the first word: the detected objects (steps()'s start). */
  onStart?: (start: CaptionStart) => void;
  /** Aborting stops decoding at the next step and frees its state. */
  signal?: AbortSignal;
}

/** One object found by the detector (CenterNet's own COCO head). */
export interface DetectedObject {
  /** COCO class name, e.g. "giraffe", "hot dog" (model/objects.ts COCO_LABELS). */
  label: string;
  /** Detector confidence, 0..1. */
  score: number;
  /** [x, y, width, height] as fractions of the image's width and height (0..1, top-left origin). */
  box: [number, number, number, number];
}

/** What is known when decoding starts. */
export interface CaptionStart {
  /** Confident detections, most confident first (empty with objects: false). */
  objects: DetectedObject[];
  /** [h, w] of each alpha grid. */
  grid: [number, number];
}

/** A word the model weighed at a step. `<end>` stands for ending the caption there. */
export interface WordChoice {
  word: string;
  /** The model's probability for it, 0..1. */
  prob: number;
}

/** One beam-search hypothesis while decoding. */
export interface BeamHypothesis {
  words: string[];
  /** The model's log-probability of these words (and of ending, once done). */
  logProb: number;
  /** It has ended (it can still be the best). */
  done: boolean;
  /** It is the current best caption (the step's `hypothesis`). */
  best: boolean;
}

/** One decoded step, yielded as soon as it exists. */
export interface CaptionStep {
  /** 0-based position of `word` in the caption. */
  index: number;
  /** The word chosen at this step (for beam search: the last word of the current best hypothesis). */
  word: string;
  /** The model's probability for that word, 0..1. */
  prob: number;
  /** Attention over the encoder grid when this word was chosen: row-major h*w numbers summing to 1. */
  alpha: number[];
  /** The whole current best caption so far. With beam search earlier words can change between steps. */
  hypothesis: string[];
  /** `hypothesis` as display text, written as the final caption is (CaptionResult.caption). */
  text: string;
  /** The model's probability of each word of `hypothesis` (earlier ones change with them). */
  probs: number[];
  /** When `word` names a detected object: its index in the start's `objects`. */
  object?: number;
  /** The model's 5 most likely words at this step, most likely first (with `details`). */
  top?: WordChoice[];
  /**
   * Beam search with `details`: the current best first, then every other hypothesis being decoded
   * and the best few that have ended, highest-ranked first. A step is also yielded when only these change (same `index` and `hypothesis`).
   */
  beams?: BeamHypothesis[];
}

export interface CaptionWord {
  word: string;
  prob: number;
  alpha: number[];
  /** When this word names a detected object: its index in `objects`. */
  object?: number;
  /** The model's 5 most likely words at this position, most likely first (with `details`). */
  top?: WordChoice[];
}

export interface CaptionResult {
  /** Display text, e.g. "a dog runs through the grass". */
  caption: string;
  words: CaptionWord[];
  /** [h, w] of each alpha grid. */
  grid: [number, number];
  /** Confident detections, most confident first (empty with objects: false). */
  objects: DetectedObject[];
  /** The model's log-probability of the caption: its words and its end (natural log). */
  logProb: number;
  /** Wall time for decode + encode + search, milliseconds. */
  ms: number;
}

export interface Captioner {
  /** [h, w] of the attention grid. */
  readonly grid: [number, number];
  /** The shipped model card (model/weights/model-card.json), or null when absent. */
  readonly card: ModelCard | null;
  /** Where the encoder and the decoder run (see LoadOptions.runtime). */
  readonly runtime: { encoder: "onnx" | "tfjs"; decoder: "onnx" | "tfjs" };
  /** Vocabulary words (for checking outputs). */
  readonly words: readonly string[];
  /** A prefix (CaptionOptions.prefix) as the words that will be forced; throws PrefixError if it cannot be. */
  checkPrefix(prefix: string | readonly string[], maxLen?: number): string[];
  /** Captions one image. */
  caption(image: ImageInput, opts?: CaptionOptions): Promise<CaptionResult>;
  /** Streams decoding: yields each step, returns the final result. */
  steps(image: ImageInput, opts?: CaptionOptions): AsyncGenerator<CaptionStep, CaptionResult, void>;
  /** The model's tensor memory now (tfjs's count; onnxruntime's buffers are not in it): for health checks. */
  memory(): { tensors: number; bytes: number };
  /** Frees the weights. */
  dispose(): void;
}
