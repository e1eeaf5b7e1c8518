/** The ONNX encoder (fast path) against the tfjs graph it was converted from (the reference). */
import assert from "node:assert/strict";
import { readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ENCODERS, encoderSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { graphToOnnx } from "../model/onnx.ts";
import { tf } from "../model/tf.ts";
import { DATA } from "./support/studio.ts";


for (const name of Object.keys(ENCODERS)) {
  test(`${name}: onnxruntime and tfjs give the same features`, { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, async () => {
    const spec = encoderSpec(name);
    const ref = await loadEncoder(spec, "tfjs");
    const fast = await loadEncoder(spec, "onnx");
    assert.equal(ref.runtime, "tfjs");
    assert.equal(fast.runtime, "onnx");
    assert.deepEqual(fast.grid, ref.grid);
    assert.equal(fast.channels, ref.channels);
    const files = readdirSync(path.join(DATA, "images")).sort().filter((_, i) => i % 1000 === 0).slice(0, 6);
    const pixels = await Promise.all(files.map((f) => toRgbSquare(path.join(DATA, "images", f), spec.inputSize)));
    const [a, b] = [await ref.encode(pixels), await fast.encode(pixels)];
    assert.deepEqual(b.shape, [pixels.length, ref.grid[0] * ref.grid[1], ref.channels]);
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
}

test("a combined encoder concatenates its graphs' channels in order", { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, async () => {
  const [one, two, both] = await Promise.all(["centernet-mnv3-256", "nsfwjs-mnv2-256", "centernet+mnv2-256"].map((n) => loadEncoder(encoderSpec(n), "onnx")));
  assert.equal(both.channels, one.channels + two.channels);
  const file = readdirSync(path.join(DATA, "images")).sort()[0];
  const px = [await toRgbSquare(path.join(DATA, "images", file), both.spec.inputSize)];
  const [a, b, ab] = await Promise.all([one, two, both].map((e) => e.encode(px)));
  const joined = tf.concat([a, b], 2);
  assert.ok(tf.max(tf.abs(joined.sub(ab))).arraySync() as number < 1e-4);
  tf.dispose([a, b, ab, joined]);
  [one, two, both].forEach((e) => e.dispose());
});

test("an unknown encoder name lists the known ones", () => {
  assert.throws(() => encoderSpec("resnet-50"), /unknown encoder "resnet-50"; known: centernet-mnv3-256, nsfwjs-mnv2-256/);
});

test("the converter refuses ops it cannot map", () => {
  const topology = { node: [{ name: "x", op: "Placeholder" }, { name: "y", op: "Softplus", input: ["x"] }] };
  assert.throws(() => graphToOnnx(topology, {}, "x", "y"), /Softplus.*no ONNX mapping/);
});
