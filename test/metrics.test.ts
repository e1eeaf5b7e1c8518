import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readCoco } from "../notebooks-port/lib/coco.ts";
import { flickr8kDir, readFlickr8k } from "../notebooks-port/lib/flickr8k.ts";
import { bleu, ciderD, humanAgreement, objectRecall, rougeL, scoreCaptions } from "../notebooks-port/lib/metrics.ts";
import { tokenize } from "../model/text.ts";
import { COCO } from "./support/studio.ts";

const w = (s: string) => s.split(" ");
const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected} ± ${tol}`);

test("identical candidate and reference: BLEU 1, ROUGE-L 1", () => {
  const cand = [w("a dog runs on the grass")];
  const refs = [[w("a dog runs on the grass")]];
  for (const b of bleu(cand, refs)) close(b, 1, 1e-8, "BLEU");
  close(rougeL(cand, refs), 1, 1e-12, "ROUGE-L");
});

test("a candidate sharing no words scores 0", () => {
  const cand = [w("a dog runs"), w("red car")];
  const refs = [[w("two cats sleep")], [w("blue boat here")]];
  for (const b of bleu(cand, refs)) close(b, 0, 1e-6, "BLEU");
  assert.equal(rougeL(cand, refs), 0);
  assert.equal(ciderD(cand, refs), 0);
});

test("brevity penalty: a short exact prefix gets exp(1 - r/c)", () => {
  // Every n-gram of the candidate matches, so precision is 1 at every order and only the penalty remains.
  const scores = bleu([w("the cat sat on")], [[w("the cat sat on the mat")]]);
  for (const b of scores) close(b, Math.exp(1 - 6 / 4), 1e-8, "BLEU");
});

test("closest reference length breaks ties towards the shorter reference", () => {
  // Lengths 3 and 5 are both 1 away from 4; the shorter one means no penalty (the longer would give exp(-0.25)).
  const [b1] = bleu([w("a b c d")], [[w("a b c"), w("a b c d e")]]);
  close(b1, 1, 1e-8, "BLEU-1");
});

test("ROUGE-L: LCS F-measure with beta 1.2", () => {
  // LCS("a b c d", "a c e") = 2: precision 2/4, recall 2/3.
  const p = 0.5, r = 2 / 3, b2 = 1.44;
  close(rougeL([w("a b c d")], [[w("a c e")]]), ((1 + b2) * p * r) / (r + b2 * p), 1e-12, "ROUGE-L");
});

test("CIDEr-D: exact matches score 10 per n-gram order present", () => {
  // Two images with disjoint words: every n-gram has idf log(2), the clipped cosine is 1 at each order
  // that exists. A 3-word caption has no 4-grams, so it gets 3 of 4 orders: 7.5.
  const cands = [w("a b c d"), w("e f g")];
  close(ciderD(cands, cands.map((c) => [c])), (10 + 7.5) / 2, 1e-9, "CIDEr-D");
});

// Published-style sanity figures on the Flickr8k test split (reference values from pycocoevalcap),
// read by the pipeline's own reader (notebooks-port/lib/flickr8k.ts), as evaluate does.
const dataDir = flickr8kDir();
/** What the pipeline's reader makes of a data set, or why it cannot read it here (the test then skips with that reason). */
function attempt<T>(read: () => T): T | string {
  try {
    return read();
  } catch (e) {
    return (e as Error).message;
  }
}
const flickr = attempt(() => readFlickr8k(dataDir));

/** Tokenised captions of each test image, in the token file's order (#0..#4). */
function testSplitCaptions(): string[][][] {
  const ds = flickr as Exclude<typeof flickr, string>;
  assert.equal(ds.splits.test.length, 1000);
  return ds.splits.test.map((img) => {
    const caps = ds.captions.get(img);
    assert.ok(caps && caps.length === 5, `${img} should have 5 captions`);
    return caps.map(tokenize);
  });
}

test("Flickr8k test split sanity figures", { skip: typeof flickr === "string" && `no Flickr8k at ${dataDir} (set FLICKR8K_DIR): ${flickr}` }, () => {
  const caps = testSplitCaptions();

  // Human caption #0 against the other four.
  const human = scoreCaptions(caps.map((c) => c[0]), caps.map((c) => c.slice(1)));
  close(human.bleu4, 0.2095, 0.005, "human BLEU-4");
  close(human.cider, 0.789, 0.005, "human CIDEr-D");

  // One generic caption for every image, against all five references.
  const generic = tokenize("a dog is running through the grass .");
  const constant = scoreCaptions(caps.map(() => generic), caps);
  close(constant.bleu4, 0.041, 0.005, "constant BLEU-4");
  close(constant.cider, 0.094, 0.005, "constant CIDEr-D");
});

// Object recall, on hand-made captions whose answer is counted by hand in the comments.
const t = (caps: string[]) => caps.map(tokenize);
const OBJ_REFS = [
  // dog: refs 1, 2 ("dogs"), 4 = 3 votes, counted; couch: 1 ("sofa"), 2, 3 = 3, counted; a puppy is no dog;
  // "hot dog" is not a dog and has 1 vote; cat 1. Pairs: dog, couch.
  t(["A dog on a sofa.", "Two dogs on a couch.", "A puppy on the couch.", "A dog sleeps.", "A cat near a hot dog."]),
  // hot dog: 1, 2 ("hotdog"), 3 ("hot dogs"), 4 = 4 votes; dog: only ref 4's "a dog". Pairs: hot dog.
  // (Reading "hot dog" as a dog would give dog 4 votes and a hit for the candidate below.)
  t(["A hot dog on a plate.", "A hotdog with mustard.", "Hot dogs and fries.", "A dog eats a hot dog.", "A plate of food."]),
  // horse: 3 votes, counted; bicycle: refs 4 and 5 ("bike") = 2 votes, not counted; person: ref 2 only.
  t(["A man rides a horse.", "A person on a horse.", "A horse in a field.", "A man and a bicycle.", "A bike near a man."]),
  // Only 4 references: still "at least 3", and sheep (irregular plural) has 3. Pairs: sheep.
  t(["Three sheep.", "A sheep on a hill.", "Sheep grazing.", "A hill."]),
];
const OBJ_CANDS = t(["a dog on a sofa", "a dog eating", "a man rides a bike past a horse", "a cow on a hill"]);

test("object recall: objects at least 3 references name, micro-averaged, aliases and plurals", () => {
  // Hits: dog, couch (image 1); none (image 2: names a dog, not the hot dog); horse (image 3; the
  // bike is not counted, only 2 refs named it); none (image 4). 3 of 5 pairs.
  assert.deepEqual(objectRecall(OBJ_CANDS, OBJ_REFS), { recall: 3 / 5, pairs: 5, hits: 3 });
  const s = scoreCaptions(OBJ_CANDS, OBJ_REFS);
  assert.equal(s.objectRecall, 3 / 5);
  assert.equal(s.objectRefs, 5);
  // Naming every pair, some in other words than the candidate above ("couch" for "sofa", "hotdog").
  const better = t(["dogs on a couch", "a hotdog", "a horse", "two sheep"]);
  assert.deepEqual(objectRecall(better, OBJ_REFS), { recall: 1, pairs: 5, hits: 5 });
  // Image by image: the micro-average is not the mean of per-image recalls (1, 0, 1, 0 -> 0.5).
  assert.equal(objectRecall([OBJ_CANDS[0]], [OBJ_REFS[0]]).recall, 1);
  assert.equal(objectRecall([OBJ_CANDS[1]], [OBJ_REFS[1]]).recall, 0);
});

test("object recall: the 3-reference threshold, and no pairs means NaN", () => {
  // Two references naming a bicycle are not enough; three are.
  const two = [t(["a bike", "a bicycle", "a road", "a tree", "a street"])];
  assert.deepEqual(objectRecall(t(["a bicycle"]), two), { recall: NaN, pairs: 0, hits: 0 });
  const three = [t(["a bike", "a bicycle", "bikes on a road", "a tree", "a street"])];
  assert.deepEqual(objectRecall(t(["a bicycle"]), three), { recall: 1, pairs: 1, hits: 1 });
  // A teddy bear is not a bear.
  const teddy = [t(["a teddy bear", "a teddy bear on a bed", "teddy bears", "a toy", "a bed"])];
  assert.deepEqual(objectRecall(t(["a bear on a bed"]), teddy), { recall: 0, pairs: 1, hits: 0 });
  // One reference naming an object twice is one vote.
  assert.equal(objectRecall(t(["a cat"]), [t(["a cat and a cat", "a cat", "a dog"])]).pairs, 0);
});

test("human agreement: caption 0 against the others", () => {
  const refs = [t(["a dog runs", "a dog runs", "a dog runs fast"]), t(["a cat", "a red car"])];
  const h = humanAgreement(refs);
  const direct = scoreCaptions([refs[0][0], refs[1][0]], [refs[0].slice(1), refs[1].slice(1)]);
  assert.equal(h.images, 2);
  assert.equal(h.bleu4, direct.bleu4);
  assert.equal(h.cider, direct.cider);
  // An image with one caption has nothing to be scored against and is left out.
  assert.equal(humanAgreement([...refs, t(["a lone caption"])]).images, 2);
});

// coco-dev's README gives pycocoevalcap's human agreement (caption 0 against the other captions).
const coco = attempt(() => readCoco(join(COCO, "captions_coco-dev.json"), { devFraction: 0, testFraction: 0 }));

test("coco-dev human agreement matches pycocoevalcap's figures", { skip: typeof coco === "string" && `no coco-dev at ${COCO} (set COCO_DEV_DIR): ${coco}` }, () => {
  // Read as evaluate reads it: every photo, in the caption file's order.
  const set = coco as Exclude<typeof coco, string>;
  const h = humanAgreement(set.splits.train.map((f) => set.captions.get(f)!.map(tokenize)));
  assert.equal(h.images, 408);
  close(h.bleu4, 0.207, 0.0015, "human BLEU-4");
  close(h.cider, 0.967, 0.0015, "human CIDEr-D");
  // People agree on most of what is in the picture, far from perfectly.
  assert.ok(h.objectRefs > 250 && h.objectRecall > 0.7 && h.objectRecall < 0.85, `human object recall ${h.objectRecall} over ${h.objectRefs} pairs`);
});
