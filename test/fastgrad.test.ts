/** The wasm-friendly gradients (model/fastgrad.ts) against tfjs's own autodiff of the same products. */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { attend, mm, mmConst, mmT } from "../model/fastgrad.ts";
import { initBackend, tf } from "../model/tf.ts";

before(() => initBackend());

function close(a: tf.Tensor, b: tf.Tensor, what: string) {
  assert.deepEqual(a.shape, b.shape, what);
  const [x, y] = [a.dataSync(), b.dataSync()];
  x.forEach((v, i) => assert.ok(Math.abs(v - y[i]) <= 1e-4 * (1 + Math.abs(y[i])), `${what}[${i}]: ${v} against ${y[i]}`));
}

test("mm, mmT and mmConst give tfjs's matMul values and gradients (mmConst: the weight's only)", () => {
  const a = tf.randomNormal([5, 7], 0, 1, "float32", 1) as tf.Tensor2D, w = tf.randomNormal([7, 3], 0, 1, "float32", 2) as tf.Tensor2D;
  const up = tf.randomNormal([5, 3], 0, 1, "float32", 3); // a fixed upstream gradient: loss = sum(up * (a @ w))
  const loss = (f: (a: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) => f(x as tf.Tensor2D, y as tf.Tensor2D).mul(up).sum();
  const [ra, rw] = tf.grads(loss((x, y) => tf.matMul(x, y)))([a, w]);
  const [ma, mw] = tf.grads(loss(mm))([a, w]);
  close(ma, ra, "mm da");
  close(mw, rw, "mm dw");
  const [ta, tw] = tf.grads(loss((x, y) => mmT(x, y, tf.transpose(y))))([a, w]);
  close(ta, ra, "mmT da");
  close(tw, rw, "mmT dw");
  close(mmConst(a, w), tf.matMul(a, w), "mmConst value");
  close(tf.grad((y: tf.Tensor) => mmConst(a, y as tf.Tensor2D).mul(up).sum())(w), rw, "mmConst dw");
  // Its point: the constant gets no gradient, so the backward pass never computes dy @ w^T.
  assert.throws(() => tf.grad((x: tf.Tensor) => mmConst(x as tf.Tensor2D, w).sum())(a), /gradient/i);
});

test("attend reads the context out and gives alpha tfjs's gradient", () => {
  const [B, L, D] = [2, 4, 3];
  const alpha = tf.softmax(tf.randomNormal([B, L], 0, 1, "float32", 4)) as tf.Tensor2D;
  const v = tf.randomNormal([B, L, D], 0, 1, "float32", 5) as tf.Tensor3D;
  const up = tf.randomNormal([B, D], 0, 1, "float32", 6);
  const ref = (x: tf.Tensor) => tf.matMul(x.reshape([B, 1, L]) as tf.Tensor3D, v).reshape([B, D]);
  close(attend(alpha, v, tf.transpose(v, [0, 2, 1])), ref(alpha), "context");
  close(tf.grad((x: tf.Tensor) => attend(x as tf.Tensor2D, v, tf.transpose(v, [0, 2, 1])).mul(up).sum())(alpha), tf.grad((x: tf.Tensor) => ref(x).mul(up).sum())(alpha), "d alpha");
});
