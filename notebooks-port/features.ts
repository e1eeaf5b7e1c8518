/**
 * Step 2: run the frozen encoder over every image once and cache the grid features
 * (.cache/features/<encoder>/). Training images are also encoded mirrored, a free augmentation.
 * Where the encoder has CenterNet's detection head, the same pass also caches each image's 80
 * class scores (model/detector.ts classScores), the input of a tag-conditioned decoder.
 * Resumable: finished chunks are skipped. Parallel: --shard=0 --shards=2 and --shard=1 --shards=2.
 *   npm run pipeline:features -- --encoder=centernet+mnv2-256
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { classScores } from "../model/detector.ts";
import { encoderSpec, loadEncoder } from "../model/encoder.ts";
import { COCO_LABELS } from "../model/objects.ts";
import { toRgbSquare } from "../model/image.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { imagePath, loadDataset } from "./lib/dataset.ts";
import { CHUNK, chunkFile, tagFile, type FeatureIndex } from "./lib/features.ts";
import { featureDir } from "./lib/paths.ts";
import { Progress } from "./lib/progress.ts";

const defaults = {
  encoder: "centernet+mnv2-256",
  flip: true, // also encode mirrored training images
  batch: 8,
  shard: 0, // this process handles chunks where chunk % shards == shard
  shards: 1,
  limit: 0, // > 0: only the first N images of each split (quick runs, tests)
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const { data } = loadDataset();
  const spec = encoderSpec(cfg.encoder);
  const encoder = await loadEncoder(spec, "auto", { heads: true });
  const tagged = spec.graphs.some((g) => g.heads?.keypoints);
  // Training images first, so the "flip" variant covers a prefix of the index.
  const take = <T>(xs: T[]) => (cfg.limit ? xs.slice(0, cfg.limit) : xs);
  const train = take(data.splits.train);
  const images = [...train, ...take(data.splits.dev), ...take(data.splits.test)].map((i) => i.file);
  const index: FeatureIndex = {
    encoder: spec.name, grid: encoder.grid, channels: encoder.channels, images,
    variants: { orig: images.length, ...(cfg.flip ? { flip: train.length } : {}) },
    ...(tagged ? { tags: COCO_LABELS.length } : {}),
  };
  const dir = featureDir(spec.name);
  mkdirSync(dir, { recursive: true });
  // Chunks are found by position, so an existing cache must describe the same images in the same order.
  const indexFile = path.join(dir, "index.json");
  if (existsSync(indexFile)) {
    const old = JSON.parse(readFileSync(indexFile, "utf8")) as FeatureIndex;
    if (tagged && !old.tags && JSON.stringify({ ...old, tags: index.tags }) === JSON.stringify(index)) throw new Error(`the feature cache in ${dir} was made before class scores were cached with the features; delete it and rerun this step`);
    if (JSON.stringify(old) !== JSON.stringify(index)) throw new Error(`the feature cache in ${dir} was made for other images or settings; delete it, or set CAPTION_WORK_DIR to use another folder`);
  }
  writeFileSync(indexFile, JSON.stringify(index));

  const jobs: { variant: string; chunk: number }[] = [];
  for (const [variant, n] of Object.entries(index.variants)) {
    for (let c = 0; c * CHUNK < n; c++) if (c % cfg.shards === cfg.shard && !(existsSync(chunkFile(spec.name, variant, c)) && (!tagged || existsSync(tagFile(spec.name, variant, c))))) jobs.push({ variant, chunk: c });
  }
  const total = jobs.reduce((s, j) => s + Math.min(CHUNK, index.variants[j.variant] - j.chunk * CHUNK), 0);
  const progress = new Progress(`features ${spec.name} shard ${cfg.shard}/${cfg.shards}`, total, "img");
  for (const { variant, chunk } of jobs) {
    const files = images.slice(chunk * CHUNK, Math.min(index.variants[variant], (chunk + 1) * CHUNK));
    const parts: Float32Array[] = [];
    const tags: Float32Array[] = [];
    for (let i = 0; i < files.length; i += cfg.batch) {
      const px = await Promise.all(files.slice(i, i + cfg.batch).map((f) => toRgbSquare(imagePath(data, f), spec.inputSize, { flip: variant === "flip" })));
      const { feats, heads } = await encoder.encodeWithHeads(px);
      parts.push((await feats.data()) as Float32Array);
      feats.dispose();
      if (tagged) px.forEach((_, b) => tags.push(classScores(heads.keypoints, b)));
      progress.tick(px.length);
    }
    // Write then rename, so a killed run never leaves a half chunk that looks finished.
    const write = (file: string, rows: Float32Array[]) => {
      writeFileSync(file + ".tmp", concat(rows));
      renameSync(file + ".tmp", file);
    };
    if (tagged) write(tagFile(spec.name, variant, chunk), tags);
    write(chunkFile(spec.name, variant, chunk), parts);
  }
  progress.end();
  encoder.dispose();
});

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}
