/**
 * Objects from CenterNet's own COCO head (the graph we already read features from): its class
 * heatmap and box sides, decoded here into labelled boxes. The decoding is the graph's own
 * (`tower_0/detections`: 3x3 max-pool peaks, box = centre -/+ the four predicted sides, in input
 * pixels), done in plain numbers so that it runs at any input size and on either runtime;
 * test/detector.test.ts checks it against the graph's output.
 */
import type { Head } from "./encoder.ts";
import { COCO_LABELS } from "./objects.ts";
import type { DetectedObject } from "./types.ts";

export interface DetectOptions {
  /** Lowest heatmap score kept. */
  minScore: number;
  /** At most this many objects, most confident first. */
  maxObjects: number;
  /** Same-class boxes overlapping more than this (intersection over union) are one object. */
  iou: number;
}

/** Output stride of the heatmap: one cell per 4x4 input pixels. */
const STRIDE = 4;

function iou(a: DetectedObject["box"], b: DetectedObject["box"]): number {
  const x = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const y = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const inter = x * y;
  return inter / Math.max(1e-9, a[2] * a[3] + b[2] * b[3] - inter);
}

/**
 * Image `b` of a batch's heads -> objects. Boxes are fractions of the input square, which is the
 * whole photo squashed (model/image.ts), so they are fractions of the photo too.
 */
export function decodeDetections(keypoints: Head, wh: Head, inputSize: number, o: DetectOptions, b = 0): DetectedObject[] {
  const [, H, W, K] = keypoints.shape;
  if (K !== COCO_LABELS.length || wh.shape[1] !== H || wh.shape[2] !== W || wh.shape[3] !== 4) throw new Error(`detector heads have unexpected shapes ${keypoints.shape} / ${wh.shape}`);
  const kp = keypoints.data.subarray(b * H * W * K, (b + 1) * H * W * K);
  const sides = wh.data.subarray(b * H * W * 4, (b + 1) * H * W * 4);
  const peaks: { cls: number; score: number; y: number; x: number }[] = [];
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const base = (y * W + x) * K;
      for (let k = 0; k < K; k++) {
        const v = kp[base + k];
        if (v < o.minScore) continue;
        // A peak is the maximum of its 3x3 neighbourhood in its own class (the graph's MaxPool + Equal).
        let peak = true;
        for (let dy = -1; dy <= 1 && peak; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= H) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= W || (dx === 0 && dy === 0)) continue;
            if (kp[(yy * W + xx) * K + k] > v) { peak = false; break; }
          }
        }
        if (peak) peaks.push({ cls: k, score: v, y, x });
      }
    }
  }
  peaks.sort((p, q) => q.score - p.score);
  const out: DetectedObject[] = [];
  for (const p of peaks) {
    if (out.length >= o.maxObjects) break;
    const s = sides.subarray((p.y * W + p.x) * 4, (p.y * W + p.x) * 4 + 4);
    const cx = p.x * STRIDE, cy = p.y * STRIDE;
    const clamp = (v: number) => Math.min(1, Math.max(0, v / inputSize));
    const x1 = clamp(cx - s[0]), y1 = clamp(cy - s[1]), x2 = clamp(cx + s[2]), y2 = clamp(cy + s[3]);
    const obj: DetectedObject = { label: COCO_LABELS[p.cls], score: p.score, box: [x1, y1, Math.max(0, x2 - x1), Math.max(0, y2 - y1)] };
    if (out.some((q) => q.label === obj.label && iou(q.box, obj.box) > o.iou)) continue;
    out.push(obj);
  }
  return out;
}

/**
 * Image `b`'s heatmap -> one score per class: its highest cell (the most confident detection of
 * that class, or 0-ish when none). These 80 numbers are what a tag-conditioned decoder reads
 * (DecoderConfig.tags): the whole head, without any threshold chosen for it.
 */
export function classScores(keypoints: Head, b = 0): Float32Array {
  const [, H, W, K] = keypoints.shape;
  const kp = keypoints.data.subarray(b * H * W * K, (b + 1) * H * W * K);
  const out = new Float32Array(K);
  for (let i = 0; i < H * W; i++) {
    for (let k = 0; k < K; k++) if (kp[i * K + k] > out[k]) out[k] = kp[i * K + k];
  }
  return out;
}
