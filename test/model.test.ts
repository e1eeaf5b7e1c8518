/**
 * The shipped model (model/weights) on 20 Flickr8k test photos, through the public API:
 * captions are non-empty, varied, in the vocabulary, mostly share a content word with the
 * references, stream step by step with attention grids summing to 1, and leak no tensors.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { DEFAULT_MODEL_DIR, ImageError, loadCaptioner, loadDecoder, PrefixError, type Captioner } from "../model/index.ts";
import { detokenize, tokenize } from "../model/text.ts";
import { tf } from "../model/tf.ts";
import { loadArrays, saveArrays } from "../model/weights.ts";
import { readFlickr8k, type Flickr8k } from "../notebooks-port/lib/flickr8k.ts";
import { DATA } from "./support/studio.ts";

const hasData = existsSync(DATA);
const STOP = new Set("a an the in on of with and is are at to his her its their while for by from into near up down over through".split(" "));

let captioner: Captioner;
before(async () => {
  captioner = await loadCaptioner();
});
after(() => captioner?.dispose());

let flickr: Flickr8k | undefined;
/** Every 50th Flickr8k test photo (a spread of scenes, not just the first few), with its tokenised reference captions. */
function testImages(n: number): { file: string; refs: string[][] }[] {
  flickr ??= readFlickr8k(DATA); // the pipeline's own reader
  const { imageDir, captions, splits } = flickr;
  return Array.from({ length: n }, (_, i) => splits.test[i * 50]).map((f) => ({ file: path.join(imageDir, f), refs: captions.get(f)!.map(tokenize) }));
}

