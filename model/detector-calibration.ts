/**
 * How far to trust a detection of each class, learned from the decoder's own training photos.
 *
 * On Flickr8k's photos CenterNet's head is often wrong in ways its score does not show: a wet dog
 * is a "horse" or a "bear" at 0.4, a bag nobody mentions is a "handbag". So for every class and
 * score bin we count, over the Flickr8k training photos, how many got such a detection and on how
 * many of those at least 2 of the 5 reference captions name the class
 * (notebooks-port/detector-calibration.ts). Grounding (model/grounding.ts) then uses a detection
 * only when that share, smoothed toward the share of all classes at the same score, is high enough.
 * A class the detector never fired on in those photos (giraffe, zebra...) has no evidence either
 * way and keeps the plain score rule.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { captionName, classOf, namedObjects } from "./objects.ts";
import type { DetectedObject } from "./types.ts";

/** Lower edges of the score bins; the last bin runs to 1. */
export const CALIBRATION_BINS = [0.15, 0.25, 0.35, 0.5, 0.7] as const;
/** References (of a photo's 5) that must name a class for its detection to count as right. */
export const CALIBRATION_MIN_REFS = 2;

/** Per score bin: photos with such a detection, and how many of them name it. */
export interface BinCounts {
  detected: number[];
  named: number[];
}

export interface DetectorCalibration {
  bins: number[];
  minRefs: number;
  /** Photos counted. */
  photos: number;
  /** All classes together (people aside): the prior each class is smoothed toward. */
  all: BinCounts;
  classes: Record<string, BinCounts>;
}

const empty = (n: number): BinCounts => ({ detected: new Array(n).fill(0), named: new Array(n).fill(0) });

/** The bin of a score, or -1 below the first. */
export function binOf(bins: readonly number[], score: number): number {
  for (let b = bins.length - 1; b >= 0; b--) if (score >= bins[b]) return b;
  return -1;
}

/**
 * Counts one set of photos: each photo's detections (its most confident one per class) against its
 * tokenised reference captions.
 */
export function countDetections(photos: readonly { detections: readonly DetectedObject[]; references: readonly (readonly string[])[] }[]): DetectorCalibration {
  const bins = [...CALIBRATION_BINS];
  const all = empty(bins.length);
  const classes: Record<string, BinCounts> = {};
  for (const { detections, references } of photos) {
    const votes = new Map<string, number>();
    for (const ref of references) for (const o of namedObjects(ref)) votes.set(classOf(o), (votes.get(classOf(o)) ?? 0) + 1);
    const best = new Map<string, number>();
    for (const d of detections) best.set(d.label, Math.max(best.get(d.label) ?? 0, d.score));
    for (const [label, score] of best) {
      const b = binOf(bins, score);
      // People are never put into a caption from a detection (the decoder names them better), and
      // the references' "man", "girl", ... are not names of the class: counting them would only drag
      // down the share every class is smoothed toward.
      if (b < 0 || captionName(label) === null) continue;
      const named = (votes.get(label) ?? 0) >= CALIBRATION_MIN_REFS ? 1 : 0;
      const c = (classes[label] ??= empty(bins.length));
      c.detected[b]++;
      c.named[b] += named;
      all.detected[b]++;
      all.named[b] += named;
    }
  }
  return { bins, minRefs: CALIBRATION_MIN_REFS, photos: photos.length, all, classes };
}

/**
 * The share of such detections that were right on the training photos, smoothed toward all
 * classes' share at that score with `pseudoPhotos` pseudo-photos. Infinity for a class never
 * detected there, or detected at that score on fewer than `minDetections` photos (too little
 * evidence: the caller keeps its plain score rule); NaN below the first bin.
 */
export function calibratedPrecision(cal: DetectorCalibration, label: string, score: number, pseudoPhotos: number, minDetections = 0): number {
  const b = binOf(cal.bins, score);
  if (b < 0) return NaN;
  const c = cal.classes[label];
  if (!c || c.detected[b] < minDetections) return Infinity;
  const prior = cal.all.named[b] / Math.max(1, cal.all.detected[b]);
  return (c.named[b] + pseudoPhotos * prior) / (c.detected[b] + pseudoPhotos);
}

/** detector-calibration.json in a model folder, or null when it has none. */
export function loadDetectorCalibration(modelDir: string): DetectorCalibration | null {
  const file = path.join(modelDir, "detector-calibration.json");
  if (!existsSync(file)) return null;
  const cal = JSON.parse(readFileSync(file, "utf8")) as DetectorCalibration;
  const ok = (c: BinCounts | undefined) => !!c && c.detected?.length === cal.bins?.length && c.named?.length === cal.bins.length;
  if (!Array.isArray(cal.bins) || !ok(cal.all) || !Object.values(cal.classes ?? {}).every(ok)) {
    throw new Error(`${file} is not a detector calibration (rerun \`npm run pipeline:detector-calibration\`)`);
  }
  return cal;
}
