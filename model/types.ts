/** The public types of the captioner: plain data only, tensors never leave model/. */
import type { ImageInput } from "./image.ts";

export type { ImageInput, RawImage } from "./image.ts";

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
  /** When `word` names a detected object: its index in the start's `objects`. */
  object?: number;
}

export interface CaptionWord {
  word: string;
  prob: number;
  alpha: number[];
  /** When this word names a detected object: its index in `objects`. */
  object?: number;
}

export interface CaptionResult {
  /** Display text, e.g. "a dog runs through the grass". */
  caption: string;
  words: CaptionWord[];
  /** [h, w] of each alpha grid. */
  grid: [number, number];
  /** Confident detections, most confident first (empty with objects: false). */
  objects: DetectedObject[];
  /** Wall time for decode + encode + search, milliseconds. */
  ms: number;
}

export interface ModelCardScores {
  bleu1: number; bleu2: number; bleu3: number; bleu4: number;
  rougeL: number; cider: number; meanLength: number; distinct: number;
}

export interface Captioner {
  /** [h, w] of the attention grid. */
  readonly grid: [number, number];
  /** The shipped model card (model/weights/model-card.json), or null when absent. */
  readonly card: Record<string, unknown> | null;
  /** Where the encoder and the decoder run (see LoadOptions.runtime). */
  readonly runtime: { encoder: "onnx" | "tfjs"; decoder: "onnx" | "tfjs" };
  /** Vocabulary words (for checking outputs). */
  readonly words: readonly string[];
  /** Captions one image. */
  caption(image: ImageInput, opts?: CaptionOptions): Promise<CaptionResult>;
  /** Streams decoding: yields each step, returns the final result. */
  steps(image: ImageInput, opts?: CaptionOptions): AsyncGenerator<CaptionStep, CaptionResult, void>;
  /** Frees the weights. */
  dispose(): void;
}
