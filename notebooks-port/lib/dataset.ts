/** The prepared dataset written by prepare.ts and read by every later step. */
import { readFileSync } from "node:fs";
import { Vocabulary } from "../../model/vocab.ts";
import { DATASET_FILE } from "./paths.ts";

export interface PreparedImage {
  file: string;
  /** tokenized, cleaned reference captions (all of them, including rare words) */
  captions: string[][];
}

export interface PreparedDataset {
  source: string;
  imageDir: string;
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
