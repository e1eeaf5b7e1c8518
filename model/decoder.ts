/**
 * The "Show, Attend and Tell" decoder (Xu et al. 2015, soft attention; deep output as in the
 * authors' arctic-captions code). Shapes: B batch, T time steps, L regions, D feature channels,
 * H LSTM units, A attention size, E word-vector size, O deep-output size, V vocabulary.
 *
 * One set of functions serves training (teacher forcing, all steps unrolled) and inference
 * (one step at a time), so the two can never drift apart.
 */
import type { DecoderConfig } from "./config.ts";
import { attend, embed, mm, mmConst, mmT } from "./fastgrad.ts";
import { tf } from "./tf.ts";

/** Weight name -> shape. Fused matrices keep the per-step matmul count low (each op has a fixed cost). */
export function paramShapes(c: DecoderConfig): Record<string, number[]> {
  const { featureDim: D, hiddenDim: H, attnDim: A, embedDim: E, outDim: O, vocabSize: V } = c;
  return {
    embedding: [V, E], // word vectors, initialised from GloVe
    initHC: [D, 2 * H], // mean feature -> [h0 | c0]
    initHCBias: [2 * H],
    attnFeat: [D, A], // W_a: features -> attention space, once per image
    attnBias: [A],
    attnScore: [A, 1], // w: attention space -> one score per region
    hidden: [H, A + 1 + 4 * H], // h -> [attention query | gate logit | LSTM recurrent gates]
    gateBias: [1],
    context: [D, 4 * H + O], // gated context -> [LSTM input gates | deep output]
    wordIn: [E, 4 * H + O], // previous word -> [LSTM input gates | deep output]
    lstmBias: [4 * H],
    outHidden: [H, O], // deep output: L_h
    outBias: [O],
    logits: [O, V], // deep output -> vocabulary
    logitsBias: [V],
    ...(c.tags ? { tagIn: [c.tags, 4 * H + O] } : {}), // class scores -> [LSTM input gates | deep output], once per image
  };
}

export type Params = Record<string, tf.Tensor>;

/**
 * Glorot-uniform weights, zero biases except the LSTM forget gate (1, so memory survives early
 * training). The class-score projection starts at zero, so a decoder given tags starts out as the
 * decoder it was fine-tuned from.
 */
export function initParams(c: DecoderConfig, glove?: Float32Array, seed = 1): Record<string, tf.Variable> {
  const H = c.hiddenDim;
  const out: Record<string, tf.Variable> = {};
  let s = seed;
  for (const [name, shape] of Object.entries(paramShapes(c))) {
    let t: tf.Tensor;
    if (name === "embedding" && glove) t = tf.tensor2d(glove, shape as [number, number]);
    else if (name === "tagIn") t = tf.zeros(shape);
    else if (shape.length === 1) t = name === "lstmBias" ? tf.concat([tf.zeros([H]), tf.ones([H]), tf.zeros([2 * H])]) : tf.zeros(shape);
    else {
      const lim = Math.sqrt(6 / (shape[0] + shape[1]));
      t = tf.randomUniform(shape, -lim, lim, "float32", s++);
    }
    out[name] = tf.variable(t, true, name);
  }
  return out;
}

/** What attention needs about an image, computed once and reused at every step. */
// (A type, not an interface, so tf.tidy accepts it as a tensor container.)
export type ImageState = {
  v: tf.Tensor3D; // [B, L, D] features
  vT: tf.Tensor3D; // [B, D, L] (for the attention gradient)
  keys: tf.Tensor3D; // [B, L, A] = v W_a + b
  h: tf.Tensor2D; // initial LSTM state from the mean feature
  c: tf.Tensor2D;
  tag?: tf.Tensor2D; // [B, 4H + O] the class scores' part of every step's input (decoders with tags)
};

