/**
 * Which input size should the detector run at? For each size (256 = the features pass that runs
 * anyway, 384 and 512 = a separate pass), on the coco-dev photos: the detector's time per photo
 * (median, onnxruntime) next to the 256 px features pass without the head, and its accuracy against
 * the human captions at several score thresholds:
 *   recall    = share of the objects that >= 3 of a photo's references name, detected at >= t;
 *   precision = share of detected labels (one per class per photo, >= t) that >= 2 references name.
 * Writes runs/bench/detector.json.
 *   npx tsx bench/detector.ts [--coco DIR] [--sizes 256,384,512] [--limit N]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { decodeDetections } from "../model/detector.ts";
import { centernetGraph, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { classOf, namedObjects } from "../model/objects.ts";
import type { DetectedObject } from "../model/types.ts";
import { tokenize } from "../model/text.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({ options: { coco: { type: "string" }, sizes: { type: "string" }, limit: { type: "string" } } });
const COCO = path.resolve(args.coco ?? path.join(ROOT, "../shared/data/coco-dev"));
const sizes = (args.sizes ?? "256,384,512").split(",").map(Number);
const THRESHOLDS = [0.2, 0.25, 0.3, 0.35, 0.4, 0.5];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const json = JSON.parse(readFileSync(path.join(COCO, "captions_coco-dev.json"), "utf8")) as { images: { id: number; file_name: string }[]; annotations: { image_id: number; caption: string }[] };
const refs = new Map<number, string[][]>();

for (const a of json.annotations) refs.set(a.image_id, [...(refs.get(a.image_id) ?? []), tokenize(a.caption)]);
const images = json.images.slice(0, Number(args.limit ?? json.images.length));
// Per photo: how many references name each detector class.
const namedBy = images.map((im) => {
  const counts = new Map<string, number>();
  for (const r of refs.get(im.id) ?? []) for (const cls of new Set([...namedObjects(r)].map(classOf))) counts.set(cls, (counts.get(cls) ?? 0) + 1);
  return counts;
});

// The features pass alone (no head), the baseline every other figure is compared with.
const base = await loadEncoder({ name: "centernet-256", inputSize: 256, graphs: [centernetGraph()] }, "onnx");
const basePx = await toRgbSquare(path.join(COCO, "images", images[0].file_name), 256);
const baseMs: number[] = [];
for (let i = 0; i < 30; i++) {
  const t = performance.now();
  (await base.encode([basePx])).dispose();
  baseMs.push(performance.now() - t);
}
base.dispose();
console.log(`CenterNet features pass at 256 px, no head: ${median(baseMs.slice(5)).toFixed(1)} ms (median)`);

const report: Record<string, unknown> = { photos: images.length, featuresOnlyMs256: median(baseMs.slice(5)), sizes: {} };
for (const size of sizes) {
  const enc = await loadEncoder({ name: `centernet-${size}`, inputSize: size, graphs: [centernetGraph()] }, "onnx", { heads: true });
  const ms: number[] = [];
  const dets: DetectedObject[][] = [];
  const t0 = performance.now();
  for (const [i, im] of images.entries()) {
    const px = await toRgbSquare(path.join(COCO, "images", im.file_name), size);
    const t = performance.now();
    const { feats, heads } = await enc.encodeWithHeads([px]);
    const objs = decodeDetections(heads.keypoints, heads.wh, size, { minScore: Math.min(...THRESHOLDS), maxObjects: 20, iou: 0.5 });
    ms.push(performance.now() - t);
    feats.dispose();
    dets.push(objs);
    const s = (performance.now() - t0) / 1000;
    process.stderr.write(`\r${size} px: ${i + 1}/${images.length}, ETA ${((s / (i + 1)) * (images.length - i - 1)).toFixed(0)} s `);
  }
  process.stderr.write("\n");
  enc.dispose();
  const rows = THRESHOLDS.map((t) => {
    let found = 0, wanted = 0, right = 0, said = 0;
    dets.forEach((objs, i) => {
      const labels = new Set(objs.filter((o) => o.score >= t).map((o) => o.label));
      for (const [cls, n] of namedBy[i]) if (n >= 3) { wanted++; if (labels.has(cls)) found++; }
      for (const l of labels) { said++; if ((namedBy[i].get(l) ?? 0) >= 2) right++; }
    });
    return { threshold: t, recall: found / wanted, precision: right / Math.max(1, said), detectionsPerPhoto: said / images.length };
  });
  (report.sizes as Record<string, unknown>)[size] = { medianMs: median(ms), rows };
  console.log(`${size} px: ${median(ms).toFixed(1)} ms per photo (features pass with head when 256; a separate pass otherwise)`);
  for (const r of rows) console.log(`  score >= ${r.threshold}: recall ${r.recall.toFixed(3)}, precision ${r.precision.toFixed(3)}, ${r.detectionsPerPhoto.toFixed(2)} labels per photo`);
}
const out = path.join(ROOT, "runs", "bench");
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, "detector.json"), JSON.stringify(report, null, 2));
console.log(`wrote ${path.join(out, "detector.json")}`);
