/**
 * Step 2: run the frozen encoder over every image once and cache the grid features
 * (.cache/features/<encoder>/). Training images are also encoded mirrored, a free augmentation.
 * Resumable: finished chunks are skipped. Parallel: --shard=0 --shards=2 and --shard=1 --shards=2.
 *   npm run pipeline:features -- --encoder=centernet+mnv2-256
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { encoderSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { imagePath, loadDataset } from "./lib/dataset.ts";
import { CHUNK, chunkFile, type FeatureIndex } from "./lib/features.ts";
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
  const encoder = await loadEncoder(spec);
  // Training images first, so the "flip" variant covers a prefix of the index.
  const take = <T>(xs: T[]) => (cfg.limit ? xs.slice(0, cfg.limit) : xs);
  const train = take(data.splits.train);
  const images = [...train, ...take(data.splits.dev), ...take(data.splits.test)].map((i) => i.file);
  const index: FeatureIndex = {
    encoder: spec.name, grid: encoder.grid, channels: encoder.channels, images,
    variants: { orig: images.length, ...(cfg.flip ? { flip: train.length } : {}) },
  };
  const dir = featureDir(spec.name);
  mkdirSync(dir, { recursive: true });
  // Chunks are found by position, so an existing cache must describe the same images in the same order.
  const indexFile = path.join(dir, "index.json");
  if (existsSync(indexFile)) {
    const old = JSON.parse(readFileSync(indexFile, "utf8")) as FeatureIndex;
    if (JSON.stringify(old) !== JSON.stringify(index)) throw new Error(`the feature cache in ${dir} was made for other images or settings; delete it, or set CAPTION_WORK_DIR to use another folder`);
  }
  writeFileSync(indexFile, JSON.stringify(index));

  const jobs: { variant: string; chunk: number }[] = [];
  for (const [variant, n] of Object.entries(index.variants)) {
    for (let c = 0; c * CHUNK < n; c++) if (c % cfg.shards === cfg.shard && !existsSync(chunkFile(spec.name, variant, c))) jobs.push({ variant, chunk: c });
  }
  const total = jobs.reduce((s, j) => s + Math.min(CHUNK, index.variants[j.variant] - j.chunk * CHUNK), 0);
  const progress = new Progress(`features ${spec.name} shard ${cfg.shard}/${cfg.shards}`, total, "img");
  for (const { variant, chunk } of jobs) {
    const files = images.slice(chunk * CHUNK, Math.min(index.variants[variant], (chunk + 1) * CHUNK));
    const parts: Float32Array[] = [];
    for (let i = 0; i < files.length; i += cfg.batch) {
      const px = await Promise.all(files.slice(i, i + cfg.batch).map((f) => toRgbSquare(imagePath(data, f), spec.inputSize, { flip: variant === "flip" })));
      const t = await encoder.encode(px);
      parts.push((await t.data()) as Float32Array);
      t.dispose();
      progress.tick(px.length);
    }
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) out.set(p, (o += p.length) - p.length);
    // Write then rename, so a killed run never leaves a half chunk that looks finished.
    const file = chunkFile(spec.name, variant, chunk);
    writeFileSync(file + ".tmp", out);
    renameSync(file + ".tmp", file);
  }
  progress.end();
  encoder.dispose();
});