export function imageState(p: Params, feats: tf.Tensor3D, tags?: tf.Tensor2D): ImageState {
  const [B, L, D] = feats.shape;
  const A = p.attnFeat.shape[1]!;
  const H = p.hidden.shape[0]!;
  // The features are frozen: their products take gradients for the weights only (mmConst).
  const keys = mmConst(feats.reshape([B * L, D]), p.attnFeat as tf.Tensor2D).add(p.attnBias).reshape([B, L, A]) as tf.Tensor3D;
  // h0, c0 from the mean feature (Xu et al. 2015, 3.1.2).
  const hc = tf.tanh(mmConst(feats.mean(1) as tf.Tensor2D, p.initHC as tf.Tensor2D).add(p.initHCBias)) as tf.Tensor2D;
  const [h, c] = tf.split(hc, [H, H], 1) as [tf.Tensor2D, tf.Tensor2D];
  const tag = tagInput(p, tags);
  return { v: feats, vT: tf.transpose(feats, [0, 2, 1]), keys, h, c, ...(tag ? { tag } : {}) };
}

interface StepOut {
  h: tf.Tensor2D;
  c: tf.Tensor2D;
  alpha: tf.Tensor2D; // [B, L]
  out: tf.Tensor2D; // [B, O] deep output before the vocabulary projection
}

/**
 * One LSTM step with soft attention. `word` is the previous word already projected by wordIn
 * ([B, 4H + O]), so training can project all time steps in one matmul; a decoder with tags adds
 * the image's projected class scores to it.
 */
export function step(p: Params, img: ImageState, h: tf.Tensor2D, c: tf.Tensor2D, word: tf.Tensor2D, train?: { hDrop?: tf.Tensor2D; pT: Params }): StepOut {
  const [B, L, A] = img.keys.shape;
  const H = h.shape[1];
  const O = p.outBias.shape[0]!;
  // In training, weights used at every step go through mmT with their transposes made once per batch.
  const lin = (x: tf.Tensor2D, name: string) => (train ? mmT(x, p[name] as tf.Tensor2D, train.pT[name] as tf.Tensor2D) : mm(x, p[name] as tf.Tensor2D));
  const hq = lin(h, "hidden"); // [B, A + 1 + 4H]
  const [query, gateLogit, recurrent] = tf.split(hq, [A, 1, 4 * H], 1);
  // Additive attention: e = w^T tanh(W_a v + U_a h), alpha = softmax over regions.
  const e = tf.tanh(img.keys.add(query.reshape([B, 1, A]))); // [B, L, A]
  const scores = lin(e.reshape([B * L, A]) as tf.Tensor2D, "attnScore").reshape([B, L]);
  const alpha = tf.softmax(scores) as tf.Tensor2D;
  // Gating scalar beta = sigmoid(f_beta(h)) scales the context (Xu et al. 2015, 4.2.1).
  const ctx = attend(alpha, img.v, img.vT).mul(tf.sigmoid(gateLogit.add(p.gateBias))) as tf.Tensor2D; // [B, D]
  const [ctxGates, ctxOut] = tf.split(lin(ctx, "context"), [4 * H, O], 1);
  const [wordGates, wordOut] = tf.split(img.tag ? word.add(img.tag) : word, [4 * H, O], 1);
  const gates = recurrent.add(ctxGates).add(wordGates).add(p.lstmBias); // [B, 4H]
  const [gi, gf, go, gg] = tf.split(gates, 4, 1);
  const cNew = tf.sigmoid(gf).mul(c).add(tf.sigmoid(gi).mul(tf.tanh(gg))) as tf.Tensor2D;
  const hNew = tf.sigmoid(go).mul(tf.tanh(cNew)) as tf.Tensor2D;
  // Deep output: tanh(L_h h + L_z z + E y + b), dropout on h during training.
  const hOut = train?.hDrop ? hNew.mul(train.hDrop) as tf.Tensor2D : hNew;
  const out = tf.tanh(lin(hOut, "outHidden").add(ctxOut).add(wordOut).add(p.outBias)) as tf.Tensor2D;
  return { h: hNew, c: cNew, alpha, out };
}

/** Deep output [N, O] -> vocabulary logits [N, V]. */
export const toLogits = (p: Params, out: tf.Tensor2D) => mm(out, p.logits as tf.Tensor2D).add(p.logitsBias) as tf.Tensor2D;

