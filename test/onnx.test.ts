/** The ONNX encoder and decoder (the fast path) against the tfjs graphs and functions they come from (the reference). */
import assert from "node:assert/strict";
import { readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ENCODERS, encoderSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { DEFAULT_MODEL_DIR, loadDecoder, toParams } from "../model/index.ts";
import { onnxDecoder } from "../model/onnx-decoder.ts";
import { decodeWeights, graphToOnnx } from "../model/onnx-encoder.ts";
import { search } from "../model/search.ts";
import { ensembleDecoder, tfDecoder } from "../model/step-decoder.ts";
import { START } from "../model/vocab.ts";
import { initBackend, tf } from "../model/tf.ts";
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

test("the converter's weight decoding matches tfjs's (float32, int32, float16 and uint8 / uint16 quantization), and the shipped graphs decode fully", async () => {
  const specs: tf.io.WeightsManifestEntry[] = [
    { name: "f32", shape: [3], dtype: "float32" },
    { name: "i32", shape: [2], dtype: "int32" },
    { name: "f16", shape: [6], dtype: "float32", quantization: { dtype: "float16" } },
    { name: "u8", shape: [2, 2], dtype: "float32", quantization: { dtype: "uint8", scale: 0.05, min: -6.2 } },
    { name: "u16", shape: [2], dtype: "float32", quantization: { dtype: "uint16", scale: 0.001, min: -1 } },
    { name: "i32u8", shape: [3], dtype: "int32", quantization: { dtype: "uint8", scale: 0.7, min: -2 } },
  ];
  const half = [0x3c00, 0xc000, 0x0001, 0x7bff, 0x3555, 0x0000]; // 1, -2, the smallest subnormal, 65504, 0.333, 0
  const bytes = Buffer.concat([
    Buffer.from(new Float32Array([1.5, -2.25, 1e-8]).buffer), Buffer.from(new Int32Array([7, -3]).buffer),
    Buffer.from(new Uint16Array(half).buffer), Buffer.from([0, 1, 128, 255]), Buffer.from(new Uint16Array([0, 65535]).buffer), Buffer.from([0, 2, 9]),
  ]);
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const ours = decodeWeights({ weightSpecs: specs, weightData });
  await initBackend();
  const ref = tf.io.decodeWeights(weightData, specs);
  for (const { name } of specs) {
    assert.deepEqual(ours[name].shape, ref[name].shape, name);
    const [a, b] = [Array.from(ours[name].data), Array.from(ref[name].dataSync())];
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= 1e-6 * Math.abs(b[i]), `${name}[${i}]: ${x} against tfjs's ${b[i]}`));
  }
  tf.dispose(Object.values(ref));
  // Spec sizes that do not add up to the data are refused, not read past.
  assert.throws(() => decodeWeights({ weightSpecs: specs.slice(0, 2), weightData }), /holds \d+ bytes, its specs 20/);
  // The packages' graphs (float16 for CenterNet, uint8 for MobileNetV2): every constant as tfjs decodes it.
  for (const g of encoderSpec("centernet+mnv2-256").graphs) {
    const a = await g.read();
    const [mine, theirs] = [decodeWeights(a), tf.io.decodeWeights(a.weightData!, a.weightSpecs!)];
    assert.equal(Object.keys(mine).length, a.weightSpecs!.length);
    for (const [name, t] of Object.entries(theirs)) {
      const [x, y] = [mine[name].data, t.dataSync()];
      assert.ok(x.length === y.length && x.every((v, i) => Math.abs(v - y[i]) <= 1e-6 * Math.abs(y[i])), `${name} decodes as tfjs decodes it`);
    }
    tf.dispose(Object.values(theirs));
  }
});

test("the converter refuses ops it cannot map", () => {
  const topology = { node: [{ name: "x", op: "Placeholder" }, { name: "y", op: "Softplus", input: ["x"] }] };
  assert.throws(() => graphToOnnx(topology, {}, "x", "y"), /Softplus.*no ONNX mapping/);
});

for (const ensemble of [false, true]) test(`the shipped ${ensemble ? "ensemble, in one ONNX graph," : "decoder"} on onnxruntime gives the tfjs ${ensemble ? "ensemble" : "decoder"}'s word log-probabilities and captions`, { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, async () => {
  const { config, members: all, vocab } = loadDecoder(DEFAULT_MODEL_DIR);
  const members = ensemble ? all : all.slice(0, 1);
  if (ensemble) assert.ok(members.length > 1, "the shipped model is an ensemble");
  const params = members.map((m) => toParams(config, m));
  const fast = await onnxDecoder(members, config);
  const ref = ensembleDecoder(params.map(tfDecoder));
  const encoder = await loadEncoder(encoderSpec(config.encoder), "onnx");
  const files = readdirSync(path.join(DATA, "images")).sort().filter((_, i) => i % 700 === 0).slice(0, 8);
  const opts = { beam: 3, maxLen: config.maxLen, lengthPenalty: 1, blockRepeats: true };
  let maxDiff = 0, maxAlphaDiff = 0;
  for (const f of files) {
    const feats = await encoder.encode([await toRgbSquare(path.join(DATA, "images", f), encoder.spec.inputSize)]);
    // Step by step, 3 rows fed the reference's 3 likeliest words, with a reorder in between.
    const [a, b] = [await ref.start(feats, 3), await fast.start(feats, 3)];
    let prev = new Int32Array(3).fill(START);
    for (let t = 0; t < 6; t++) {
      const [x, y] = [await a.step(prev), await b.step(prev)];
      for (let i = 0; i < x.logp.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x.logp[i] - y.logp[i]));
      for (let i = 0; i < x.alpha.length; i++) maxAlphaDiff = Math.max(maxAlphaDiff, Math.abs(x.alpha[i] - y.alpha[i]));
      const V = x.logp.length / 3;
      // Row k takes word k-th best of row 0, so the rows differ from step 1 on.
      const order = Array.from(x.logp.subarray(0, V).keys()).sort((i, j) => x.logp[j] - x.logp[i]);
      prev = Int32Array.from(order.slice(0, 3));
      // A permutation with a repeat, so a wrong row order in the state would show.
      const from = Int32Array.of(t % 3, (t + 2) % 3, 0);
      a.reorder(from);
      b.reorder(from);
    }
    a.dispose();
    b.dispose();
    // Whole captions at beam 3.
    const caption = async (d: typeof ref) => {
      const it = search(d, feats, opts);
      let r = await it.next();
      while (!r.done) r = await it.next();
      return vocab.decode(r.value.ids).join(" ");
    };
    const [ca, cb] = [await caption(ref), await caption(fast)];
    assert.ok(ca.length > 0);
    assert.equal(cb, ca, f);
    feats.dispose();
  }
  assert.ok(maxDiff < 2e-3, `max log-probability difference ${maxDiff}`);
  assert.ok(maxAlphaDiff < 1e-4, `max attention difference ${maxAlphaDiff}`);
  tf.dispose(params.flatMap((p) => Object.values(p)));
  await fast.release();
  encoder.dispose();
});

