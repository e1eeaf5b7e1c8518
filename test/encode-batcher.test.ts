/**
 * model/encode-batcher.ts: photos asked for at the same moment share one encoder pass, and each
 * gets what it would have got alone.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { encodeBatcher, type Encoded } from "../model/encode-batcher.ts";
import { encoderSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { loadCaptioner, loadDecoder, DEFAULT_MODEL_DIR } from "../model/index.ts";
import { tf } from "../model/tf.ts";
import { flickr8kDir } from "../notebooks-port/lib/flickr8k.ts";

const DATA = flickr8kDir();
const skip = !existsSync(DATA) && `no Flickr8k at ${DATA}`;
const photos = () => readdirSync(path.join(DATA, "images")).sort().filter((_, i) => i % 700 === 0).slice(0, 5).map((f) => path.join(DATA, "images", f));

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test("photos asked for together share encoder passes (at most the batch size each) and get their own features and heads", { skip }, async () => {
  const { config } = loadDecoder(DEFAULT_MODEL_DIR);
  const encoder = await loadEncoder(encoderSpec(config.encoder), "onnx", { heads: true });
  try {
    const pixels = await Promise.all(photos().map((f) => toRgbSquare(f, encoder.spec.inputSize)));
    const alone: { feats: Float32Array; shape: number[]; heads: Encoded["heads"] }[] = [];
    for (const px of pixels) {
      const { feats, heads } = await encoder.encodeWithHeads([px]);
      alone.push({ feats: (await feats.data()) as Float32Array, shape: feats.shape, heads });
      feats.dispose();
    }
    const same = async (r: Encoded, i: number, what: string) => {
      assert.deepEqual(r.feats.shape, alone[i].shape);
      assert.ok(maxDiff((await r.feats.data()) as Float32Array, alone[i].feats) < 1e-4, `${what}: features`);
      for (const name of ["keypoints", "wh"]) {
        assert.deepEqual(r.heads[name].shape, alone[i].heads[name].shape, `${what}: ${name}`);
        assert.ok(maxDiff(r.heads[name].data, alone[i].heads[name].data) < 1e-4, `${what}: ${name}`);
      }
      r.feats.dispose();
    };
    const tensors = tf.memory().numTensors;
    const batcher = encodeBatcher(encoder, 3);
    const together = await Promise.all(pixels.map((px) => batcher.encode(px)));
    assert.deepEqual(batcher.counts(), { photos: 5, calls: 2 }, "5 photos in passes of 3 and 2");
    for (const [i, r] of together.entries()) await same(r, i, `photo ${i}`);
    assert.equal(tf.memory().numTensors, tensors, "the batch's own tensors are freed");

    // A bad photo fails alone: its pass is run again photo by photo, and its neighbour gets its features.
    const bad = batcher.encode(new Uint8Array(10));
    const good = batcher.encode(pixels[0]);
    await assert.rejects(bad, /encoder expects 256x256x3 pixels/);
    await same(await good, 0, "the bad photo's neighbour");

    // A photo whose caller gave up while it waited takes no place in the pass.
    const before = batcher.counts();
    const gone = new AbortController();
    const dropped = batcher.encode(pixels[1], gone.signal);
    const kept = batcher.encode(pixels[2]);
    gone.abort();
    await assert.rejects(dropped, { name: "AbortError" });
    await same(await kept, 2, "the photo after an aborted one");
    assert.deepEqual(batcher.counts(), { photos: before.photos + 1, calls: before.calls + 1 });
    assert.equal(tf.memory().numTensors, tensors);
    assert.throws(() => encodeBatcher(encoder, 0), /positive integer/);
  } finally {
    encoder.dispose();
  }
});

// A captioner that may batch its photos (encoderBatch 8, as the CLI's) against the default, which encodes
// each alone. Whether photos share a pass here depends on when their decodes end; the test above is
// the one that makes them.
test("concurrent captions with encoderBatch 8 come out as captioned one at a time; a bad encoderBatch is refused before loading", { skip }, async () => {
  await assert.rejects(loadCaptioner({ encoderBatch: 0 }), /encoderBatch must be a positive integer/);
  const captioner = await loadCaptioner({ encoderBatch: 8 });
  const alone = await loadCaptioner();
  try {
    const files = photos();
    const one: string[] = [];
    for (const f of files) one.push((await alone.caption(f, { beam: 1 })).caption);
    const together = await Promise.all(files.map((f) => captioner.caption(f, { beam: 1 })));
    assert.deepEqual(together.map((r) => r.caption), one);
  } finally {
    captioner.dispose();
    alone.dispose();
  }
});
