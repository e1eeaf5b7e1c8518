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
  /** Aborting stops decoding at the next step and frees its state. */
  signal?: AbortSignal;
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
}

export interface CaptionWord {
  word: string;
  prob: number;
  alpha: number[];
}

export interface CaptionResult {
  /** Display text, e.g. "a dog runs through the grass". */
  caption: string;
  words: CaptionWord[];
  /** [h, w] of each alpha grid. */
  grid: [number, number];
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
