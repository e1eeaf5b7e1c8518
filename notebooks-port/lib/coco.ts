/**
 * Reading a COCO caption file (captions_train2014.json and the like: images [{id, file_name}],
 * annotations [{image_id, caption}]) into the shape Flickr8k is read into: image file -> raw
 * captions, plus train/dev/test lists. COCO's caption files carry no split, so one is made from
 * the image id (splitOf), or read from a split file (readSplitFile).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { DataError, REPO_ROOT, type Flickr8k } from "./flickr8k.ts";

/** coco-dev, the everyday-photo evaluation set: evaluated, never trained on. */
export const DEFAULT_COCO_DEV_DIR = path.resolve(REPO_ROOT, "../shared/data/coco-dev");

export type Split = "train" | "dev" | "test";

export interface CocoOptions {
  /** Folder of the photos; found next to the caption file when not given. */
  images?: string;
  /** Shares of the images that go to dev and test when there is no split file (see splitOf). */
  devFraction: number;
  testFraction: number;
  /** COCO image id -> split; images it does not list are left out. */
  splitList?: Map<number, Split>;
}

export interface CocoData extends Flickr8k {
  /** The caption file read. */
  file: string;
  /** image file name -> COCO image id (for hold-out checks against other COCO sets). */
  ids: Map<string, number>;
  /** Images left out: no caption, or not in the split file. */
  skipped: number;
}

export const DEFAULT_DEV_FRACTION = 0.05;
export const DEFAULT_TEST_FRACTION = 0.05;

/**
 * A fixed pseudo-random number in [0, 1) per image id (murmur3's 32-bit finaliser). The split
 * depends on the id alone, not on file order or on which other images a file holds, so a photo
 * never moves between splits when images are added or the file is re-exported.
 */
