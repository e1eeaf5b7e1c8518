/**
 * The object detector (CenterNet's own head, model/detector.ts): its decoding against the graph's
 * own `tower_0/detections`, onnxruntime against tfjs, labels on coco-dev photos whose five human
 * captions all name one object, and the words that point at the detections.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { decodeDetections } from "../model/detector.ts";
import { centernetGraph, loadEncoder, type Head } from "../model/encoder.ts";
import { calibratedPrecision, countDetections } from "../model/detector-calibration.ts";
import { GROUNDING_DEFAULTS, groundingPlan, linkWords, wordClasses } from "../model/grounding.ts";
import { toRgbSquare } from "../model/image.ts";
import { namedObjects } from "../model/objects.ts";
import { fixArticles } from "../model/text.ts";
import { initBackend, tf } from "../model/tf.ts";
import { Vocabulary } from "../model/vocab.ts";
import { COCO } from "./support/studio.ts";

const skip = !existsSync(COCO) && `no coco-dev at ${COCO}`;
const photo = (name: string) => path.join(COCO, "images", `COCO_val2014_${name}.jpg`);
// Found by running the detector over coco-dev: each photo's five references all name this object.
const OBVIOUS: [string, string][] = [
  ["000000009478", "giraffe"], ["000000006450", "zebra"], ["000000001584", "bus"], ["000000012959", "clock"],
  ["000000015746", "fire hydrant"], ["000000012576", "pizza"], ["000000011390", "teddy bear"], ["000000015497", "cat"],
];

test("decoding the head's outputs reproduces the graph's own detections", { skip }, async () => {
  await initBackend();
  const artifacts = await centernetGraph().read();
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  // At 512 px, the size the graph was exported for, its own decoding runs too.
  const x = tf.tensor4d(Float32Array.from(await toRgbSquare(photo("000000009478"), 512)), [1, 512, 512, 3]);
  const [det, kp, wh] = model.execute(x, ["tower_0/detections", "tower_0/keypoints", "tower_0/wh"]) as tf.Tensor[];
  const head = (t: tf.Tensor): Head => ({ data: t.dataSync() as Float32Array, shape: t.shape as Head["shape"] });
  const theirs = (det.arraySync() as number[][][])[0].slice(0, 10);
  const ours = decodeDetections(head(kp), head(wh), 512, { minScore: 0, maxObjects: 10, iou: 2 });
  assert.equal(ours.length, 10);
  ours.forEach((o, i) => {
    const [x1, y1, x2, y2, score] = theirs[i];
    assert.ok(Math.abs(o.score - score) < 1e-5, `score ${i}`);
    // Ours are fractions of the photo, clamped to it; the graph's are pixels.
    const want = [x1, y1, x2, y2].map((v) => Math.min(1, Math.max(0, v / 512)));
    const got = [o.box[0], o.box[1], o.box[0] + o.box[2], o.box[1] + o.box[3]];
    got.forEach((g, k) => assert.ok(Math.abs(g - want[k]) < 1e-4, `box ${i}: ${got} vs ${want}`));
  });
  tf.dispose([x, det, kp, wh]);
  model.dispose();
});

test("the detector finds the object all five captions name, on both runtimes, at 256 px", { skip }, async () => {
  const spec = { name: "centernet-256", inputSize: 256, graphs: [centernetGraph()] };
  const [ref, fast] = [await loadEncoder(spec, "tfjs", { heads: true }), await loadEncoder(spec, "onnx", { heads: true })];
  assert.equal(fast.runtime, "onnx");
  for (const [id, label] of OBVIOUS) {
    const px = await toRgbSquare(photo(id), 256);
    const [a, b] = [await ref.encodeWithHeads([px]), await fast.encodeWithHeads([px])];
    assert.deepEqual(b.heads.keypoints.shape, [1, 64, 64, 80]);
    let diff = 0;
    for (const name of ["keypoints", "wh"]) {
      const [x, y] = [a.heads[name].data, b.heads[name].data];
      // Relative above 1: the box sides are in pixels (up to ~200).
      for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(x[i])));
    }
    assert.ok(diff < 1e-3, `${id}: onnxruntime and tfjs heads differ by ${diff}`);
    const top = decodeDetections(b.heads.keypoints, b.heads.wh, 256, { minScore: 0.3, maxObjects: 5, iou: 0.5 });
    assert.equal(top[0]?.label, label, `${id}: ${top.map((o) => `${o.label} ${o.score.toFixed(2)}`).join(", ")}`);
    for (const o of top) for (const v of o.box) assert.ok(v >= 0 && v <= 1, "boxes are fractions of the photo");
    tf.dispose([a.feats, b.feats]);
  }
  ref.dispose();
  fast.dispose();
});

test("caption words point at the detection they name: plurals, aliases, people and two-word names", () => {
  const objects = [
    { label: "person", score: 0.9, box: [0, 0, 0.5, 1] as [number, number, number, number] },
    { label: "dining table", score: 0.6, box: [0, 0.5, 1, 0.5] as [number, number, number, number] },
    { label: "hot dog", score: 0.5, box: [0.4, 0.5, 0.2, 0.1] as [number, number, number, number] },
    { label: "dog", score: 0.4, box: [0.6, 0.6, 0.3, 0.3] as [number, number, number, number] },
  ];
  const words = "a man eats two hot dogs at a table beside his dogs and a giraffe".split(" ");
  assert.deepEqual(linkWords(words, objects), [undefined, 0, undefined, undefined, 2, 2, undefined, undefined, 1, undefined, undefined, 3, undefined, undefined, undefined]);
  // The metric's reading of the same words agrees: a hot dog is not a dog.
  assert.deepEqual([...namedObjects(words)].sort(), ["dog", "giraffe", "hot dog", "table"]);
});

test("articles agree with the word after them", () => {
  assert.deepEqual(fixArticles("a airplane and an bus near a umbrella and a unicycle and an hour".split(" ")).join(" "), "an airplane and a bus near an umbrella and a unicycle and an hour");
});

test("calibration: detections are counted against the references; grounding leaves out kinds seldom right on the training photos", () => {
  const dog = (score: number) => ({ label: "dog", score, box: [0, 0, 1, 1] as [number, number, number, number] });
  const horse = (score: number) => ({ label: "horse", score, box: [0, 0, 1, 1] as [number, number, number, number] });
  const refs = (c: string) => Array.from({ length: 5 }, () => c.split(" "));
  // Ten wet dogs that the head also calls "horse" (nobody says horse), ten dogs, one horse named by only one reference.
  const photos = [
    ...Array.from({ length: 10 }, () => ({ detections: [horse(0.4), horse(0.2), dog(0.3)], references: refs("a dog swims") })),
    ...Array.from({ length: 10 }, () => ({ detections: [dog(0.6)], references: refs("two dogs run") })),
    { detections: [horse(0.8), { ...horse(0.9), label: "person" }], references: [["a", "horse"], ...refs("an animal").slice(1)] },
  ];
  const cal = countDetections(photos);
  assert.equal(cal.photos, 21);
  assert.deepEqual(cal.classes.horse, { detected: [0, 0, 10, 0, 1], named: [0, 0, 0, 0, 0] }, "once per photo, at its best score; one reference is not enough");
  assert.deepEqual(cal.classes.dog, { detected: [0, 10, 0, 10, 0], named: [0, 10, 0, 10, 0] });
  assert.deepEqual(cal.all, { detected: [0, 10, 10, 10, 1], named: [0, 10, 0, 10, 0] });
  assert.equal(cal.classes.person, undefined, "people are never put into a caption from a detection: not counted");
  assert.equal(calibratedPrecision(cal, "horse", 0.4, 0), 0);
  assert.ok(Math.abs(calibratedPrecision(cal, "dog", 0.3, 10) - (10 + 10 * 1) / (10 + 10)) < 1e-9, "smoothed toward all classes at that score");
  assert.equal(calibratedPrecision(cal, "giraffe", 0.4, 10), Infinity, "never seen: no evidence either way");
  assert.ok(Number.isNaN(calibratedPrecision(cal, "dog", 0.1, 10)));
  assert.equal(calibratedPrecision(cal, "horse", 0.4, 0, 10), 0, "ten photos at that score are enough evidence at 10");
  assert.equal(calibratedPrecision(cal, "horse", 0.4, 0, 11), Infinity, "...not at 11: the plain rule");
  assert.equal(calibratedPrecision(cal, "horse", 0.8, 0, 2), Infinity, "one photo in that bin is too little at 2");

  const vocab = new Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "horse", "giraffe"]);
  const classes = wordClasses(vocab);
  const plan = (d: typeof photos[number]["detections"], calibration: typeof cal | null, minDetections = 0) =>
    groundingPlan(d, vocab, classes, new Set(), { ...GROUNDING_DEFAULTS, minPrecision: 0.2, precisionPrior: 2, minDetections }, calibration).constraints.map((c) => c.label);
  assert.deepEqual(plan([horse(0.4)], null), ["horse"], "without a calibration the score alone decides");
  assert.deepEqual(plan([horse(0.5), dog(0.4), { ...horse(0.3), label: "giraffe" }], null), ["horse", "dog"], "the two most confident names are required (GROUNDING_DEFAULTS.constraints)");
  assert.deepEqual(plan([horse(0.4)], cal), [], "a kind of detection that was never right is left out");
  assert.deepEqual(plan([horse(0.4), dog(0.3)], cal), ["dog"]);
  assert.deepEqual(plan([{ ...horse(0.4), label: "giraffe" }], cal), ["giraffe"], "a class the training photos never showed keeps the plain rule");
  assert.deepEqual(plan([horse(0.4), dog(0.3)], cal, 11), ["horse", "dog"], "so does one they showed too seldom at that score (minDetections)");
});
