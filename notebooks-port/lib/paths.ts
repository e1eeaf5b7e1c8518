/**
 * Where pipeline steps keep their outputs (all git-ignored): one place so steps agree.
 * CAPTION_WORK_DIR moves all of them elsewhere (tests use a temporary folder).
 */
import path from "node:path";
import { REPO_ROOT } from "./flickr8k.ts";

const WORK = process.env.CAPTION_WORK_DIR ? path.resolve(process.env.CAPTION_WORK_DIR) : REPO_ROOT;
export const CACHE_DIR = path.join(WORK, ".cache");
export const DATASET_FILE = path.join(CACHE_DIR, "data", "dataset.json");
export const featureDir = (encoder: string) => path.join(CACHE_DIR, "features", encoder);
export const EMBEDDING_FILE = path.join(CACHE_DIR, "data", "glove-100d.f32");
export const CHECKPOINT_DIR = path.join(WORK, "checkpoints");
export const RUNS_DIR = path.join(WORK, "runs");
