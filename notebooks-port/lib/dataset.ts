/** The prepared dataset written by prepare.ts and read by every later step. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Vocabulary } from "../../model/vocab.ts";
import { DATASET_FILE } from "./paths.ts";
import type { SourceSummary } from "./sources.ts";

export interface PreparedImage {
  /**
   * The image's path relative to `imageDir`, and its key in the feature cache. For one source it is
   * the bare file name (as Flickr8k datasets always had); several sources make it "flickr8k/images/x.jpg".
   */
  file: string;
  /** tokenized, cleaned reference captions (all of them, including rare words) */
  captions: string[][];
}

export interface PreparedDataset {
  source: string;
  /** The image folder, or with several sources the folder holding all of theirs. */
  imageDir: string;
  /** Where the images came from; absent in Flickr8k-only datasets (and in those prepared before COCO). */
  sources?: SourceSummary[];
  minCount: number;
  vocab: string[];
  splits: { train: PreparedImage[]; dev: PreparedImage[]; test: PreparedImage[] };
}

export function loadDataset(file = DATASET_FILE): { data: PreparedDataset; vocab: Vocabulary } {
  let data: PreparedDataset;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw Object.assign(new Error(`cannot read ${file}: run \`npm run pipeline:prepare\` first (${(e as Error).message})`), { name: "DataError" });
  }
  return { data, vocab: new Vocabulary(data.vocab) };
}

/** Where an image of the dataset lives on disk. */
export const imagePath = (data: PreparedDataset, image: PreparedImage | string): string =>
  path.resolve(data.imageDir, typeof image === "string" ? image : image.file);

/** The dataset's name for the model card: "Flickr8k", "Flickr8k + COCO captions_train2014". */
export const datasetName = (data: PreparedDataset): string => data.sources?.map((s) => s.name).join(" + ") ?? "Flickr8k";