test("captions decoded at the same time share each step's native call and come out as decoded alone", { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, async () => {
  const { config, members, vocab } = loadDecoder(DEFAULT_MODEL_DIR);
  const decoder = await onnxDecoder(members, config);
  const encoder = await loadEncoder(encoderSpec(config.encoder), "onnx");
  const files = readdirSync(path.join(DATA, "images")).sort().filter((_, i) => i % 500 === 0).slice(0, 6);
  const feats = await Promise.all(files.map(async (f) => encoder.encode([await toRgbSquare(path.join(DATA, "images", f), encoder.spec.inputSize)])));
  // Greedy and beam 3 mixed, so the batch's images have different numbers of rows, and end at different steps.
  const caption = async (x: tf.Tensor3D, i: number) => {
    const it = search(decoder, x, { beam: i % 2 ? 3 : 1, maxLen: config.maxLen, lengthPenalty: 1, blockRepeats: true });
    let r = await it.next();
    while (!r.done) r = await it.next();
    return { words: vocab.decode(r.value.ids).join(" "), logp: r.value.logp };
  };
  const alone: { words: string; logp: number }[] = [];
  for (const [i, x] of feats.entries()) alone.push(await caption(x, i));
  const before = decoder.counts();
  assert.equal(before.calls, before.steps, "one at a time: a native call per step");
  const together = await Promise.all(feats.map(caption));
  const after = decoder.counts();
  const [steps, calls] = [after.steps - before.steps, after.calls - before.calls];
  assert.ok(calls < steps / 3, `${steps} steps in ${calls} calls`);
  together.forEach((t, i) => {
    assert.equal(t.words, alone[i].words, files[i]);
    assert.ok(Math.abs(t.logp - alone[i].logp) < 1e-3, `${files[i]}: ${t.logp} against ${alone[i].logp}`);
  });
  tf.dispose(feats);
  await decoder.release();
  encoder.dispose();
});

test("int8 decoder weights (the app's default) stay close to float32's: the same first words, and most captions the same (17 of 20 here; dev scores in the model card)", { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, async () => {
  const { config, members, vocab } = loadDecoder(DEFAULT_MODEL_DIR);
  const [exact, int8] = [await onnxDecoder(members, config), await onnxDecoder(members, config, { int8: true })];
  const encoder = await loadEncoder(encoderSpec(config.encoder), "onnx");
  const files = readdirSync(path.join(DATA, "images")).sort().filter((_, i) => i % 300 === 0).slice(0, 20);
  let same = 0, worst = 0, top1 = 0;
  for (const f of files) {
    const feats = await encoder.encode([await toRgbSquare(path.join(DATA, "images", f), encoder.spec.inputSize)]);
    const [a, b] = [await exact.start(feats, 1), await int8.start(feats, 1)];
    const [x, y] = [await a.step(Int32Array.of(START)), await b.step(Int32Array.of(START))];
    const best = (lp: Float32Array) => lp.indexOf(Math.max(...lp));
    if (best(x.logp) === best(y.logp)) top1++;
    worst = Math.max(worst, Math.abs(x.logp[best(x.logp)] - y.logp[best(x.logp)]));
    const caption = async (d: typeof exact) => {
      const it = search(d, feats, { beam: 3, maxLen: config.maxLen, lengthPenalty: 1, blockRepeats: true });
      let r = await it.next();
      while (!r.done) r = await it.next();
      return vocab.decode(r.value.ids).join(" ");
    };
    if ((await caption(exact)) === (await caption(int8))) same++;
    feats.dispose();
  }
  console.log(`int8: ${same}/${files.length} captions as float32, first word Δlogp <= ${worst.toFixed(4)}`);
  assert.equal(top1, files.length, "the same first word everywhere");
  assert.ok(worst < 0.05, `first word's log-probability moved by ${worst}`);
  assert.ok(same >= 0.7 * files.length, `${same} of ${files.length} captions as float32's`);
  // ...and it is really a different graph (quantised), not the float32 one under another name.
  assert.ok(same < files.length || worst > 1e-4, "int8 gave float32's exact numbers");
  await Promise.all([exact.release(), int8.release()]);
  encoder.dispose();
});