/** Previous word ids [N] -> projected input [N, 4H + O]. */
export const wordInput = (p: Params, ids: tf.Tensor1D) => mm(embed(p.embedding as tf.Tensor2D, ids), p.wordIn as tf.Tensor2D);

/**
 * Class scores [B, K] -> their part of every step's input [B, 4H + O] (added to the word's), or
 * null for a decoder without tags. The scores are inputs, not weights: no gradient for them.
 */
export function tagInput(p: Params, tags: tf.Tensor2D | undefined): tf.Tensor2D | null {
  if (!p.tagIn) return null;
  if (!tags || tags.shape[1] !== p.tagIn.shape[0]) throw new Error(`this decoder reads ${p.tagIn.shape[0]} class scores per image, got ${tags ? tags.shape[1] : "none"}`);
  return mmConst(tags, p.tagIn as tf.Tensor2D);
}

export interface Batch {
  feats: tf.Tensor3D; // [B, L, D]
  input: Int32Array; // [T, B] time-major: <start> w1 w2 ...
  target: Int32Array; // [T, B]: w1 w2 ... <end>, 0 = padding
  T: number;
  B: number;
  /** Per-caption loss weights [B] (self-critical training: the reward advantage). Default 1. */
  weights?: Float32Array;
  /** Class scores [B, K], for a decoder with tags. */
  tags?: tf.Tensor2D;
}

/**
 * Teacher-forced loss: mean cross-entropy per real token plus the doubly stochastic attention
 * penalty lambda * mean_{b,l} (1 - sum_t alpha_tl)^2, which pushes the model to look at
 * every region over the caption (Xu et al. 2015, 4.2.1). Call inside tf.variableGrads.
 */
export function teacherForcedLoss(p: Params, b: Batch, opts: { dropout: number; attnReg: number }): { loss: tf.Scalar; xent: tf.Scalar } {
  const { T, B } = b;
  const V = p.logits.shape[1]!;
  const H = p.hidden.shape[0]!;
  const img = imageState(p, b.feats, b.tags);
  let { h, c } = img;
  const words = tf.unstack(wordInput(p, tf.tensor1d(b.input, "int32")).reshape([T, B, -1])) as tf.Tensor2D[];
  const mask = tf.tensor2d(Float32Array.from(b.target, (t) => (t > 0 ? 1 : 0)), [T, B]);
  const weight = b.weights ? mask.mul(tf.tensor2d(b.weights, [1, B])) : mask;
  const keep = 1 - opts.dropout;
  const pT: Params = {};
  for (const n of ["hidden", "attnScore", "context", "outHidden"]) pT[n] = tf.transpose(p[n]);
  const outs: tf.Tensor2D[] = [];
  const alphas: tf.Tensor2D[] = [];
  for (let t = 0; t < T; t++) {
    const drop = opts.dropout > 0 ? tf.randomUniform([B, H]).less(keep).toFloat().div(keep) as tf.Tensor2D : undefined;
    const s = step(p, img, h, c, words[t], { hDrop: drop, pT });
    ({ h, c } = s);
    outs.push(s.out);
    alphas.push(s.alpha);
  }
  let out = tf.stack(outs).reshape([T * B, -1]) as tf.Tensor2D;
  if (opts.dropout > 0) out = out.mul(tf.randomUniform(out.shape).less(keep).toFloat().div(keep));
  const logp = tf.logSoftmax(toLogits(p, out)); // [T*B, V]
  const onehot = tf.oneHot(tf.tensor1d(b.target, "int32"), V).toFloat().mul(weight.reshape([T * B, 1]));
  const tokens = mask.sum();
  const xent = logp.mul(onehot).sum().neg().div(tokens) as tf.Scalar;
  const coverage = tf.stack(alphas).mul(mask.reshape([T, B, 1])).sum(0); // [B, L]
  const reg = tf.scalar(1).sub(coverage).square().mean().mul(opts.attnReg) as tf.Scalar;
  return { loss: xent.add(reg) as tf.Scalar, xent };
}
