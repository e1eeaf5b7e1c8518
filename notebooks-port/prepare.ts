/**
 * Step 1: read the caption data (Flickr8k with its standard splits, COCO caption files split by
 * image id, or several of them at once), clean and tokenize the captions, and build the vocabulary
 * from the training split. Writes .cache/data/dataset.json.
 *   npm run pipeline:prepare -- --data=/path/to/flickr8k --minCount=5
 *   npm run pipeline:prepare -- --data=/path/to/coco/annotations/captions_train2014.json --images=/path/to/coco/train2014
 *   npm run pipeline:prepare -- --data=../shared/data/flickr8k,/path/to/coco   # both, one vocabulary
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { tokenize } from "../model/text.ts";
import { Vocabulary } from "../model/vocab.ts";
import { DEFAULT_COCO_DEV_DIR, DEFAULT_DEV_FRACTION, DEFAULT_TEST_FRACTION, readCocoIds } from "./lib/coco.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { DataError, DEFAULT_DATA_DIR } from "./lib/flickr8k.ts";
import type { PreparedDataset } from "./lib/dataset.ts";
import { DATASET_FILE } from "./lib/paths.ts";
import { readSources } from "./lib/sources.ts";

const defaults = {
  data: DEFAULT_DATA_DIR, // comma-separated: Flickr8k folders (captions, split lists, images), COCO folders or captions_*.json files
  images: "", // the photos of a COCO caption file given as a path (default: images/ or train2014/ ... next to it)
  devFraction: DEFAULT_DEV_FRACTION, // COCO: share of images (by image id hash) in dev ...
  testFraction: DEFAULT_TEST_FRACTION, // ... and in test; the rest trains
  splits: "", // COCO: a split file instead ({"train": [ids], "dev": [...], "test": [...]} or Karpathy's dataset_coco.json)
  holdOut: DEFAULT_COCO_DEV_DIR, // COCO photos of this set (coco-dev) never go to train or dev; "" to keep them
  minCount: 5, // words seen fewer times in training captions become <unk>
  out: DATASET_FILE,
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const ds = readSources(cfg.data, { images: cfg.images || undefined, devFraction: cfg.devFraction, testFraction: cfg.testFraction, splits: cfg.splits });
  // coco-dev measures how captions hold up on photos unlike the training data: a COCO source that
  // holds its photos (val2014, or coco-dev itself) must not train or select a model on them.
  let heldOut = 0;
  if (cfg.holdOut && ds.cocoIds.size && existsSync(cfg.holdOut)) {
    const ids = readCocoIds(cfg.holdOut);
    for (const split of ["train", "dev"] as const) {
      const keep = ds.splits[split].filter((f) => !ids.has(ds.cocoIds.get(f) ?? NaN));
      heldOut += ds.splits[split].length - keep.length;
      ds.splits[split] = keep;
    }
  }
  if (!ds.splits.train.length) throw new DataError(`no training images left in ${cfg.data}${heldOut ? ` (${heldOut} photos of ${cfg.holdOut} are held out; --holdOut= keeps them)` : ""}`);
  const split = (names: string[]) => names.map((file) => ({ file, captions: ds.captions.get(file)!.map(tokenize) }));
  const splits = { train: split(ds.splits.train), dev: split(ds.splits.dev), test: split(ds.splits.test) };
  const vocab = Vocabulary.build(splits.train.flatMap((i) => i.captions), cfg.minCount);
  const plainFlickr8k = ds.sources.length === 1 && ds.sources[0].kind === "flickr8k";
  const out: PreparedDataset = {
    source: ds.dir, imageDir: ds.imageDir, minCount: cfg.minCount, vocab: vocab.toJSON(), splits,
    // A Flickr8k-only dataset is written as before; the others say where their images came from.
    ...(plainFlickr8k ? {} : { sources: ds.sources }),
  };
  mkdirSync(path.dirname(cfg.out), { recursive: true });
  writeFileSync(cfg.out, JSON.stringify(out));
  const trainTokens = splits.train.flatMap((i) => i.captions).flat();
  const unk = trainTokens.filter((w) => !vocab.has(w)).length;
  const lens = splits.train.flatMap((i) => i.captions.map((c) => c.length)).sort((a, b) => a - b);
  if (!plainFlickr8k) for (const s of ds.sources) console.log(`${s.name}: train ${s.train}, dev ${s.dev}, test ${s.test}${s.split ? ` (split ${s.split})` : ""}`);
  if (heldOut) console.log(`held out ${heldOut} photos of ${cfg.holdOut} from train and dev`);
  console.log(`images: train ${splits.train.length}, dev ${splits.dev.length}, test ${splits.test.length}`);
  console.log(`vocabulary: ${vocab.size} words (min count ${cfg.minCount}); <unk> rate in training ${((100 * unk) / trainTokens.length).toFixed(2)}%`);
  console.log(`caption length: median ${lens[lens.length >> 1]}, 99th percentile ${lens[Math.floor(lens.length * 0.99)]}, max ${lens.at(-1)}`);
  console.log(`wrote ${cfg.out}`);
});
