/**
 * Captions grounded in the detector's objects, at decoding time (the decoder itself is Flickr8k's):
 *   - constrained beam search (Anderson et al. 2017): the names of the two most confident usable
 *     detections must appear in the caption; search.ts keeps separate beams for each set of names
 *     already used;
 *   - only detections of a kind that was right often enough on the decoder's training photos
 *     (model/detector-calibration.ts: on Flickr8k's photos a "bear" or a "handbag" at 0.4 was never named);
 *   - ...unless the decoder is sure of its own caption (mean word log-probability >= trustOwn): on
 *     photos like the ones it was trained on it usually is, and there the detector's confusions
 *     ("elephant" for a wet dog) cost more than the names add; on everyday photos it rarely is;
 *   - optionally a bonus on the log-probability of words that name a confident detection, and a
 *     penalty on words that name a class the detector does not see at all (both 0 by default);
 *   - the words Flickr8k never taught (notebooks-port/object-words.ts) are allowed only when their
 *     object is detected.
 * Every threshold here was chosen on the dev sets (Flickr8k dev and coco-dev); the model card has
 * the figures.
 */
import { calibratedPrecision, type DetectorCalibration } from "./detector-calibration.ts";
import { captionName, classOf, classOfWord, findObjectMentions } from "./objects.ts";
import type { Constraint } from "./search.ts";
import type { DetectedObject } from "./types.ts";
import { UNK, type Vocabulary } from "./vocab.ts";

export interface GroundingSettings {
  /** Detections listed in results (and eligible below). */
  showScore: number;
  /** A detection this confident may put its name into the caption (bonus, new words, constraint). */
  useScore: number;
  /** A class detected below this score (or not at all) is absent: words naming it are penalised. */
  absentScore: number;
  /** Added to the log-probability of words naming a usable detection. */
  bonus: number;
  /** Subtracted from the log-probability of words naming an absent class. */
  absentPenalty: number;
  /** How many of the most confident usable detections (distinct classes) the caption must name. */
  constraints: number;
  /** A caption with the required names may score this much worse per word than the model's own and still win (search.ts `slack`). */
  slack: number;
  /**
   * Ground only photos whose most confident detection is an object the Flickr8k decoder hardly knows:
   * its name's vocabulary rank (the vocabulary is sorted by training frequency) is at least this, or it
   * is a word added for objects. Photos led by people (or, with a rank above 10, dogs) keep the decoder's own caption.
   * 0 = no gate (the default: on the dev sets every gate tried cost coco-dev more than it saved Flickr8k).
   */
  familiarRank: number;
  /** A familiar class (or a person) detected at this score or more keeps the decoder's own caption. */
  familiarVeto: number;
  /**
   * The decoder's own caption wins when the mean log-probability of its words is at least this
   * (search.ts `trustOwn`); 0 = off (the detections always win).
   */
  trustOwn: number;
  /** Weight of the everyday-caption language prior (model/language-prior.ts) when a name is required; 0 = off. */
  priorWeight: number;
  /**
   * A detection is used only when detections of its class at its score were right at least this
   * often on the decoder's training photos (model/detector-calibration.ts); 0 = off.
   */
  minPrecision: number;
  /** Pseudo-photos with which each class's count is smoothed toward all classes' (detector-calibration.ts). */
  precisionPrior: number;
  /**
   * A class detected at a score on fewer training photos than this is not judged by the calibration
   * there (the plain score rule holds): five giraffes seen on Flickr8k's photos say little about COCO's.
   * 0 = every class with a count is judged.
   */
  minDetections: number;
}

export const GROUNDING_DEFAULTS: GroundingSettings = {
  showScore: 0.25,
  useScore: 0.25,
  absentScore: 0.15,
  bonus: 0,
  absentPenalty: 0,
  constraints: 2,
  slack: Infinity,
  familiarRank: 0,
  familiarVeto: 1,
  trustOwn: -0.7,
  priorWeight: 0.15,
  minPrecision: 0.12,
  precisionPrior: 10,
  minDetections: 0,
};

/** The decoding plan for one photo: a per-word log-probability bias, the names it must use, and how sure the decoder must be of its own caption to keep it (search.ts `trustOwn`; undefined: off). */
export interface GroundingPlan {
  bias: Float32Array;
  constraints: Constraint[];
  trustOwn?: number;
}

