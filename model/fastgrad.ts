/**
 * Matmul with a wasm-friendly gradient. tfjs-wasm runs matMul with transposeA/transposeB at
 * 1-3.5 GFLOP/s against ~40 for a plain one, and the built-in matMul gradient uses exactly those
 * forms, so a naive training step spends >90% of its time there. These wrappers compute the
 * same gradients through an explicit tf.transpose followed by a plain matMul.
 */
import { tf } from "./tf.ts";

// tfjs types customGrad's callback loosely (tensors and the save function share one rest type).
type GradFn = Parameters<typeof tf.customGrad>[0];

/** a [m,k] @ b [k,n], gradient via explicit transposes. */
export const mm = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy as tf.Tensor2D)];
    },
  };
}) as unknown as GradFn) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * a [m,k] @ w [k,n] where a is a constant (the frozen image features): only w gets a gradient, so
 * the backward pass skips dy @ w^T, an [m,k] product mm would compute and throw away (for the
 * attention keys, 4096 x 128 x 928: the largest single matmul of a training step).
 */
export function mmConst(a: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad(((b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a]);
    return {
      value: tf.matMul(a, b as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, [sa]: tf.Tensor[]) => tf.matMul(tf.transpose(sa as tf.Tensor2D), dy as tf.Tensor2D),
    };
  }) as unknown as GradFn);
  return f(w) as tf.Tensor2D;
}

/**
 * x [m,k] @ w [k,n] where wT = w^T was computed once per batch: an unrolled LSTM multiplies by the
 * same weights at every step, so transposing them once instead of per step saves most of the
 * transpose time.
 */
export function mmT(x: tf.Tensor2D, w: tf.Tensor2D, wT: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, wT]);
    return {
      value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, [sa, swT]: tf.Tensor[]) => [
        tf.matMul(dy as tf.Tensor2D, swT as tf.Tensor2D),
        tf.matMul(tf.transpose(sa as tf.Tensor2D), dy as tf.Tensor2D),
      ],
    };
  }) as unknown as GradFn);
  return f(x, w) as tf.Tensor2D;
}

/**
 * Attention read-out: alpha [B, L] over features v [B, L, D] -> context [B, D]. v is a frozen
 * input, so only alpha gets a gradient: d alpha = dctx [B,1,D] @ vT [B,D,L], with vT passed in
 * pre-transposed once per batch instead of once per step.
 */
export function attend(alpha: tf.Tensor2D, v: tf.Tensor3D, vT: tf.Tensor3D): tf.Tensor2D {
  const [B, L] = alpha.shape;
  const D = v.shape[2];
  // Tensors the gradient needs must go through save(): the engine frees everything else when the forward pass ends.
  const f = tf.customGrad(((a: tf.Tensor, save: tf.GradSaveFunc) => {
    save([vT]);
    return {
      value: tf.matMul(a.reshape([B, 1, L]) as tf.Tensor3D, v).reshape([B, D]),
      gradFunc: (dy: tf.Tensor, [svT]: tf.Tensor[]) => tf.matMul(dy.reshape([B, 1, D]) as tf.Tensor3D, svT as tf.Tensor3D).reshape([B, L]),
    };
  }) as unknown as GradFn);
  return f(alpha) as tf.Tensor2D;
}

/**
 * Embedding lookup: forward is a gather; the gradient (which needs UnsortedSegmentSum, missing
 * on wasm) is a one-hot^T @ dy matmul instead.
 */
export function embed(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const V = table.shape[0];
  const f = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([ids]);
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor, [sids]: tf.Tensor[]) => tf.matMul(tf.transpose(tf.oneHot(sids as tf.Tensor1D, V).toFloat()) as tf.Tensor2D, dy as tf.Tensor2D),
    };
  }) as unknown as GradFn);
  return f(table) as tf.Tensor2D;
}
