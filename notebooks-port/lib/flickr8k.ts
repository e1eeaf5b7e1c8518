/**
 * Reading Flickr8k from wherever it lives: the copy in ../shared by default, or the original
 * Flickr8k_Dataset + Flickr8k_text folders (images may sit in a subfolder such as Flicker8k_Dataset/).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * The one answer to "where is Flickr8k?", for the pipeline, the tests and the benchmarks:
 * FLICKR8K_DIR when set, else the copy in ../shared (read in place, never copied into the repo).
 */
export function flickr8kDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLICKR8K_DIR || path.resolve(REPO_ROOT, "../shared/data/flickr8k");
}

export const DEFAULT_DATA_DIR = flickr8kDir();

export class DataError extends Error {
  override name = "DataError";
}

export interface Flickr8k {
  dir: string;
  imageDir: string;
  /** image file name -> its raw captions, in file order */
  captions: Map<string, string[]>;
  splits: { train: string[]; dev: string[]; test: string[] };
}

function findFile(dir: string, names: string[], depth = 2): string | undefined {
  for (const n of names) if (existsSync(path.join(dir, n))) return path.join(dir, n);
  if (depth === 0) return undefined;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== "images" && !e.name.startsWith(".")) {
      const f = findFile(path.join(dir, e.name), names, depth - 1);
      if (f) return f;
    }
  }
  return undefined;
}

function findImageDir(dir: string, sample: string): string {
  for (const c of ["images", "Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "Flickr8k_Dataset/Flicker8k_Dataset", "."]) {
    if (existsSync(path.join(dir, c, sample))) return path.join(dir, c);
  }
  throw new DataError(`no folder under ${dir} holds the images (looked for ${sample} in images/, Flicker8k_Dataset/, ...)`);
}

function parseCaptions(file: string): Map<string, string[]> {
  const text = readFileSync(file, "utf8");
  const out = new Map<string, string[]>();
  const add = (img: string, cap: string) => {
    if (!out.has(img)) out.set(img, []);
    out.get(img)!.push(cap.trim());
  };
  if (file.endsWith(".csv") || path.basename(file) === "captions.txt") {
    // CSV "image,caption" with a header and RFC 4180 quoting.
    const lines = text.split(/\r?\n/).slice(1);
    for (const line of lines) {
      if (!line.trim()) continue;
      const comma = line.indexOf(",");
      let cap = line.slice(comma + 1);
      if (cap.startsWith('"') && cap.endsWith('"')) cap = cap.slice(1, -1).replace(/""/g, '"');
      add(line.slice(0, comma), cap);
    }
  } else {
    for (const line of text.split(/\r?\n/)) {
      if (!line.trim()) continue;
      const [key, cap] = line.split("\t");
      if (cap === undefined) throw new DataError(`${file}: expected IMAGE#N<TAB>caption, got "${line.slice(0, 80)}"`);
      add(key.replace(/#\d+$/, ""), cap);
    }
  }
  return out;
}

function readList(file: string): string[] {
  return readFileSync(file, "utf8").split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
}

export function readFlickr8k(dir = DEFAULT_DATA_DIR): Flickr8k {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`data folder not found: ${dir} (pass --data DIR)`);
  const capFile = findFile(dir, ["Flickr8k.token.txt", "captions.txt"]);
  if (!capFile) throw new DataError(`no Flickr8k.token.txt or captions.txt (Flickr8k) nor captions_*.json (COCO) under ${dir}`);
  const split = (n: string) => {
    const f = findFile(dir, [`Flickr_8k.${n}Images.txt`, `splits/Flickr_8k.${n}Images.txt`]);
    if (!f) throw new DataError(`no Flickr_8k.${n}Images.txt under ${dir}`);
    return readList(f);
  };
  const captions = parseCaptions(capFile);
  const splits = { train: split("train"), dev: split("dev"), test: split("test") };
  const imageDir = findImageDir(dir, splits.test[0]);
  for (const [name, list] of Object.entries(splits)) {
    const missing = list.filter((f) => !captions.has(f));
    if (missing.length) throw new DataError(`${missing.length} ${name} images have no captions (e.g. ${missing[0]})`);
  }
  return { dir, imageDir, captions, splits };
}
