/**
 * Turning decoder steps into captions: greedy and beam search. Both are one loop over steps
 * that yields after every step, so a caller can stream words as they are decided. Tensors
 * never leave this file: events carry plain numbers.
 */
import type { StepDecoder } from "./step-decoder.ts";
import type { tf } from "./tf.ts";
import type { LanguagePrior } from "./language-prior.ts";
import { END, PAD, START, UNK } from "./vocab.ts";

export interface SearchOptions {
  beam: number;
  maxLen: number;
  /** Length normalisation: hypotheses are ranked by logP / len^lengthPenalty. */
  lengthPenalty: number;
  /** Forbid repeating any word trigram ("a man in a red shirt and a man in a red shirt"). */
  blockRepeats: boolean;
  /** The image's class scores, for a decoder with tags (DecoderConfig.tags). */
  tags?: Float32Array;
  /** When given (with blockRepeats), any word not in this set is used at most once per caption. */
  repeatable?: ReadonlySet<number>;
  /** Added to each word's log-probability when ranking (grounding's bonuses and penalties; -Infinity bans). */
  bias?: Float32Array;
  /** Shallow fusion: weight * the prior's log score of each word, given the previous two, is added when ranking. */
  prior?: { weight: number; model: LanguagePrior };
  /**
   * Names the caption must contain (constrained beam search, Anderson et al. 2017): hypotheses are
   * kept in separate beams by which constraints they have met, and the result comes from the beam
   * that met the most. At most 3 (each doubles the rows decoded).
   */
  constraints?: readonly Constraint[];
  /**
   * How much worse (in ranking score per word) the best caption that meets the constraints may be than
   * the best caption overall and still be chosen; beyond that the model's own caption wins, on the
   * grounds that a name it finds that unlikely is more often a false detection than a missing word.
   * Default Infinity: the constraints always win when any hypothesis meets them.
   */
  slack?: number;
  /**
   * With constraints: the best hypothesis that meets none of them (the decoder's own caption) is
   * chosen instead when the model's mean log-probability of its words is at least this. A caption
   * the decoder is sure of is not rewritten by a detection: on Flickr8k's own photos, where the
   * decoder is often sure, the detector's confusions ("elephant" for a dog) cost more than the
   * names add. Undefined: off (the constraints win).
   */
  trustOwn?: number;
  /**
   * Words the caption must start with (prefix-forced decoding, the studio's "what if"): they are
   * taken in order whatever the model thinks of them, then the search goes on from there as usual.
   * An entry may be a set of interchangeable words ("a" / "an"): the model's likelier one is taken.
   */
  prefix?: readonly (number | readonly number[])[];
  /** Record each word's this-many most likely alternatives (Hypothesis.top). Default 0: none. */
  topK?: number;
  /** Also report the live hypotheses after every step (SearchEvent.beams), and yield when only they change. */
  beams?: boolean;
  signal?: AbortSignal;
}

/** A name that must appear: any one of its token sequences ("zebra" or "zebras"). */
export interface Constraint {
  label: string;
  alternatives: number[][];
}

/** A word the model could have chosen at a step, with its probability. */
export interface Alternative {
  id: number;
  prob: number;
}

/** A hypothesis as plain data. */
export interface Hypothesis {
  ids: number[];
  /** The model's own probability of each word (before any bias). */
  probs: number[];
  /** For each word, the model's most likely words at that step (SearchOptions.topK; else empty lists). */
  top: Alternative[][];
  alphas: Float32Array[];
  /** Ranking score: the summed log-probabilities plus the biases of the words chosen. */
  logp: number;
  /** Bit c is set once constraint c has been met. */
  met: number;
  /** Once <end> has been dropped from a finished hypothesis: the model's probability of ending there. */
  endProb?: number;
}

/** What the search yields after each step: the current best hypothesis. */
export interface SearchEvent {
  index: number;
  best: Hypothesis;
  /**
   * With SearchOptions.beams: the chosen best (live or finished) first, then the other hypotheses
   * still being extended and the best K that have ended, in the search's own ranking.
   */
  beams?: Hypothesis[];
}

/** Never generated: padding, the start marker and the unknown word. */
export const BANNED = [PAD, START, UNK];

