/**
 * The caption data sets prepare.ts reads: Flickr8k folders and COCO caption files, one or several
 * (`--data=A,B`), merged into one set of splits. Images of different sources live in different
 * folders, so a merged set names each image by its path relative to the folders' common root:
 * `path.join(imageDir, file)` finds every photo, as it always has for Flickr8k alone (whose file
 * names, and so its feature caches, stay exactly as they were).
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { findCocoCaptionFile, readCoco, readSplitFile, type CocoData } from "./coco.ts";
import { DataError, readFlickr8k, type Flickr8k } from "./flickr8k.ts";

export interface SourceOptions {
  /** Photos of a COCO caption file given as a path (one COCO source only). */
  images?: string;
  devFraction: number;
  testFraction: number;
  /** A split file for the COCO sources (coco.ts readSplitFile); "" = split by image id. */
  splits?: string;
}

export interface SourceSummary {
  kind: "flickr8k" | "coco";
  /** A display name: "Flickr8k", "COCO captions_train2014". */
  name: string;
  /** The folder or caption file read. */
  path: string;
  imageDir: string;
  train: number; dev: number; test: number;
  /** COCO sources: how the split was made. */
  split?: string;
}

export interface CaptionSet extends Flickr8k {
  sources: SourceSummary[];
  /** image key -> COCO id, for the images of COCO sources. */
  cocoIds: Map<string, number>;
}

/** One --data entry: a COCO caption file or a folder holding one, else a Flickr8k folder. */
function readOne(spec: string, opts: SourceOptions, cocoCount: number): { kind: "flickr8k" | "coco"; data: Flickr8k | CocoData } {
  if (!existsSync(spec)) throw new DataError(`data not found: ${spec} (pass --data=DIR or a COCO captions_*.json)`);
  const coco = statSync(spec).isDirectory() ? findCocoCaptionFile(spec) : spec;
  if (!coco) return { kind: "flickr8k", data: readFlickr8k(spec) };
  if (!coco.endsWith(".json")) throw new DataError(`${spec}: expected a Flickr8k folder, a COCO folder or a COCO captions_*.json file`);
  if (opts.images && cocoCount > 1) throw new DataError(`--images names the photos of one COCO source; with several, give each as a folder holding its caption file and photos`);
  const splitList = opts.splits ? readSplitFile(opts.splits) : undefined;
  return { kind: "coco", data: readCoco(coco, { images: opts.images, devFraction: opts.devFraction, testFraction: opts.testFraction, splitList }) };
}

/** The deepest folder that holds all of the given folders. */
export function commonRoot(dirs: string[]): string {
  let root = path.resolve(dirs[0]);
  for (const d of dirs.slice(1).map((x) => path.resolve(x))) {
    const outside = (rel: string) => rel === ".." || rel.startsWith(".." + path.sep) || path.isAbsolute(rel);
    while (outside(path.relative(root, d)) && path.dirname(root) !== root) root = path.dirname(root);
  }
  return root;
}

export function readSources(spec: string, opts: SourceOptions): CaptionSet {
  if (!(opts.devFraction >= 0 && opts.testFraction >= 0 && opts.devFraction + opts.testFraction < 1)) {
    throw new DataError(`--devFraction and --testFraction must be >= 0 and leave some images for training (got ${opts.devFraction} and ${opts.testFraction})`);
  }
  const specs = spec.split(",").map((s) => s.trim()).filter(Boolean);
  if (!specs.length) throw new DataError("--data is empty");
  const cocoCount = specs.filter((s) => s.endsWith(".json") || (existsSync(s) && statSync(s).isDirectory() && findCocoCaptionFile(s))).length;
  const read = specs.map((s) => ({ spec: s, ...readOne(s, opts, cocoCount) }));
  // One source keeps its own image folder and file names; several are keyed relative to a common root.
  const imageDir = read.length === 1 ? read[0].data.imageDir : commonRoot(read.map((r) => r.data.imageDir));
  const out: CaptionSet = { dir: specs.join(","), imageDir, captions: new Map(), splits: { train: [], dev: [], test: [] }, sources: [], cocoIds: new Map() };
  for (const { spec: s, kind, data } of read) {
    const key = (f: string) => (read.length === 1 ? f : path.relative(imageDir, path.join(data.imageDir, f)).split(path.sep).join("/"));
    for (const split of ["train", "dev", "test"] as const) {
      for (const f of data.splits[split]) {
        const k = key(f);
        if (out.captions.has(k)) throw new DataError(`${path.join(imageDir, k)} is listed twice (by two --data sources, or twice in one)`);
        out.captions.set(k, data.captions.get(f)!);
        out.splits[split].push(k);
        if (kind === "coco") out.cocoIds.set(k, (data as CocoData).ids.get(f)!);
      }
    }
    const counts = { train: data.splits.train.length, dev: data.splits.dev.length, test: data.splits.test.length };
    out.sources.push(kind === "coco"
      ? { kind, name: `COCO ${path.basename((data as CocoData).file, ".json")}`, path: (data as CocoData).file, imageDir: data.imageDir, ...counts,
          split: opts.splits ? `from ${opts.splits}` : `by image id hash: dev ${opts.devFraction}, test ${opts.testFraction}` }
      : { kind, name: "Flickr8k", path: s, imageDir: data.imageDir, ...counts });
  }
  return out;
}