test("captions 20 test photos sensibly", { skip: !hasData && `no Flickr8k at ${DATA}` }, async () => {
  const imgs = testImages(20);
  const vocab = new Set(captioner.words);
  const captions: string[] = [];
  let sharing = 0;
  for (const { file, refs } of imgs) {
    const r = await captioner.caption(file, { beam: 3 });
    assert.ok(r.words.length >= 3, `non-empty caption for ${file}: "${r.caption}"`);
    for (const w of r.words) assert.ok(vocab.has(w.word) && !w.word.startsWith("<"), `"${w.word}" is a vocabulary word`);
    for (const w of r.words) assert.ok(Math.abs(w.alpha.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    captions.push(r.caption);
    const content = new Set(r.words.map((w) => w.word).filter((w) => !STOP.has(w)));
    if (refs.some((ref) => ref.some((w) => content.has(w)))) sharing++;
  }
  assert.ok(new Set(captions).size >= 12, `varied captions: ${new Set(captions).size} distinct of 20:\n${captions.join("\n")}`);
  assert.ok(sharing >= 15, `most captions share a content word with a reference: ${sharing}/20`);
});

test("steps() streams words with h*w attention grids and returns the same caption", { skip: !hasData }, async () => {
  const [{ file }] = testImages(1);
  const bytes = readFileSync(file);
  // Greedy without objects streams one word after another; grounded decoding (objects on, even at
  // beam 1) and beam search may rewrite the caption while it streams.
  for (const { beam, objects } of [{ beam: 1, objects: false }, { beam: 1, objects: true }, { beam: 3, objects: true }]) {
    const seen: { index: number; hypothesis: string[]; text: string }[] = [];
    const it = captioner.steps(bytes, { beam, objects });
    let r = await it.next();
    while (!r.done) {
      const s = r.value;
      assert.equal(s.alpha.length, captioner.grid[0] * captioner.grid[1]);
      assert.ok(Math.abs(s.alpha.reduce((a, b) => a + b, 0) - 1) < 1e-4);
      assert.ok(s.prob > 0 && s.prob <= 1);
      assert.equal(s.hypothesis.at(-1), s.word);
      assert.equal(s.index, s.hypothesis.length - 1, "a step's index is its word's place in the hypothesis");
      seen.push({ index: s.index, hypothesis: s.hypothesis, text: s.text });
      r = await it.next();
    }
    assert.ok(seen.length >= 3);
    if (beam === 1 && !objects) seen.forEach((s, i) => assert.equal(s.index, i, "greedy steps arrive in order"));
    assert.deepEqual(seen.at(-1)!.hypothesis, r.value.words.map((w) => w.word), "the last step is the final caption");
    assert.equal(seen.at(-1)!.text, r.value.caption, "and its text is written as the caption is");
    for (const s of seen) assert.equal(s.text, detokenize(s.hypothesis), "every step's text is its words");
    const direct = await captioner.caption(bytes, { beam, objects });
    assert.equal(direct.caption, r.value.caption);
  }
});

test("no tensors leak after full, cancelled and failed captions", { skip: !hasData }, async () => {
  const [{ file }] = testImages(1);
  const before = captioner.memory().tensors;
  assert.deepEqual(captioner.memory(), { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes }, "memory() is tfjs's count");
  await captioner.caption(file, { beam: 3 });
  const ac = new AbortController();
  for await (const s of captioner.steps(file, { beam: 3, signal: ac.signal })) if (s.index === 1) break; // consumer stops early
  const ac2 = new AbortController();
  const it = captioner.steps(file, { beam: 2, signal: ac2.signal });
  await it.next();
  ac2.abort(new Error("gone"));
  await assert.rejects(it.next(), /gone/);
  await assert.rejects(captioner.caption(Buffer.from("not an image")), ImageError);
  await assert.rejects(captioner.caption(new Uint8Array(0)), /empty/);
  assert.equal(captioner.memory().tensors, before);
});

test("by default both the encoder and the decoder run on onnxruntime (the fast path)", () => {
  assert.deepEqual(captioner.runtime, { encoder: "onnx", decoder: "onnx" });
});

test("raw pixels and options are validated", async () => {
  const r = await captioner.caption({ data: new Uint8Array(64 * 48 * 3).fill(90), width: 64, height: 48, channels: 3 }, { beam: 1, maxLen: 4 });
  assert.ok(r.words.length <= 4);
  await assert.rejects(captioner.caption({ data: new Uint8Array(10), width: 64, height: 48, channels: 3 }), ImageError);
  await assert.rejects(captioner.caption({ data: new Uint8Array(12), width: 2, height: 2, channels: 3 }, { beam: 0 }), RangeError);
  await assert.rejects(captioner.caption({ data: new Uint8Array(12), width: 2, height: 2, channels: 3 }, { maxLen: 500 }), RangeError);
});

test("alternatives, prefixes and the caption's log-probability through the public API", { skip: !hasData }, async () => {
  const [{ file }] = testImages(1);
  const r = await captioner.caption(file, { beam: 1, objects: false });
  for (const w of r.words) {
    assert.equal(w.top!.length, 5);
    // Greedy without grounding takes the likeliest word unless repeat blocking forbids it.
    assert.ok(w.top!.some((c) => c.word === w.word), `"${w.word}" is among its step's top 5`);
    assert.ok(Math.abs(w.top!.find((c) => c.word === w.word)!.prob - w.prob) < 1e-6);
  }
  const words = r.words.reduce((a, w) => a + Math.log(w.prob), 0);
  assert.ok(r.logProb < words && r.logProb > words - 10, "the log-probability adds the end's to the words'");
  assert.deepEqual(captioner.checkPrefix("A big Dog, (running)"), ["a", "big", "dog", "running"], "a prefix is read like a caption");
  assert.throws(() => captioner.checkPrefix(["a", "qwxyzzy"]), (e: Error) => e instanceof PrefixError && /"qwxyzzy" is not in the model's vocabulary/.test(e.message));
  assert.throws(() => captioner.checkPrefix("a dog", 1), PrefixError);
  await assert.rejects(captioner.caption(file, { prefix: ["<end>"] }), PrefixError);
  const forced = await captioner.caption(file, { beam: 3, prefix: ["two", "cats"] });
  assert.deepEqual(forced.words.slice(0, 2).map((w) => w.word), ["two", "cats"]);
  assert.ok(forced.words.length > 2);
  // details: false leaves the alternatives out (and changes nothing else).
  const plain = await captioner.caption(file, { beam: 1, objects: false, details: false });
  assert.equal(plain.caption, r.caption);
  assert.ok(plain.words.every((w) => w.top === undefined));
});

test("a model folder can hold an ensemble of decoders (config.members)", { skip: !hasData }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "caption-ensemble-"));
  try {
    const config = JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, "config.json"), "utf8"));
    const shipped: string[] = config.members ?? ["decoder"];
    copyFileSync(path.join(DEFAULT_MODEL_DIR, "vocab.json"), path.join(dir, "vocab.json"));
    for (const m of shipped) for (const ext of ["json", "bin"]) {
      copyFileSync(path.join(DEFAULT_MODEL_DIR, `${m}.${ext}`), path.join(dir, `${m}.${ext}`));
      copyFileSync(path.join(DEFAULT_MODEL_DIR, `${m}.${ext}`), path.join(dir, `${m}-twin.${ext}`));
    }
    // The object words' output columns are per member: the twins get their originals' (float32 here, exact).
    if (config.extraWords) {
      const extra = loadArrays(path.join(DEFAULT_MODEL_DIR, "extra-words"));
      for (const m of shipped) for (const k of ["logits", "logitsBias"]) extra[`${k}:${m}-twin`] = extra[`${k}:${m}`];
      saveArrays(path.join(dir, "extra-words"), extra, "float32");
    }
    for (const f of ["language-prior.json", "language-prior.bin", "detector-calibration.json"]) if (existsSync(path.join(DEFAULT_MODEL_DIR, f))) copyFileSync(path.join(DEFAULT_MODEL_DIR, f), path.join(dir, f));
    const writeMembers = (members: unknown) => writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...config, members }));
    // Every shipped decoder twice: the geometric mean is unchanged, so are the captions (on both
    // runtimes; tfjs computes in float32, so it is held to the float32 ONNX decoder's captions).
    writeMembers([...shipped, ...shipped.map((m) => `${m}-twin`)]);
    const exact = await loadCaptioner({ decoderWeights: "float32" });
    for (const runtime of ["onnx", "tfjs"] as const) {
      const twins = await loadCaptioner({ modelDir: dir, runtime });
      const reference = runtime === "onnx" ? captioner : exact;
      try {
        assert.equal(twins.runtime.decoder, runtime);
        const photo = testImages(1)[0].file;
        for (const beam of [1, 3]) assert.equal((await twins.caption(photo, { beam })).caption, (await reference.caption(photo, { beam })).caption);
      } finally {
        twins.dispose();
      }
    }
    exact.dispose();
    // Bad lists fail clearly.
    writeMembers(["decoder", "missing"]);
    assert.throws(() => loadDecoder(dir), /decoder weights not found at .*missing\.bin/);
    writeMembers(["../decoder"]);
    assert.throws(() => loadDecoder(dir), /members must be a list of weight-file names/);
    writeMembers([]);
    assert.throws(() => loadDecoder(dir), /members must be a list/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
