/**
 * Decoding many images at once on tfjs, for training: greedy captions for the dev evaluation, and
 * sampled ones for self-critical training. The app decodes with model/search.ts.
 */
import type { Params } from "./decoder.ts";
import { imageState } from "./decoder.ts";
import { BANNED, isRepeat } from "./search.ts";
import { inferStep } from "./step-decoder.ts";
import { tf } from "./tf.ts";
import { END, START } from "./vocab.ts";

/**
 * Decodes a batch [B, L, D] (with its class scores [B, K], for a decoder with tags) at once: greedy
 * (for evaluation: the likeliest word that search.ts's repeat rule allows, as the app's greedy
 * search takes it; `repeatable` = the function words), or
 * sampling each word from the model's distribution (for self-critical training, where the policy
 * being trained is the model's own, unfiltered). Returns word ids per image, without <end>.
 */
export function decodeBatch(p: Params, feats: tf.Tensor3D, maxLen: number, mode: "greedy" | "sample" = "greedy", seed?: number, repeatable?: ReadonlySet<number>, tags?: tf.Tensor2D): number[][] {
  const B = feats.shape[0];
  const img = tf.tidy(() => imageState(p, feats, tags));
  let { h, c } = img;
  const out: number[][] = Array.from({ length: B }, () => []);
  const done = new Array<boolean>(B).fill(false);
  let prev = new Int32Array(B).fill(START);
  const V = p.logits.shape[1]!;
  // Sampling bans the markers with a bias inside tfjs; greedy skips them in its own loop.
  const banned = mode === "sample" ? tf.tensor1d(Float32Array.from({ length: V }, (_, w) => (BANNED.includes(w) ? -1e9 : 0))) : null;
  try {
    for (let t = 0; t < maxLen && !done.every(Boolean); t++) {
      const s = inferStep(p, img, h, c, prev);
      tf.dispose([h, c]);
      ({ h, c } = s);
      if (mode === "greedy") {
        const logp = s.logp.dataSync() as Float32Array;
        prev = Int32Array.from({ length: B }, (_, b) => {
          if (done[b]) return END;
          let best = END;
          for (let w = 0; w < V; w++) if (logp[b * V + w] > logp[b * V + best] && !BANNED.includes(w) && !isRepeat(out[b], w, repeatable)) best = w;
          return best;
        });
      } else {
        const next = tf.tidy(() => tf.multinomial(s.logp.add(banned!) as tf.Tensor2D, 1, seed === undefined ? undefined : seed + t).reshape([B]));
        prev = Int32Array.from(next.dataSync());
        next.dispose();
      }
      tf.dispose([s.logp, s.alpha]);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        if (prev[b] === END) done[b] = true;
        else out[b].push(prev[b]);
      }
    }
  } finally {
    tf.dispose([h, c, img.vT, img.keys, ...(img.tag ? [img.tag] : []), ...(banned ? [banned] : [])]); // img.v is the caller's feats
  }
  return out;
}

/** Greedy decoding of a batch under the app's repeat rule (see decodeBatch). */
export const greedyBatch = (p: Params, feats: tf.Tensor3D, maxLen: number, repeatable?: ReadonlySet<number>, tags?: tf.Tensor2D) => decodeBatch(p, feats, maxLen, "greedy", undefined, repeatable, tags);
