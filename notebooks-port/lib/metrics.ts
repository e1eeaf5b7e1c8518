/**
 * Caption metrics that reproduce pycocoevalcap (the COCO caption evaluation code papers report with):
 * corpus BLEU-1..4, ROUGE-L and CIDEr-D; plus object recall (ours, see objectRecall). Inputs are already tokenised (model/text.ts `tokenize`,
 * which mirrors the PTB tokenisation pycocoevalcap runs first), so these functions only count words.
 *
 * candidates[i] is the one caption for image i; references[i] are its reference captions.
 * The quirks of the reference implementation are kept on purpose (and marked below), because
 * the point of these numbers is to be comparable with published ones.
 */

import { namedObjects } from "../../model/objects.ts";

export interface Scores {
  bleu1: number; bleu2: number; bleu3: number; bleu4: number; rougeL: number; cider: number;
  /** Share of the reference-named (image, object) pairs the candidate names too (NaN when there are none). */
  objectRecall: number;
  /** How many (image, object) pairs the references name: the recall's denominator. */
  objectRefs: number;
}

type Tokens = readonly string[];
const MAX_N = 4;

/** N-gram counts of orders 1..MAX_N; counts[k] holds the (k+1)-grams keyed by their words joined with a space. */
function ngramCounts(words: Tokens): Map<string, number>[] {
  const counts = Array.from({ length: MAX_N }, () => new Map<string, number>());
  for (let k = 0; k < MAX_N; k++) {
    for (let i = 0; i + k < words.length; i++) {
      const key = words.slice(i, i + k + 1).join(" ");
      counts[k].set(key, (counts[k].get(key) ?? 0) + 1);
    }
  }
  return counts;
}

function checkInputs(candidates: readonly Tokens[], references: readonly (readonly Tokens[])[]): void {
  if (candidates.length !== references.length) {
    throw new Error(`metrics: ${candidates.length} candidates but ${references.length} reference sets`);
  }
  if (candidates.length === 0) throw new Error("metrics: nothing to score");
  // pycocoevalcap asserts at least one reference per image; a score against nothing has no meaning.
  references.forEach((refs, i) => { if (refs.length === 0) throw new Error(`metrics: image ${i} has no references`); });
}

/**
 * Corpus BLEU-1..4 as bleu_scorer.py computes it with option "closest": clipped n-gram matches and
 * candidate n-gram totals are summed over the whole corpus before dividing (not an average of
 * sentence BLEUs), and the brevity penalty compares total candidate length with the sum of each
 * image's reference length closest to its candidate's length.
 */
export function bleu(candidates: readonly Tokens[], references: readonly (readonly Tokens[])[]): [number, number, number, number] {
  checkInputs(candidates, references);
  // bleu_scorer's smoothing: makes a zero match count give ~0 instead of 0/0, and is small enough
  // not to move any reported digit otherwise.
  const TINY = 1e-15, SMALL = 1e-9;
  const correct = new Array<number>(MAX_N).fill(0);
  const guess = new Array<number>(MAX_N).fill(0);
  let testLen = 0, refLen = 0;

  candidates.forEach((cand, i) => {
    // A candidate n-gram is credited at most as often as it occurs in any single reference.
    const maxRef = Array.from({ length: MAX_N }, () => new Map<string, number>());
    for (const ref of references[i]) {
      ngramCounts(ref).forEach((m, k) => m.forEach((c, g) => maxRef[k].set(g, Math.max(maxRef[k].get(g) ?? 0, c))));
    }
    ngramCounts(cand).forEach((m, k) => m.forEach((c, g) => { correct[k] += Math.min(c, maxRef[k].get(g) ?? 0); }));
    for (let k = 0; k < MAX_N; k++) guess[k] += Math.max(0, cand.length - k);

    // Closest reference length; on a tie the shorter one (Python's min over (|diff|, len) tuples).
    let best = references[i][0].length;
    for (const ref of references[i]) {
      const d = Math.abs(ref.length - cand.length), bd = Math.abs(best - cand.length);
      if (d < bd || (d === bd && ref.length < best)) best = ref.length;
    }
    testLen += cand.length;
    refLen += best;
  });

  const ratio = (testLen + TINY) / (refLen + SMALL);
  const brevity = ratio < 1 ? Math.exp(1 - 1 / ratio) : 1;
  const scores: number[] = [];
  let product = 1;
  for (let k = 0; k < MAX_N; k++) {
    product *= (correct[k] + TINY) / (guess[k] + SMALL);
    scores.push(product ** (1 / (k + 1)) * brevity); // geometric mean of precisions 1..k+1
  }
  return scores as [number, number, number, number];
}

