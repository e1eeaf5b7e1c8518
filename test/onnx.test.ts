/** The ONNX encoder (fast path) against the tfjs graph it was converted from (the reference). */
import assert from "node:assert/strict";
import { readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { centernetSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { graphToOnnx } from "../model/onnx.ts";
import { tf } from "../model/tf.ts";
import { DATA } from "./support/studio.ts";


test("onnxruntime and tfjs give the same features", { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, async () => {
  const spec = centernetSpec();
  const ref = await loadEncoder(spec, "tfjs");
  const fast = await loadEncoder(spec, "onnx");
  assert.equal(ref.runtime, "tfjs");
  assert.equal(fast.runtime, "onnx");
  assert.deepEqual(fast.grid, ref.grid);
  const files = readdirSync(path.join(DATA, "images")).sort().filter((_, i) => i % 1000 === 0).slice(0, 6);
  const pixels = await Promise.all(files.map((f) => toRgbSquare(path.join(DATA, "images", f), spec.inputSize)));
  const [a, b] = [await ref.encode(pixels), await fast.encode(pixels)];
  assert.deepEqual(b.shape, a.shape);
  const [da, db] = [await a.data(), await b.data()];
  let maxDiff = 0, maxAbs = 0;
  for (let i = 0; i < da.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(da[i] - db[i]));
    maxAbs = Math.max(maxAbs, Math.abs(da[i]));
  }
  assert.ok(maxAbs > 1, "features are not trivially zero");
  assert.ok(maxDiff < 1e-3, `max difference ${maxDiff}`);
  tf.dispose([a, b]);
  ref.dispose();
  fast.dispose();
});

test("the converter refuses ops it cannot map", () => {
  const topology = { node: [{ name: "x", op: "Placeholder" }, { name: "y", op: "Softplus", input: ["x"] }] };
  assert.throws(() => graphToOnnx(topology, {}, "x", "y"), /Softplus.*no ONNX mapping/);
});
