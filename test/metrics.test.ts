import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bleu, ciderD, rougeL, scoreCaptions } from "../notebooks-port/lib/metrics.ts";
import { tokenize } from "../model/text.ts";

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

// Published-style sanity figures on the Flickr8k test split (reference values from pycocoevalcap).
const dataDir = process.env.FLICKR8K_DIR ?? fileURLToPath(new URL("../../shared/data/flickr8k/", import.meta.url));
const haveData = existsSync(join(dataDir, "Flickr8k.token.txt")) && existsSync(join(dataDir, "splits", "Flickr_8k.testImages.txt"));

/** Tokenised captions of each test image, in caption-number order (#0..#4). */
function testSplitCaptions(): string[][][] {
  const byImage = new Map<string, string[][]>();
  for (const line of readFileSync(join(dataDir, "Flickr8k.token.txt"), "utf8").split(/\r?\n/)) {
    const m = /^(.+?)#(\d+)\t(.*)$/.exec(line);
    if (!m) continue;
    const caps = byImage.get(m[1]) ?? [];
    caps[Number(m[2])] = tokenize(m[3]);
    byImage.set(m[1], caps);
  }
  const images = readFileSync(join(dataDir, "splits", "Flickr_8k.testImages.txt"), "utf8").split(/\s+/).filter(Boolean);
  assert.equal(images.length, 1000);
  return images.map((img) => {
    const caps = byImage.get(img);
    assert.ok(caps && caps.length === 5, `${img} should have 5 captions`);
    return caps;
  });
}

test("Flickr8k test split sanity figures", { skip: haveData ? false : `no Flickr8k data at ${dataDir} (set FLICKR8K_DIR)` }, () => {
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
