/**
 * Step 1: read Flickr8k (captions + standard splits), clean and tokenize the captions, and build
 * the vocabulary from the training split. Writes .cache/data/dataset.json.
 *   npm run pipeline:prepare -- --data=/path/to/flickr8k --minCount=5
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { tokenize } from "../model/text.ts";
import { Vocabulary } from "../model/vocab.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { DEFAULT_DATA_DIR, readFlickr8k } from "./lib/flickr8k.ts";
import type { PreparedDataset } from "./lib/dataset.ts";
import { DATASET_FILE } from "./lib/paths.ts";

const defaults = {
  data: DEFAULT_DATA_DIR, // folder holding the captions file, the split lists and the images
  minCount: 5, // words seen fewer times in training captions become <unk>
  out: DATASET_FILE,
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const ds = readFlickr8k(cfg.data);
  const split = (names: string[]) => names.map((file) => ({ file, captions: ds.captions.get(file)!.map(tokenize) }));
  const splits = { train: split(ds.splits.train), dev: split(ds.splits.dev), test: split(ds.splits.test) };
  const vocab = Vocabulary.build(splits.train.flatMap((i) => i.captions), cfg.minCount);
  const out: PreparedDataset = { source: ds.dir, imageDir: ds.imageDir, minCount: cfg.minCount, vocab: vocab.toJSON(), splits };
  mkdirSync(path.dirname(cfg.out), { recursive: true });
  writeFileSync(cfg.out, JSON.stringify(out));
  const trainTokens = splits.train.flatMap((i) => i.captions).flat();
  const unk = trainTokens.filter((w) => !vocab.has(w)).length;
  const lens = splits.train.flatMap((i) => i.captions.map((c) => c.length)).sort((a, b) => a - b);
  console.log(`images: train ${splits.train.length}, dev ${splits.dev.length}, test ${splits.test.length}`);
  console.log(`vocabulary: ${vocab.size} words (min count ${cfg.minCount}); <unk> rate in training ${((100 * unk) / trainTokens.length).toFixed(2)}%`);
  console.log(`caption length: median ${lens[lens.length >> 1]}, 99th percentile ${lens[Math.floor(lens.length * 0.99)]}, max ${lens.at(-1)}`);
  console.log(`wrote ${cfg.out}`);
});
