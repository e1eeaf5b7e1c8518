/**
 * Step 10: how often the detector is right on the training photos (model/detector-calibration.ts).
 * Runs CenterNet's head over the prepared dataset's training images, as the captioner does (256 px,
 * the same pass as the features), and counts per class and score bin the photos with such a
 * detection and those whose references (at least 2) name the class. Writes
 * <model>/detector-calibration.json and prints the classes it was most often wrong about.
 *   npm run pipeline:detector-calibration -- [--model=model/weights] [--limit=0]
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { CALIBRATION_BINS, CALIBRATION_MIN_REFS, countDetections } from "../model/detector-calibration.ts";
import { decodeDetections } from "../model/detector.ts";
import { encoderSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { DEFAULT_MODEL_DIR, loadDecoder } from "../model/index.ts";
import type { DetectedObject } from "../model/types.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { imagePath, loadDataset } from "./lib/dataset.ts";
import { Progress } from "./lib/progress.ts";

const defaults = {
  model: DEFAULT_MODEL_DIR, // where detector-calibration.json goes (its config names the encoder)
  limit: 0, // > 0: only the first N training images (quick runs, tests)
  batch: 8,
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const { data } = loadDataset();
  const { config } = loadDecoder(cfg.model);
  const spec = encoderSpec(config.encoder);
  const encoder = await loadEncoder(spec, "auto", { heads: true });
  const images = cfg.limit ? data.splits.train.slice(0, cfg.limit) : data.splits.train;
  const progress = new Progress("detector calibration", images.length, "img");
  const photos: { detections: DetectedObject[]; references: string[][] }[] = [];
  for (let i = 0; i < images.length; i += cfg.batch) {
    const batch = images.slice(i, i + cfg.batch);
    const px = await Promise.all(batch.map((im) => toRgbSquare(imagePath(data, im), spec.inputSize)));
    const { feats, heads } = await encoder.encodeWithHeads(px);
    feats.dispose();
    if (!heads.keypoints || !heads.wh) throw new Error(`encoder ${spec.name} has no detection head`);
    batch.forEach((im, b) => photos.push({ detections: decodeDetections(heads.keypoints, heads.wh, spec.inputSize, { minScore: CALIBRATION_BINS[0], maxObjects: 50, iou: 0.5 }, b), references: im.captions }));
    progress.tick(batch.length);
  }
  progress.end();
  encoder.dispose();
  const cal = countDetections(photos);
  const file = path.join(cfg.model, "detector-calibration.json");
  writeFileSync(file, JSON.stringify(cal) + "\n");
  // What a person wants to see: per class, how often its detections were named, bin by bin.
  const cell = (named: number, n: number) => (n ? `${(named / n).toFixed(2)} (${n})` : "–").padEnd(12);
  console.log(`share of detections named by >= ${CALIBRATION_MIN_REFS} references, per score bin (${cal.bins.join(" / ")}), over ${cal.photos} training photos:`);
  console.log(`  ${"all classes".padEnd(16)} ${cal.all.detected.map((n, b) => cell(cal.all.named[b], n)).join(" ")}`);
  const byCount = Object.entries(cal.classes).sort((a, b) => b[1].detected.reduce((x, y) => x + y) - a[1].detected.reduce((x, y) => x + y));
  for (const [label, c] of byCount.slice(0, 25)) console.log(`  ${label.padEnd(16)} ${c.detected.map((n, b) => cell(c.named[b], n)).join(" ")}`);
  console.log(`wrote ${file}`);
});
