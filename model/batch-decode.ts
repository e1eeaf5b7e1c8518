/**
 * Decoding many images at once on tfjs, for training: greedy captions for the dev evaluation, and
 * sampled ones for self-critical training. The app decodes with model/search.ts.
 */
import type { Params } from "./decoder.ts";
import { imageState } from "./decoder.ts";
import { BANNED } from "./search.ts";
import { inferStep } from "./step-decoder.ts";
import { tf } from "./tf.ts";
import { END, START } from "./vocab.ts";

/**
 * Decodes a batch [B, L, D] at once: greedy (for evaluation), or sampling each word from the
 * model's distribution (for self-critical training). Returns word ids per image, without <end>.
 */
export function decodeBatch(p: Params, feats: tf.Tensor3D, maxLen: number, mode: "greedy" | "sample" = "greedy", seed?: number): number[][] {
  const B = feats.shape[0];
  const img = tf.tidy(() => imageState(p, feats));
  let { h, c } = img;
  const out: number[][] = Array.from({ length: B }, () => []);
  const done = new Array<boolean>(B).fill(false);
  let prev = new Int32Array(B).fill(START);
  const V = p.logits.shape[1]!;
  const banned = tf.tensor1d(Float32Array.from({ length: V }, (_, w) => (BANNED.includes(w) ? -1e9 : 0)));
  try {
    for (let t = 0; t < maxLen && !done.every(Boolean); t++) {
      const s = inferStep(p, img, h, c, prev);
      tf.dispose([h, c]);
      ({ h, c } = s);
      const next = tf.tidy(() => {
        const logits = s.logp.add(banned) as tf.Tensor2D;
        return mode === "greedy" ? logits.argMax(1) : tf.multinomial(logits, 1, seed === undefined ? undefined : seed + t).reshape([B]);
      });
      prev = Int32Array.from(next.dataSync());
      tf.dispose([s.logp, s.alpha, next]);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        if (prev[b] === END) done[b] = true;
        else out[b].push(prev[b]);
      }
    }
  } finally {
    tf.dispose([h, c, img.v, img.vT, img.keys, banned]);
  }
  return out;
}

/** Greedy decoding of a batch (see decodeBatch). */
export const greedyBatch = (p: Params, feats: tf.Tensor3D, maxLen: number) => decodeBatch(p, feats, maxLen, "greedy");