/** Length of the longest common subsequence of two token lists (one DP row kept). */
function lcsLength(a: Tokens, b: Tokens): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0; // row[j-1] of the previous i
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(up, row[j - 1]);
      diag = up;
    }
  }
  return row[b.length];
}

/**
 * ROUGE-L as rouge.py: per image, the best LCS precision and the best LCS recall over the references
 * (possibly from different references) are combined into an F-measure with beta = 1.2, which weighs
 * recall more; the result is the mean over images.
 */
export function rougeL(candidates: readonly Tokens[], references: readonly (readonly Tokens[])[]): number {
  checkInputs(candidates, references);
  const BETA2 = 1.2 ** 2;
  let total = 0;
  candidates.forEach((cand, i) => {
    let precMax = 0, recMax = 0;
    for (const ref of references[i]) {
      const lcs = lcsLength(ref, cand);
      // Empty captions give LCS 0; guarding the division keeps them at 0 instead of NaN.
      if (cand.length) precMax = Math.max(precMax, lcs / cand.length);
      if (ref.length) recMax = Math.max(recMax, lcs / ref.length);
    }
    if (precMax > 0 && recMax > 0) total += ((1 + BETA2) * precMax * recMax) / (recMax + BETA2 * precMax);
  });
  return total / candidates.length;
}

interface TfIdf { vec: Map<string, number>[]; norm: number[]; length: number }

/**
 * CIDEr-D as pycocoevalcap's cider_scorer.py (its "Cider" is the CIDEr-D variant): tf-idf vectors of
 * 1..4-grams where the idf comes from the references of the evaluated images only, a clipped cosine
 * similarity against each reference, a Gaussian penalty on the length difference (sigma = 6), averaged
 * over n-gram orders and references, times 10, then averaged over images.
 */
/**
 * CIDEr-D scorer over a fixed set of references. Document frequencies (the idf) come from these
 * references, as pycocoevalcap does for the evaluated set; the self-critical fine-tuning reuses one
 * scorer over the training references to reward single captions.
 */
export class CiderD {
  private static readonly SIGMA = 6;
  private readonly df = new Map<string, number>();
  private readonly logImages: number;
  private readonly refs: TfIdf[][];

  constructor(references: readonly (readonly Tokens[])[]) {
    const refCounts = references.map((refs) => refs.map(ngramCounts));
    // Document frequency: in how many images' reference sets an n-gram occurs (once per image).
    for (const refs of refCounts) {
      const seen = new Set<string>();
      for (const counts of refs) for (const m of counts) for (const g of m.keys()) seen.add(g);
      for (const g of seen) this.df.set(g, (this.df.get(g) ?? 0) + 1);
    }
    this.logImages = Math.log(references.length);
    this.refs = refCounts.map((refs) => refs.map((c) => this.tfidf(c)));
  }

  // log(#images) - log(df) is the idf; an n-gram absent from all references gets df 1, so the
  // full log(#images) weight (it still cannot match anything, but it lengthens the candidate's norm).
  private tfidf(counts: Map<string, number>[]): TfIdf {
    const vec = counts.map((m) => {
      const v = new Map<string, number>();
      m.forEach((tf, g) => v.set(g, tf * (this.logImages - Math.log(Math.max(1, this.df.get(g) ?? 0)))));
      return v;
    });
    const norm = vec.map((v) => Math.sqrt([...v.values()].reduce((s, x) => s + x * x, 0)));
    // Quirk kept from cider_scorer.py: "length" is the number of bigrams (len - 1), not words. The
    // penalty only uses differences, so this equals the word-length difference for non-empty captions.
    let length = 0;
    counts[1].forEach((tf) => { length += tf; });
    return { vec, norm, length };
  }