/** The k most likely words of one row of log-probabilities, leaving out what the bias bans. */
function topWords(row: Float32Array, k: number, bias?: Float32Array): Alternative[] {
  const ids: number[] = [];
  for (let w = 0; w < row.length; w++) {
    if (row[w] === -Infinity || (bias && bias[w] === -Infinity)) continue;
    if (ids.length === k && row[w] <= row[ids[k - 1]]) continue;
    let i = ids.length === k ? k - 1 : ids.length;
    while (i > 0 && row[ids[i - 1]] < row[w]) {
      ids[i] = ids[i - 1];
      i--;
    }
    ids[i] = w;
  }
  return ids.map((id) => ({ id, prob: Math.exp(row[id]) }));
}

const normScore = (h: Hypothesis, alpha: number) => h.logp / Math.pow(Math.max(1, h.ids.length), alpha);
const popcount = (m: number) => { let n = 0; for (; m; m &= m - 1) n++; return n; };

/**
 * The repeat rule every decoder here follows (search() with blockRepeats, and the trainer's batched
 * greedy dev captions, so the checkpoint is chosen under the app's own rule): no word trigram twice,
 * and, given `repeatable` (the function words), any other word at most once.
 */
export function isRepeat(ids: readonly number[], next: number, repeatable?: ReadonlySet<number>): boolean {
  return next !== END && (repeatsTrigram(ids, next) || (repeatable !== undefined && !repeatable.has(next) && ids.includes(next)));
}

function repeatsTrigram(ids: readonly number[], next: number): boolean {
  const n = ids.length;
  if (n < 2) return false;
  const a = ids[n - 2], b = ids[n - 1];
  for (let i = 0; i + 2 < n; i++) if (ids[i] === a && ids[i + 1] === b && ids[i + 2] === next) return true;
  return false;
}

const endsWith = (ids: readonly number[], seq: readonly number[]) => seq.length <= ids.length && seq.every((w, i) => ids[ids.length - seq.length + i] === w);

/** The next word of each alternative of a constraint, given what a hypothesis already ends with. */
function nextWords(ids: readonly number[], c: Constraint): number[] {
  return c.alternatives.map((alt) => {
    for (let j = alt.length - 1; j > 0; j--) if (endsWith(ids, alt.slice(0, j))) return alt[j];
    return alt[0];
  });
}

/**
 * Beam search over one image's features [1, L, D] (beam 1 = greedy). Yields the best live-or-
 * finished hypothesis after every step and returns the final best one (without <end>). With
 * constraints, "best" means: meets the most constraints, then scores highest.
 */
