/**
 * model/encode-batcher.ts: photos asked for at the same moment share one encoder pass, and each
 * gets what it would have got alone.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { encodeBatcher } from "../model/encode-batcher.ts";
import { encoderSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { loadCaptioner, loadDecoder, DEFAULT_MODEL_DIR } from "../model/index.ts";
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
    const alone = [];
    for (const px of pixels) {
      const { feats, heads } = await encoder.encodeWithHeads([px]);
      alone.push({ feats: (await feats.data()) as Float32Array, shape: feats.shape, keypoints: heads.keypoints });
      feats.dispose();
    }
    const batcher = encodeBatcher(encoder, 3);
    const together = await Promise.all(pixels.map((px) => batcher.encode(px)));
    assert.deepEqual(batcher.counts(), { photos: 5, calls: 2 }, "5 photos in passes of 3 and 2");
    for (const [i, r] of together.entries()) {
      assert.deepEqual(r.feats.shape, alone[i].shape);
      assert.ok(maxDiff((await r.feats.data()) as Float32Array, alone[i].feats) < 1e-4, `photo ${i}: features`);
      assert.deepEqual(r.heads.keypoints.shape, alone[i].keypoints.shape);
      assert.ok(maxDiff(r.heads.keypoints.data, alone[i].keypoints.data) < 1e-4, `photo ${i}: detection heatmap`);
      r.feats.dispose();
    }
    // A bad photo fails its own pass's callers, with the encoder's error; the next pass works.
    const bad = batcher.encode(new Uint8Array(10));
    const good = batcher.encode(pixels[0]);
    await assert.rejects(bad, /encoder expects 256x256x3 pixels/);
    await assert.rejects(good, /encoder expects 256x256x3 pixels/);
    const after = await batcher.encode(pixels[1]);
    assert.ok(maxDiff((await after.feats.data()) as Float32Array, alone[1].feats) < 1e-4);
    after.feats.dispose();
    assert.throws(() => encodeBatcher(encoder, 0), /positive integer/);
  } finally {
    encoder.dispose();
  }
});

// A captioner that batches its photos (encoderBatch 8, as the CLI's) against the default, which encodes
// each alone: slicing a batch's features and heads back to their photos must not mix them up.
test("concurrent captions, whose photos the captioner encodes together, come out as captioned one at a time", { skip }, async () => {
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
