/**
 * The feature cache written by features.ts: per encoder, one float32 file per chunk of images,
 * so extraction resumes where it stopped and can run as several processes (--shard).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { featureDir } from "./paths.ts";

export const CHUNK = 256;

export interface FeatureIndex {
  encoder: string;
  grid: [number, number];
  channels: number;
  /** image files in extraction order; row i of the cache is images[i] */
  images: string[];
  /** variants extracted: "orig" for every image, "flip" (mirrored) for training images */
  variants: Record<string, number>; // variant -> number of images it covers (prefix of `images`)
  /** Class scores cached per image (the detection head's classes), when the encoder has that head. */
  tags?: number;
}

export const chunkFile = (encoder: string, variant: string, chunk: number, dir = featureDir(encoder)) =>
  path.join(dir, `${variant}-${String(chunk).padStart(3, "0")}.f32`);

export const tagFile = (encoder: string, variant: string, chunk: number, dir = featureDir(encoder)) =>
  path.join(dir, `tags-${variant}-${String(chunk).padStart(3, "0")}.f32`);

export function readIndex(encoder: string, dir = featureDir(encoder)): FeatureIndex {
  const f = path.join(dir, "index.json");
  if (!existsSync(f)) throw Object.assign(new Error(`no feature cache at ${f}: run \`npm run pipeline:features\` first`), { name: "DataError" });
  return JSON.parse(readFileSync(f, "utf8"));
}

/**
 * Loads one variant's features for the given images as a [n, regions*channels] Float32Array,
 * written into `out` when given (e.g. a view of shared memory, to avoid copying gigabytes).
 */
export function loadFeatures(index: FeatureIndex, variant: string, files: string[], dir = featureDir(index.encoder), out?: Float32Array): Float32Array {
  return loadRows(index, variant, files, index.grid[0] * index.grid[1] * index.channels, (c) => chunkFile(index.encoder, variant, c, dir), "features", out);
}

/** The same for the images' class scores ([n, tags]), cached when the encoder has a detection head. */
export function loadTags(index: FeatureIndex, variant: string, files: string[], dir = featureDir(index.encoder), out?: Float32Array): Float32Array {
  if (!index.tags) throw Object.assign(new Error(`the feature cache in ${dir} has no class scores: its encoder has no detection head, or it was made before they were cached (delete it and rerun \`npm run pipeline:features\`)`), { name: "DataError" });
  return loadRows(index, variant, files, index.tags, (c) => tagFile(index.encoder, variant, c, dir), "class scores", out);
}

function loadRows(index: FeatureIndex, variant: string, files: string[], per: number, fileOf: (chunk: number) => string, what: string, out?: Float32Array): Float32Array {
  const row = new Map(index.images.map((f, i) => [f, i]));
  out ??= new Float32Array(files.length * per);
  if (out.length !== files.length * per) throw new Error(`loading ${what}: output holds ${out.length} floats, ${files.length * per} needed`);
  const cache = new Map<number, Float32Array>();
  files.forEach((f, i) => {
    const r = row.get(f);
    if (r === undefined || r >= (index.variants[variant] ?? 0)) throw new Error(`no ${variant} ${what} for ${f}`);
    const c = Math.floor(r / CHUNK);
    if (!cache.has(c)) {
      const buf = readFileSync(fileOf(c));
      cache.set(c, new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
    }
    out.set(cache.get(c)!.subarray((r % CHUNK) * per, (r % CHUNK + 1) * per), i * per);
  });
  return out;
}
