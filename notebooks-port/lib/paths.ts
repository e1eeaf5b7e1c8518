/** Where pipeline steps keep their outputs (all git-ignored): one place so steps agree. */
import path from "node:path";
import { REPO_ROOT } from "./flickr8k.ts";

export const CACHE_DIR = path.join(REPO_ROOT, ".cache");
export const DATASET_FILE = path.join(CACHE_DIR, "data", "dataset.json");
export const featureDir = (encoder: string) => path.join(CACHE_DIR, "features", encoder);
export const EMBEDDING_FILE = path.join(CACHE_DIR, "data", "glove-100d.f32");
export const CHECKPOINT_DIR = path.join(REPO_ROOT, "checkpoints");
export const RUNS_DIR = path.join(REPO_ROOT, "runs");