/** Per vocabulary id: the detector class the word names, or null. Computed once per model. */
export function wordClasses(vocab: Vocabulary): (string | null)[] {
  return vocab.words.map((w, i) => (i <= UNK ? null : classOfWord(w)));
}

/**
 * `detections` are all the detector's peaks down to absentScore, most confident first; `extraWords`
 * are the vocabulary ids that only a detection may unlock; `calibration`, when the model has one,
 * says which detections were seldom right on the training photos (those are left out).
 */
export function groundingPlan(detections: readonly DetectedObject[], vocab: Vocabulary, classes: readonly (string | null)[], extraWords: ReadonlySet<number>, s: GroundingSettings, calibration: DetectorCalibration | null = null): GroundingPlan {
  const best = new Map<string, number>();
  for (const d of detections) {
    // NaN (below the calibrated scores) is kept: such a detection is too weak to be used anyway.
    if (calibration && s.minPrecision > 0 && calibratedPrecision(calibration, d.label, d.score, s.precisionPrior, s.minDetections) < s.minPrecision) continue;
    best.set(d.label, Math.max(best.get(d.label) ?? 0, d.score));
  }
  const bias = new Float32Array(vocab.size);
  // The gate: the most confident detection of all (people included) must be a thing the decoder hardly
  // knows. On Flickr8k's photos that is rarely so (people first, then their ties, bags and cups), and
  // grounding there only cost dev CIDEr-D; on everyday photos it is what helps.
  const top = [...best].sort((a, b) => b[1] - a[1])[0];
  const topName = top && top[1] >= s.useScore ? captionName(top[0]) : null;
  const topId = topName ? vocab.id(topName.at(-1)!) : UNK;
  // ...and nothing the decoder knows well (people, dogs: rank below familiarRank) may be seen too: on
  // Flickr8k's dog photos the head often ranks "bird" or "cow" above a weaker "dog".
  const familiar = [...best].some(([label, score]) => {
    if (score < s.familiarVeto) return false;
    const name = captionName(label);
    return label === "person" || (name !== null && vocab.id(name.at(-1)!) < s.familiarRank);
  });
  const unfamiliar = !familiar && topId !== UNK && (topId >= s.familiarRank || extraWords.has(topId));
  if (s.familiarRank > 0 && !unfamiliar) {
    for (const id of extraWords) bias[id] = -Infinity;
    return { bias, constraints: [] };
  }
  classes.forEach((cls, id) => {
    if (cls === null) return;
    const score = best.get(cls) ?? 0;
    if (score >= s.useScore) bias[id] = s.bonus;
    else if (extraWords.has(id)) bias[id] = -Infinity; // a word Flickr8k never taught, with no object to back it
    else if (score < s.absentScore) bias[id] = -s.absentPenalty;
  });
  // Multi-word names ("fire hydrant", "hot dog") are unlocked token by token.
  const constraints: Constraint[] = [];
  for (const label of [...best.keys()].filter((l) => best.get(l)! >= s.useScore)) {
    const name = captionName(label);
    if (!name) continue;
    const ids = name.map((w) => vocab.id(w));
    if (ids.includes(UNK)) continue;
    for (const id of ids) if (extraWords.has(id)) bias[id] = s.bonus;
    if (constraints.length < s.constraints) {
      // Any form counts: singular or plural ("zebras" for two zebras).
      const plural = [...name.slice(0, -1), name.at(-1)! + (/(s|x|ch|sh)$/.test(name.at(-1)!) ? "es" : "s")].map((w) => vocab.id(w));
      constraints.push({ label, alternatives: plural.includes(UNK) ? [ids] : [ids, plural] });
    }
  }
  return { bias, constraints, ...(constraints.length && s.trustOwn < 0 ? { trustOwn: s.trustOwn } : {}) };
}

/** For each caption token, the index in `objects` of the detection it names (the most confident of its class). */
export function linkWords(tokens: readonly string[], objects: readonly DetectedObject[]): (number | undefined)[] {
  const out: (number | undefined)[] = tokens.map(() => undefined);
  const indexOf = (cls: string) => {
    const i = objects.findIndex((o) => o.label === cls);
    return i < 0 ? undefined : i;
  };
  for (const m of findObjectMentions(tokens)) {
    const i = indexOf(classOf(m.object));
    for (let t = m.start; t < m.end; t++) out[t] = i;
  }
  tokens.forEach((t, k) => {
    if (out[k] === undefined && classOfWord(t) === "person") out[k] = indexOf("person");
  });
  return out;
}
