/**
 * The model card (model/weights/model-card.json): one type for the pipeline that writes it
 * (notebooks-port/export.ts: architecture, data, training, weights; evaluate.ts: scores) and for the
 * app that reads it (the studio's card panel, MODEL_CARD.md), and one list of the score columns
 * both show. Every field may be missing in a card written by an older pipeline.
 */
import type { DecoderConfig } from "./config.ts";

/** One decoding's figures on one set (notebooks-port/lib/metrics.ts and evaluate.ts). */
export interface CardScores {
  bleu1?: number;
  bleu2?: number;
  bleu3?: number;
  bleu4?: number;
  rougeL?: number;
  cider?: number;
  /** Share of the objects that >= 3 of a photo's references name that the caption names too. */
  objectRecall?: number;
  objectRefs?: number;
  meanLength?: number;
  /** Share of images whose caption no other image got. */
  distinct?: number;
  medianMs?: number;
  meanObjects?: number;
  images?: number;
}

/** One dev measurement during training (an epoch, or a fraction of one with --evalEvery). */
export interface CardEpoch extends CardScores {
  epoch: number;
  trainXent?: number;
  /** Self-critical runs: the mean CIDEr-D reward of the sampled captions. */
  trainReward?: number;
  devXent?: number;
  lr?: number;
  seconds?: number;
  tokensPerSec?: number;
  peakRssMB?: number;
}

export interface CardTrainingRun {
  run: string;
  /** "auto"/"scratch", or the checkpoint it started from. */
  init: string;
  epochs: number;
  bestEpoch: number;
  bestDevCiderGreedy: number;
  seconds: number;
  tokensPerSec: number;
  hyperParameters: Record<string, number | string | boolean>;
  changes?: { atEpoch: number; from: Record<string, unknown>; to: Record<string, unknown> }[];
  history: CardEpoch[];
}

export interface ModelCard {
  architecture?: Partial<DecoderConfig>;
  data?: { dataset?: string; train?: number; dev?: number; test?: number; vocabulary?: number; minCount?: number; augmentation?: string };
  training?: CardTrainingRun[];
  weights?: { dtype?: string; bytes?: number; from?: string };
  /** Set ("test" = the Flickr8k test split, "coco-dev", each with a "-no-objects" ablation) -> decoding ("beam1", "beam3") -> figures. */
  scores?: Record<string, Record<string, CardScores>>;
  /** Set -> one human caption against the others, scored the same way. */
  human?: Record<string, CardScores>;
  /** Training-curve pictures, relative to model/. */
  curves?: string[];
  /** The card's prose: what is shipped, how it was chosen, what did not help, speed, known failures. */
  sections?: CardSection[];
  /** Older cards' prose: free paragraphs, shown under "Notes". New cards use `sections`. */
  notes?: string[];
}

/**
 * A titled part of the card's prose. Structured, not free paragraphs, so that a reader can find
 * what they look for by heading, and a sweep's figures sit in a table's rows and columns rather
 * than in a sentence of "a / b / c". Shown as: the title, the intro, the items as bullets, the tables,
 * then the subsections one heading level down.
 */
export interface CardSection {
  title: string;
  intro?: string;
  items?: string[];
  tables?: CardTable[];
  subsections?: CardSection[];
}

/** Cells are text (figures keep the precision they were measured with); a caption says what the rows share. */
export interface CardTable {
  caption?: string;
  columns: string[];
  rows: string[][];
}

/** The score columns, in the order the card and the studio show them. */
export const SCORE_COLUMNS: readonly { key: keyof CardScores; label: string; hint: string; format: (v: number) => string; headline?: boolean }[] = [
  { key: "bleu1", label: "BLEU-1", hint: "unigram precision with brevity penalty", format: (v) => v.toFixed(3) },
  { key: "bleu2", label: "BLEU-2", hint: "n-grams up to 2", format: (v) => v.toFixed(3) },
  { key: "bleu3", label: "BLEU-3", hint: "n-grams up to 3", format: (v) => v.toFixed(3) },
  { key: "bleu4", label: "BLEU-4", hint: "n-grams up to 4: the usual headline", format: (v) => v.toFixed(3), headline: true },
  { key: "rougeL", label: "ROUGE-L", hint: "longest common subsequence F-score", format: (v) => v.toFixed(3) },
  { key: "cider", label: "CIDEr-D", hint: "consensus with the 5 references, TF-IDF weighted", format: (v) => v.toFixed(3), headline: true },
  { key: "objectRecall", label: "Object recall", hint: "share of the objects most references name that the caption names too", format: (v) => v.toFixed(3) },
  { key: "meanLength", label: "Length", hint: "mean words per caption", format: (v) => v.toFixed(1) },
  { key: "distinct", label: "Distinct", hint: "share of images with a caption no other image got", format: (v) => `${(v * 100).toFixed(1)}%` },
  { key: "medianMs", label: "ms / image", hint: "median model time per image when evaluated", format: (v) => v.toFixed(1) },
];
