/**
 * A word-trigram language model of everyday captions (COCO's caption text plus Flickr8k's training
 * captions, notebooks-port/language-prior.ts), for shallow fusion with the decoder: grounded
 * decoding (model/grounding.ts) puts a name like "giraffe" into a caption, and this prior says how
 * people go on from there ("a giraffe standing next to a tree", not "a dog is playing in a giraffe").
 * Stupid backoff (Brants et al. 2007): score(w | u v) = c(u v w) / c(u v), else 0.4 score(w | v),
 * else 0.4^2 c(w) / N. Its log is added, times a weight chosen on the dev sets, to the decoder's.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const BACKOFF = Math.log(0.4);
/** Rows of log scores kept (oldest dropped first). */
const CACHE_ROWS = 256;

export interface LanguagePrior {
  /** log score(w | u v) for every word w of the vocabulary (ids as the decoder's; u, v = previous two, START at the beginning). */
  logScores(u: number, v: number): Float32Array;
}

/**
 * The prior's files: language-prior.json ({ vocabSize, unigrams: counts[V], total }) and
 * language-prior.bin (Uint32 records: bigrams as [u<<16|v, count] then trigrams as [u<<16|v, w<<16|count]).
 */
export function loadLanguagePrior(modelDir: string, vocabSize: number): LanguagePrior | null {
  const meta = path.join(modelDir, "language-prior.json");
  if (!existsSync(meta)) return null;
  const m = JSON.parse(readFileSync(meta, "utf8")) as { vocabSize: number; total: number; unigrams: number[]; bigrams: number; trigrams: number };
  if (m.vocabSize !== vocabSize) throw new Error(`language-prior.json in ${modelDir} was built for ${m.vocabSize} words, the decoder has ${vocabSize}: rerun \`npm run pipeline:language-prior\``);
  const buf = readFileSync(path.join(modelDir, "language-prior.bin"));
  const rec = new Uint32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  if (rec.length !== 2 * (m.bigrams + m.trigrams)) throw new Error(`language-prior.bin in ${modelDir} does not match its json`);
  // context u<<16|v -> its continuations: [word, count] pairs, and the context's own count.
  const bi = new Map<number, number>(); // u<<16|v -> c(u v)
  const tri = new Map<number, number[]>();
  const follows = new Map<number, number[]>(); // v -> [w, c(v w)] pairs
  for (let i = 0; i < m.bigrams; i++) {
    const key = rec[2 * i], c = rec[2 * i + 1];
    bi.set(key, c);
    const v = key >>> 16, w = key & 0xffff;
    let f = follows.get(v);
    if (!f) follows.set(v, (f = []));
    f.push(w, c);
  }
  for (let i = m.bigrams; i < m.bigrams + m.trigrams; i++) {
    const key = rec[2 * i], wc = rec[2 * i + 1];
    let t = tri.get(key);
    if (!t) tri.set(key, (t = []));
    t.push(wc >>> 16, wc & 0xffff);
  }
  const uniLog = Float32Array.from(m.unigrams, (c) => 2 * BACKOFF + Math.log(Math.max(c, 0.5) / m.total));
  const vCount = new Float64Array(vocabSize);
  for (const [v, f] of follows) for (let i = 1; i < f.length; i += 2) vCount[v] += f[i];
  const cache = new Map<number, Float32Array>();
  return {
    logScores(u, v) {
      const key = ((u << 16) | v) >>> 0;
      const hit = cache.get(key);
      if (hit) return hit;
      const out = Float32Array.from(uniLog);
      const f = follows.get(v);
      if (f) for (let i = 0; i < f.length; i += 2) out[f[i]] = BACKOFF + Math.log(f[i + 1] / vCount[v]);
      const t = tri.get(key), cuv = bi.get(key);
      if (t && cuv) for (let i = 0; i < t.length; i += 2) out[t[i]] = Math.log(t[i + 1] / cuv);
      // Contexts repeat a lot within a caption and across captions; each entry is a row of the
      // vocabulary (10 KB), so the cache stays small: 4,096 rows held 42 MB in a long-running server.
      if (cache.size >= CACHE_ROWS) cache.delete(cache.keys().next().value!);
      cache.set(key, out);
      return out;
    },
  };
}
