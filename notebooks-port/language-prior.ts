/**
 * Step 9: the everyday-caption language prior (model/language-prior.ts): word trigrams counted over
 * COCO's caption text (coco-text: captions only, no photos) and Flickr8k's training captions, in the
 * shipped decoder's vocabulary (with its object words). Bigrams and trigrams seen fewer than
 * --minCount times are dropped, which keeps the file small.
 *   npm run pipeline:language-prior -- [--text=../shared/data/coco-text/captions_coco-text.json] [--minCount=2]
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_MODEL_DIR, loadDecoder } from "../model/index.ts";
import { tokenize } from "../model/text.ts";
import { END, START } from "../model/vocab.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { DEFAULT_DATA_DIR, readFlickr8k, REPO_ROOT } from "./lib/flickr8k.ts";

const defaults = {
  model: DEFAULT_MODEL_DIR,
  text: path.resolve(REPO_ROOT, "../shared/data/coco-text/captions_coco-text.json"), // COCO caption files, comma-separated
  flickr8k: DEFAULT_DATA_DIR, // its training captions are counted too ("" to leave them out)
  minCount: 2,
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const { vocab } = loadDecoder(cfg.model);
  if (vocab.size >= 1 << 16) throw new Error(`the prior stores word ids in 16 bits; this vocabulary has ${vocab.size} words`);
  const captions: string[] = [];
  for (const file of cfg.text.split(",").filter(Boolean)) {
    const j = JSON.parse(readFileSync(file, "utf8")) as { annotations?: { caption: string }[] };
    if (!Array.isArray(j.annotations)) throw Object.assign(new Error(`${file} is not a COCO caption file (no annotations)`), { name: "DataError" });
    for (const a of j.annotations) captions.push(a.caption);
    console.log(`${file}: ${j.annotations.length} captions`);
  }
  if (cfg.flickr8k) {
    const ds = readFlickr8k(cfg.flickr8k);
    let n = 0;
    for (const f of ds.splits.train) for (const c of ds.captions.get(f) ?? []) (captions.push(c), n++);
    console.log(`${cfg.flickr8k}: ${n} training captions`);
  }
  const V = vocab.size;
  const uni = new Float64Array(V);
  const bi = new Map<number, number>(), tri = new Map<number, number>();
  let total = 0;
  for (const c of captions) {
    const ids = [START, START, ...vocab.encode(tokenize(c)), END];
    for (let i = 2; i < ids.length; i++) {
      uni[ids[i]]++;
      total++;
      const b = ((ids[i - 1] << 16) | ids[i]) >>> 0;
      bi.set(b, (bi.get(b) ?? 0) + 1);
      const t = ids[i - 2] * 2 ** 32 + b; // u, v, w in one exact double
      tri.set(t, (tri.get(t) ?? 0) + 1);
    }
  }
  const bigrams = [...bi].filter(([, c]) => c >= cfg.minCount);
  const trigrams = [...tri].filter(([, c]) => c >= cfg.minCount);
  const rec = new Uint32Array(2 * (bigrams.length + trigrams.length));
  bigrams.forEach(([k, c], i) => ((rec[2 * i] = k), (rec[2 * i + 1] = c)));
  trigrams.forEach(([k, c], i) => {
    const u = Math.floor(k / 2 ** 32), v = (k >>> 16) & 0xffff, w = k & 0xffff;
    rec[2 * (bigrams.length + i)] = ((u << 16) | v) >>> 0;
    rec[2 * (bigrams.length + i) + 1] = ((w << 16) | Math.min(c, 0xffff)) >>> 0;
  });
  writeFileSync(path.join(cfg.model, "language-prior.bin"), rec);
  writeFileSync(path.join(cfg.model, "language-prior.json"), JSON.stringify({ vocabSize: V, total, bigrams: bigrams.length, trigrams: trigrams.length, minCount: cfg.minCount, captions: captions.length, unigrams: Array.from(uni) }) + "\n");
  console.log(`${captions.length} captions, ${total} tokens: kept ${bigrams.length} of ${bi.size} bigrams and ${trigrams.length} of ${tri.size} trigrams (count >= ${cfg.minCount}); ${(rec.byteLength / 1e6).toFixed(2)} MB`);
});
