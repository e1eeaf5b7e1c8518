/**
 * Anything that can run the decoder one step at a time for a search (model/search.ts): the tfjs
 * decoder (the same functions training uses, the reference), and an ensemble of step decoders.
 * The onnxruntime one, the fast path, is in onnx-decoder.ts.
 */
import { imageState, step, toLogits, type ImageState, type Params } from "./decoder.ts";
import { mm } from "./fastgrad.ts";
import { tf } from "./tf.ts";

/** One inference step for K rows: previous word ids -> new state, log-probabilities [K, V], attention [K, L]. */
export function inferStep(p: Params, img: ImageState, h: tf.Tensor2D, c: tf.Tensor2D, prev: Int32Array) {
  return tf.tidy(() => {
    const emb = tf.gather(p.embedding, tf.tensor1d(prev, "int32")) as tf.Tensor2D;
    const s = step(p, img, h, c, mm(emb, p.wordIn as tf.Tensor2D));
    return { h: s.h, c: s.c, logp: tf.logSoftmax(toLogits(p, s.out)), alpha: s.alpha };
  });
}

/** A decoder bound to one image and K rows (beams), holding their LSTM state. */
export interface DecoderRun {
  /** Advances every row by one word: previous ids [K] -> log-probabilities [K * V] and attention [K * L]. */
  step(prev: Int32Array): Promise<{ logp: Float32Array; alpha: Float32Array }>;
  /** Row k continues from row from[k] (beam search keeps the best continuations). */
  reorder(from: Int32Array): void;
  dispose(): void;
}

/** Anything that can decode: tfjs (the reference), onnxruntime (onnx-decoder.ts) or an ensemble. */
export interface StepDecoder {
  /** Starts decoding one image's features [1, L, D] (and its class scores, for a decoder with tags) with `rows` hypotheses. */
  start(feats: tf.Tensor3D, rows: number, tags?: Float32Array): Promise<DecoderRun>;
}

/** The decoder on tfjs: the same functions that training uses. */
export function tfDecoder(p: Params): StepDecoder {
  return {
    async start(feats, rows, tags) {
      const [, L, D] = feats.shape;
      const img = tf.tidy(() => imageState(p, feats.broadcastTo([rows, L, D]) as tf.Tensor3D, tags && (tf.tensor2d(tags, [1, tags.length]).broadcastTo([rows, tags.length]) as tf.Tensor2D)));
      let { h, c } = img;
      return {
        async step(prev) {
          const out = inferStep(p, img, h, c, prev);
          tf.dispose([h, c]);
          ({ h, c } = out);
          const [logp, alpha] = await Promise.all([out.logp.data() as Promise<Float32Array>, out.alpha.data() as Promise<Float32Array>]);
          tf.dispose([out.logp, out.alpha]);
          return { logp, alpha };
        },
        reorder(from) {
          const idx = tf.tensor1d(from, "int32");
          const [h2, c2] = [tf.gather(h, idx), tf.gather(c, idx)] as tf.Tensor2D[];
          tf.dispose([h, c, idx]);
          [h, c] = [h2, c2];
        },
        dispose() {
          tf.dispose([h, c, img.v, img.vT, img.keys, ...(img.tag ? [img.tag] : [])]);
        },
      };
    },
  };
}

/**
 * Decoders trained apart (same encoder and vocabulary) decoding together: words are scored by the
 * normalised geometric mean of their distributions, and the attention shown is the mean of their
 * grids (still summing to 1).
 */
export function ensembleDecoder(members: readonly StepDecoder[]): StepDecoder {
  if (members.length === 1) return members[0];
  return {
    async start(feats, rows, tags) {
      const runs: DecoderRun[] = [];
      try {
        for (const m of members) runs.push(await m.start(feats, rows, tags));
      } catch (e) {
        runs.forEach((r) => r.dispose());
        throw e;
      }
      return {
        async step(prev) {
          const outs = await Promise.all(runs.map((r) => r.step(prev)));
          const n = outs.length, logp = new Float32Array(outs[0].logp.length), alpha = new Float32Array(outs[0].alpha.length);
          for (const o of outs) {
            const [lp, al] = [o.logp, o.alpha];
            for (let i = 0; i < logp.length; i++) logp[i] += lp[i];
            for (let i = 0; i < alpha.length; i++) alpha[i] += al[i] / n;
          }
          // Mean log-probability, renormalised per row (log-sum-exp): the normalised geometric mean.
          const V = logp.length / rows;
          for (let k = 0; k < rows; k++) {
            const o = k * V;
            let max = -Infinity, sum = 0;
            for (let i = o; i < o + V; i++) if (logp[i] > max) max = logp[i];
            for (let i = o; i < o + V; i++) sum += Math.exp((logp[i] - max) / n);
            const lse = max / n + Math.log(sum);
            for (let i = o; i < o + V; i++) logp[i] = logp[i] / n - lse;
          }
          return { logp, alpha };
        },
        reorder: (from) => runs.forEach((r) => r.reorder(from)),
        dispose: () => runs.forEach((r) => r.dispose()),
      };
    },
  };
}