  /** CIDEr-D of one candidate against the references of image i. */
  score(i: number, cand: Tokens): number {
    const hyp = this.tfidf(ngramCounts(cand));
    let sum = 0; // summed over references and n-gram orders
    for (const ref of this.refs[i]) {
      const penalty = Math.exp(-((hyp.length - ref.length) ** 2) / (2 * CiderD.SIGMA * CiderD.SIGMA));
      for (let k = 0; k < MAX_N; k++) {
        let dot = 0;
        // "-D" clipping: a candidate n-gram repeated more often than in the reference earns no extra credit.
        hyp.vec[k].forEach((w, g) => { const r = ref.vec[k].get(g) ?? 0; dot += Math.min(w, r) * r; });
        if (hyp.norm[k] !== 0 && ref.norm[k] !== 0) dot /= hyp.norm[k] * ref.norm[k];
        sum += dot * penalty;
      }
    }
    return (sum / MAX_N / this.refs[i].length) * 10;
  }
}

export function ciderD(candidates: readonly Tokens[], references: readonly (readonly Tokens[])[]): number {
  checkInputs(candidates, references);
  const scorer = new CiderD(references);
  return candidates.reduce((s, c, i) => s + scorer.score(i, c), 0) / candidates.length;
}

/** How many of an image's references must name an object for the object to count as in the picture. */
export const OBJECT_MIN_REFS = 3;

/**
 * Object recall: does the caption name what is in the picture? An object counts as in the picture
 * when at least OBJECT_MIN_REFS of the image's references name it (model/objects.ts decides what
 * names an object: plurals and aliases included, "hot dog" is not a dog). The threshold stays 3
 * whatever the number of references (4 or 6 on a few COCO images), so an object is "in the picture"
 * by the same count of people everywhere. Micro-averaged: hits / pairs over the whole corpus, so
 * an image with three named objects weighs three times one with one. Images whose references
 * agree on no object add nothing; with no pair at all the recall is NaN (undefined, not 0).
 */
export function objectRecall(candidates: readonly Tokens[], references: readonly (readonly Tokens[])[], minRefs = OBJECT_MIN_REFS): { recall: number; pairs: number; hits: number } {
  checkInputs(candidates, references);
  let pairs = 0, hits = 0;
  candidates.forEach((cand, i) => {
    const votes = new Map<string, number>();
    for (const ref of references[i]) for (const o of namedObjects(ref)) votes.set(o, (votes.get(o) ?? 0) + 1);
    const named = namedObjects(cand);
    for (const [o, n] of votes) {
      if (n < minRefs) continue;
      pairs++;
      if (named.has(o)) hits++;
    }
  });
  return { recall: pairs ? hits / pairs : NaN, pairs, hits };
}

/** All metrics at once, in the shape the evaluation notebook reports. */
export function scoreCaptions(candidates: string[][], references: string[][][]): Scores {
  const [bleu1, bleu2, bleu3, bleu4] = bleu(candidates, references);
  const objects = objectRecall(candidates, references);
  return {
    bleu1, bleu2, bleu3, bleu4, rougeL: rougeL(candidates, references), cider: ciderD(candidates, references),
    objectRecall: objects.recall, objectRefs: objects.pairs,
  };
}

/**
 * Human agreement: caption 0 of each image scored against the image's other captions (the
 * pycocoevalcap convention for a "human" row), so the figures come from this very scorer.
 * Images with a single caption have nothing to be scored against and are left out.
 */
export function humanAgreement(references: readonly (readonly string[][])[]): Scores & { images: number } {
  const usable = references.filter((r) => r.length >= 2);
  const s = scoreCaptions(usable.map((r) => r[0]), usable.map((r) => r.slice(1)));
  return { ...s, images: usable.length };
}