export function idHash(id: number): number {
  let h = id >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** test below testFraction, dev in the next devFraction, train otherwise. */
export function splitOf(id: number, devFraction: number, testFraction: number): Split {
  const u = idHash(id);
  return u < testFraction ? "test" : u < testFraction + devFraction ? "dev" : "train";
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new DataError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError(`${file} is not valid JSON (${(e as Error).message.replace(/\s+/g, " ")})`);
  }
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** The caption file of a COCO folder: one captions_*.json in it or in its annotations/ subfolder. */
export function findCocoCaptionFile(dir: string): string | undefined {
  for (const d of [dir, path.join(dir, "annotations")]) {
    if (!existsSync(d) || !statSync(d).isDirectory()) continue;
    const found = readdirSync(d).filter((f) => /^captions_.*\.json$/.test(f));
    if (found.length > 1) throw new DataError(`${d} holds several caption files (${found.join(", ")}): pass one of them as --data`);
    if (found.length === 1) return path.join(d, found[0]);
  }
  return undefined;
}

/** Where the photos are: --images, else images/ or the file's own split name (train2014/) next to the file or one folder up. */
function findImageDir(file: string, sample: string, given?: string): string {
  if (given) {
    if (!existsSync(path.join(given, sample))) throw new DataError(`--images=${given} does not hold ${sample}, the first image of ${file}`);
    return given;
  }
  const stem = path.basename(file, ".json").replace(/^captions_/, ""); // captions_train2014.json -> train2014
  const here = path.dirname(file);
  for (const base of [here, path.dirname(here)]) {
    for (const sub of ["images", stem, path.join("images", stem)]) {
      if (existsSync(path.join(base, sub, sample))) return path.join(base, sub);
    }
  }
  throw new DataError(`cannot find the photos of ${file} (looked for ${sample} in images/ and ${stem}/ next to it and one folder up): pass --images=DIR`);
}

/**
 * A split file: either {"train": [...], "dev": [...], "test": [...]} listing COCO image ids, or
 * Karpathy's dataset_coco.json (images [{cocoid, split}], where "val" is dev and "restval" train).
 */
export function readSplitFile(file: string): Map<number, Split> {
  const j = readJson(file);
  const out = new Map<number, Split>();
  const put = (id: unknown, split: Split) => {
    if (typeof id !== "number" || !Number.isInteger(id)) throw new DataError(`${file}: image ids must be integers, got ${JSON.stringify(id)}`);
    out.set(id, split);
  };
  if (isObj(j) && Array.isArray(j.images)) {
    const names: Record<string, Split> = { train: "train", restval: "train", val: "dev", dev: "dev", test: "test" };
    for (const im of j.images) {
      const split = isObj(im) && typeof im.split === "string" ? names[im.split] : undefined;
      if (!isObj(im) || !split) throw new DataError(`${file}: each image needs a cocoid and a split (train, restval, val or test)`);
      put(im.cocoid ?? im.id, split);
    }
  } else if (isObj(j) && (["train", "dev", "test"] as const).some((s) => Array.isArray(j[s]))) {
    for (const s of ["train", "dev", "test"] as const) {
      if (j[s] === undefined) continue;
      if (!Array.isArray(j[s])) throw new DataError(`${file}: "${s}" must be a list of image ids`);
      for (const id of j[s] as unknown[]) put(id, s);
    }
  } else throw new DataError(`${file}: expected {"train": [ids], "dev": [ids], "test": [ids]} or Karpathy's dataset_coco.json`);
  return out;
}

/** The image ids of a COCO caption file or folder (for holding its photos out of training). */
export function readCocoIds(fileOrDir: string): Set<number> {
  const file = existsSync(fileOrDir) && statSync(fileOrDir).isDirectory() ? findCocoCaptionFile(fileOrDir) : fileOrDir;
  if (!file || !existsSync(file)) throw new DataError(`no COCO caption file at ${fileOrDir}`);
  const j = readJson(file);
  if (!isObj(j) || !Array.isArray(j.images)) throw new DataError(`${file} is not a COCO caption file: expected {"images": [...]}`);
  return new Set(j.images.map((im) => (isObj(im) && typeof im.id === "number" ? im.id : NaN)));
}

export function readCoco(file: string, opts: CocoOptions): CocoData {
  if (!existsSync(file)) throw new DataError(`COCO caption file not found: ${file}`);
  const j = readJson(file);
  if (!isObj(j) || !Array.isArray(j.images) || !Array.isArray(j.annotations)) {
    throw new DataError(`${file} is not a COCO caption file: expected {"images": [...], "annotations": [...]}`);
  }
  const fileOf = new Map<number, string>();
  for (const im of j.images) {
    if (!isObj(im) || typeof im.id !== "number") throw new DataError(`${file}: each image needs a numeric "id"`);
    // coco-text and other text-only sets list ids without photos: nothing to train an encoder pass on.
    if (typeof im.file_name !== "string") throw new DataError(`${file}: image ${im.id} has no "file_name" (a text-only caption file has no photos to prepare)`);
    fileOf.set(im.id, im.file_name);
  }
  const captions = new Map<string, string[]>();
  for (const a of j.annotations) {
    if (!isObj(a) || typeof a.image_id !== "number" || typeof a.caption !== "string") throw new DataError(`${file}: each annotation needs "image_id" and "caption"`);
    const name = fileOf.get(a.image_id);
    if (name === undefined) throw new DataError(`${file}: annotation ${String(a.id)} is for image ${a.image_id}, which "images" does not list`);
    if (!captions.has(name)) captions.set(name, []);
    captions.get(name)!.push(a.caption.trim());
  }
  const ids = new Map<string, number>();
  const splits: Record<Split, string[]> = { train: [], dev: [], test: [] };
  let skipped = 0;
  for (const [id, name] of fileOf) {
    const split = opts.splitList ? opts.splitList.get(id) : splitOf(id, opts.devFraction, opts.testFraction);
    if (!split || !captions.has(name)) {
      skipped++;
      continue;
    }
    ids.set(name, id);
    splits[split].push(name);
  }
  const first = [...ids.keys()][0];
  if (first === undefined) throw new DataError(`${file}: no image with captions${opts.splitList ? " in the split file" : ""}`);
  const imageDir = findImageDir(file, first, opts.images);
  const missing = [...ids.keys()].filter((f) => !existsSync(path.join(imageDir, f)));
  if (missing.length) throw new DataError(`${missing.length} images of ${file} are not in ${imageDir} (e.g. ${missing[0]})`);
  return { dir: path.dirname(file), file, imageDir, captions, splits, ids, skipped };
}