export async function* search(decoder: StepDecoder, feats: tf.Tensor3D, o: SearchOptions): AsyncGenerator<SearchEvent, Hypothesis, void> {
  const K = Math.max(1, Math.floor(o.beam));
  const L = feats.shape[1];
  const cons = o.constraints ?? [];
  if (cons.length > 3) throw new RangeError(`at most 3 constraints, got ${cons.length}`);
  const FULL = (1 << cons.length) - 1;
  // K beams for each set of constraints met; a name of several words also gets beams for being
  // half-written ("fire" of "fire hydrant"), or greedy could never start it.
  const phrase = cons.map((c) => c.alternatives.some((a) => a.length > 1));
  const rows = K * phrase.reduce((n, p) => n * (p ? 3 : 2), 1);
  const group = (ids: number[], met: number) => {
    let key = met;
    cons.forEach((c, i) => {
      if (phrase[i] && !(met & (1 << i)) && c.alternatives.some((alt) => alt.slice(0, -1).some((_, j) => endsWith(ids, alt.slice(0, j + 1))))) key |= 1 << (cons.length + i);
    });
    return key;
  };
  const bias = o.bias;
  const better = (a: Hypothesis, b: Hypothesis) => popcount(a.met) - popcount(b.met) || normScore(a, o.lengthPenalty) - normScore(b, o.lengthPenalty);
  const slack = o.slack ?? Infinity;
  const byScore = (a: Hypothesis, b: Hypothesis) => (normScore(b, o.lengthPenalty) > normScore(a, o.lengthPenalty) ? b : a);
  /** The decoder's own caption when it is sure of it, else the most-constrained best unless the plain best beats it by more than the slack. */
  const pick = (pool: Hypothesis[]) => {
    const own = pool.filter((h) => h.met === 0);
    if (trust < Infinity && own.length) {
      const mine = own.reduce(byScore);
      if (meanLogProb(mine) >= trust) return mine;
    }
    const grounded = pool.reduce((a, b) => (better(b, a) > 0 ? b : a));
    const plain = pool.reduce(byScore);
    return normScore(plain, o.lengthPenalty) - normScore(grounded, o.lengthPenalty) > slack ? plain : grounded;
  };
  const metBy = (ids: number[], met: number) => {
    cons.forEach((c, i) => { if (!(met & (1 << i)) && c.alternatives.some((alt) => endsWith(ids, alt))) met |= 1 << i; });
    return met;
  };
  const prefix = o.prefix ?? [];
  if (prefix.length > o.maxLen) throw new RangeError(`the prefix has ${prefix.length} words; at most ${o.maxLen} fit`);
  // A prefix that already names a required object leaves no hypothesis without it: the decoder's own
  // caption is out of reach, so trustOwn has nothing to choose (and must not hold up the stop).
  let forcedMet = 0;
  const forced = prefix.map((f) => (typeof f === "number" ? f : f[0]));
  forced.forEach((_, j) => (forcedMet = metBy(forced.slice(0, j + 1), forcedMet)));
  const trust = cons.length && o.trustOwn !== undefined && forcedMet === 0 ? o.trustOwn : Infinity;
  const topK = Math.max(0, Math.floor(o.topK ?? 0));
  // Rows of the decoder state are beams; all share the same image.
  const run = await decoder.start(feats, rows, o.tags);
  let live: Hypothesis[] = [{ ids: [], probs: [], top: [], alphas: [], logp: 0, met: 0 }];
  const finished: Hypothesis[] = [];
  let lastKey = "";
  try {
    for (let t = 0; t < o.maxLen + 1 && live.length; t++) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error("aborted");
      const prev = Int32Array.from({ length: rows }, (_, k) => (live[k] ? live[k].ids.at(-1) ?? START : START));
      const { logp, alpha } = await run.step(prev);
      const V = logp.length / rows;
      // Candidates over (beam, word); rows beyond live.length are padding and ignored.
      const cands: { k: number; w: number; lp: number; p: number }[] = [];
      const tops: Alternative[][] = [];
      for (let k = 0; k < live.length; k++) {
        const h = live[k];
        const row = logp.subarray(k * V, (k + 1) * V);
        for (const b of BANNED) row[b] = -Infinity;
        // Each word's ranking score, computed once per row: this loop runs V times a step.
        const sc = Float32Array.from(row);
        if (bias) for (let w = 0; w < V; w++) sc[w] += bias[w];
        if (o.prior) {
          const lm = o.prior.model.logScores(h.ids.at(-2) ?? START, h.ids.at(-1) ?? START), wt = o.prior.weight;
          for (let w = 0; w < V; w++) sc[w] += wt * lm[w];
        }
        const add = (w: number) => cands.push({ k, w, lp: h.logp + sc[w], p: Math.exp(row[w]) });
        tops[k] = topK ? topWords(row, topK, bias) : [];
        if (t < prefix.length) { // a forced word, even one the bias bans (the person asked for it)
          const f = prefix[t];
          const w = typeof f === "number" ? f : f.reduce((a, b) => (row[b] > row[a] ? b : a));
          cands.push({ k, w, lp: h.logp + (Number.isFinite(sc[w]) ? sc[w] : row[w]), p: Math.exp(row[w]) });
          continue;
        }
        if (t === o.maxLen) { // out of room: the only move left is to stop
          add(END);
          continue;
        }
        const blocked = (w: number) => o.blockRepeats && isRepeat(h.ids, w, o.repeatable);
        // Keep this row's best K+1 words (one more than needed, in case one is blocked).
        const top: number[] = [];
        let floor = -Infinity; // the worst kept score once K+1 are kept
        for (let w = 0; w < V; w++) {
          if (sc[w] > floor || top.length <= K) {
            if (sc[w] === -Infinity || blocked(w)) continue;
            let i = top.length;
            top.push(w);
            while (i > 0 && sc[top[i - 1]] < sc[w]) { top[i] = top[i - 1]; i--; }
            top[i] = w;
            if (top.length > K + 1) top.pop();
            if (top.length === K + 1) floor = sc[top[K]];
          }
        }
        // Constrained search also tries the next word of every name not yet used, wherever it scores.
        cons.forEach((c, i) => {
          if (h.met & (1 << i)) return;
          for (const w of nextWords(h.ids, c)) if (!top.includes(w) && !blocked(w) && Number.isFinite(sc[w])) top.push(w);
        });
        for (const w of top) if (Number.isFinite(sc[w])) add(w);
      }
      cands.sort((a, b) => b.lp - a.lp);
      const next: Hypothesis[] = [];
      const parents: number[] = [];
      const kept = new Map<number, number>(); // group (constraints met, names half-written) -> hypotheses kept in its beam
      let stop = false;
      for (const cd of cands) {
        // Unconstrained, the K best moves are the beam. Constrained, every beam fills on its own, and an
        // <end> that completes a beam's names counts however far down the list it comes.
        if (next.length >= rows && (!cons.length || cd.w !== END)) {
          if (!cons.length) break;
          continue;
        }
        const src = live[cd.k];
        const ids = [...src.ids, cd.w];
        const met = cd.w === END ? src.met : metBy(ids, src.met);
        const key = group(ids, met);
        if (cd.w !== END && (kept.get(key) ?? 0) >= K) continue;
        const hyp: Hypothesis = { ids, probs: [...src.probs, cd.p], top: [...src.top, tops[cd.k]], alphas: [...src.alphas, alpha.slice(cd.k * L, (cd.k + 1) * L)], logp: cd.lp, met };
        if (cd.w === END) {
          finished.push(hyp);
          // Greedy stops at <end> once the names are in (and, when the own caption may win, once it has
          // ended too); a beam keeps going while a live hypothesis could still win.
          if (K === 1 && met === FULL && (trust === Infinity || finished.some((f) => f.met === 0))) { stop = true; break; }
        } else {
          kept.set(key, (kept.get(key) ?? 0) + 1);
          next.push(hyp);
          parents.push(cd.k);
        }
      }
      live = stop ? [] : next;
      if (live.length) run.reorder(Int32Array.from({ length: rows }, (_, k) => parents[Math.min(k, parents.length - 1)]));
      // Stop once K hypotheses that met every constraint have finished and none alive can beat the best
      // of them (and the same for the own caption's beam, when it may win).
      const settled = (met: number) => {
        const done = finished.filter((f) => f.met === met);
        const bestDone = done.length ? Math.max(...done.map((f) => normScore(f, o.lengthPenalty))) : -Infinity;
        return done.length >= K && live.every((l) => l.met !== met || normScore(l, o.lengthPenalty) < bestDone);
      };
      if (settled(FULL) && (trust === Infinity || settled(0))) live = [];
      const pool = [...finished, ...live];
      if (!pool.length) break;
      const chosen = pick(pool);
      const best = trimEnd(chosen);
      // Report only changes: a step that merely ends the caption, or keeps the same leader, adds
      // nothing, unless the beams are reported and they moved. The beams list the best K that have
      // ended too, so the last step still shows what lost.
      const ended = o.beams ? [...finished].sort((a, b) => better(b, a)).slice(0, K) : [];
      const beams = o.beams ? [chosen, ...[...live, ...ended].filter((h) => h !== chosen).sort((a, b) => better(b, a))] : undefined;
      const key = best.ids.join(" ") + (beams ? `|${beams.map((b) => b.ids.join(" ")).join("|")}` : "");
      if (key !== lastKey) {
        lastKey = key;
        yield beams ? { index: t, best, beams: beams.map(trimEnd) } : { index: t, best };
      }
    }
    const pool = finished.length ? finished : live;
    return trimEnd(pick(pool));
  } finally {
    run.dispose();
  }
}

/** The model's mean log-probability of a hypothesis's words (<end> not counted). */
function meanLogProb(h: Hypothesis): number {
  const n = h.ids.at(-1) === END ? h.ids.length - 1 : h.ids.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(h.probs[i]);
  return n ? s / n : -Infinity;
}

function trimEnd(h: Hypothesis): Hypothesis {
  if (h.ids.at(-1) !== END) return h;
  return { ids: h.ids.slice(0, -1), probs: h.probs.slice(0, -1), top: h.top.slice(0, -1), alphas: h.alphas.slice(0, -1), logp: h.logp, met: h.met, endProb: h.probs.at(-1) };
}
