/**
 * A decoder with tags (DecoderConfig.tags): it reads the detection head's class scores besides the
 * features. Checked on the shipped members' weights with a class-score projection added: at zero
 * it decodes exactly as the decoder it extends (so a fine-tune starts from that decoder), and with
 * weights in it the scores change the words, the same way on tfjs (the reference) and onnxruntime.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import type { DecoderConfig } from "../model/config.ts";
import { classScores } from "../model/detector.ts";
import { encoderSpec, loadEncoder, type Head } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { DEFAULT_MODEL_DIR, loadDecoder, toParams } from "../model/index.ts";
import { onnxDecoder } from "../model/onnx-decoder.ts";
import { search } from "../model/search.ts";
import { ensembleDecoder, tfDecoder, type StepDecoder } from "../model/step-decoder.ts";
import { initBackend, tf } from "../model/tf.ts";
import { START } from "../model/vocab.ts";
import type { NamedArray } from "../model/weights.ts";
import { DATA } from "./support/studio.ts";

test("classScores: each class's highest heatmap cell, per image of the batch", () => {
  const [H, W, K] = [2, 3, 80];
  const data = new Float32Array(2 * H * W * K);
  data[(1 * W + 2) * K + 16] = 0.9; // image 0, class 16 (dog) at cell (1, 2)
  data[(0 * W + 1) * K + 16] = 0.4;
  data[H * W * K + 5 * K + 0] = 0.7; // image 1, class 0 (person)
  const head: Head = { data, shape: [2, H, W, K] };
  const [a, b] = [classScores(head, 0), classScores(head, 1)];
  assert.equal(a.length, K);
  assert.ok(Math.abs(a[16] - 0.9) < 1e-6 && a[0] === 0);
  assert.ok(Math.abs(b[0] - 0.7) < 1e-6 && b[16] === 0);
});

/** The shipped members with a class-score projection: zero, or small random numbers (seeded). */
function withTags(members: Record<string, NamedArray>[], config: DecoderConfig, scale: number) {
  const cols = 4 * config.hiddenDim + config.outDim;
  let s = 7;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 2 * scale;
  return members.map((m) => ({ ...m, tagIn: { shape: [80, cols], data: Float32Array.from({ length: 80 * cols }, rand) } }));
}

async function firstSteps(d: StepDecoder, feats: tf.Tensor3D, tags: Float32Array, steps = 4) {
  const run = await d.start(feats, 2, tags);
  const out: Float32Array[] = [];
  let prev = new Int32Array(2).fill(START);
  for (let t = 0; t < steps; t++) {
    const { logp } = await run.step(prev);
    out.push(Float32Array.from(logp));
    const V = logp.length / 2;
    const order = Array.from(logp.subarray(0, V).keys()).sort((i, j) => logp[j] - logp[i]);
    prev = Int32Array.from(order.slice(0, 2));
    run.reorder(Int32Array.of(1, 0));
  }
  run.dispose();
  return out;
}

const maxDiff = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((x, t) => Math.max(...x.map((v, i) => Math.abs(v - b[t][i])))));

test("a decoder with tags: a zero projection decodes as the decoder without it; a trained one changes the words, alike on tfjs and onnxruntime", { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, async () => {
  await initBackend();
  const { config: plain, members } = loadDecoder(DEFAULT_MODEL_DIR);
  const config: DecoderConfig = { ...plain, tags: 80 };
  const encoder = await loadEncoder(encoderSpec(config.encoder), "onnx", { heads: true });
  const files = readdirSync(path.join(DATA, "images")).sort().filter((_, i) => i % 900 === 0).slice(0, 3);
  const images = await Promise.all(files.map(async (f) => {
    const { feats, heads } = await encoder.encodeWithHeads([await toRgbSquare(path.join(DATA, "images", f), encoder.spec.inputSize)]);
    return { feats, tags: classScores(heads.keypoints) };
  }));
  assert.ok(images.some((im) => Math.max(...im.tags) > 0.3), "the head finds something in these photos");

  const plainRef = ensembleDecoder(members.map((m) => tfDecoder(toParams(plain, m))));
  const zero = withTags(members, config, 0), trained = withTags(members, config, 0.05);
  const zeroRef = ensembleDecoder(zero.map((m) => tfDecoder(toParams(config, m))));
  const trainedRef = ensembleDecoder(trained.map((m) => tfDecoder(toParams(config, m))));
  const trainedFast = await onnxDecoder(trained, config);
  for (const { feats, tags } of images) {
    const base = await firstSteps(plainRef, feats, tags);
    assert.ok(maxDiff(await firstSteps(zeroRef, feats, tags), base) < 1e-4, "zero projection: the plain decoder's numbers");
    const withScores = await firstSteps(trainedRef, feats, tags);
    assert.ok(maxDiff(withScores, base) > 0.01, "the class scores move the distribution");
    assert.ok(maxDiff(await firstSteps(trainedRef, feats, new Float32Array(80)), withScores) > 0.01, "other scores, other numbers");
    assert.ok(maxDiff(await firstSteps(trainedFast, feats, tags), withScores) < 2e-3, "onnxruntime agrees with tfjs");
  }
  // Decoded at the same time (one native call for several images), each image keeps its own scores.
  const caption = async (d: StepDecoder, im: (typeof images)[number]) => {
    const it = search(d, im.feats, { beam: 3, maxLen: config.maxLen, lengthPenalty: 1, blockRepeats: true, tags: im.tags });
    let r = await it.next();
    while (!r.done) r = await it.next();
    return r.value.ids.join(" ");
  };
  const alone: string[] = [];
  for (const im of images) alone.push(await caption(trainedRef, im));
  assert.deepEqual(await Promise.all(images.map((im) => caption(trainedFast, im))), alone);
  // A decoder with tags refuses to start without them, rather than decode as something else.
  await assert.rejects(() => trainedFast.start(images[0].feats, 1), /reads 80 class scores per image, got none/);
  await assert.rejects(() => trainedRef.start(images[0].feats, 1), /reads 80 class scores per image, got none/);
  await trainedFast.release();
  tf.dispose(images.map((im) => im.feats));
  encoder.dispose();
});
