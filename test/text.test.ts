import assert from "node:assert/strict";
import { test } from "node:test";
import { detokenize, tokenize } from "../model/text.ts";
import { END, PAD, START, UNK, Vocabulary } from "../model/vocab.ts";

test("tokenize lower-cases, drops punctuation, keeps hyphenated words and splits clitics", () => {
  assert.deepEqual(tokenize("A dog's ball, (red)."), ["a", "dog", "'s", "ball", "red"]);
  assert.deepEqual(tokenize("  The boy in a T-shirt jumps!  "), ["the", "boy", "in", "a", "t-shirt", "jumps"]);
  assert.deepEqual(tokenize('He said "don\'t" ... ok ; fine -- yes'), ["he", "said", "do", "n't", "ok", "fine", "yes"]);
  assert.deepEqual(tokenize(""), []);
  assert.deepEqual(tokenize(" . , ! "), []);
});

test("detokenize re-attaches clitics", () => {
  assert.equal(detokenize(["a", "dog", "'s", "ball"]), "a dog's ball");
  assert.equal(detokenize(["they", "do", "n't", "run"]), "they don't run");
});

test("vocabulary keeps words seen minCount times, most frequent first, with reserved ids", () => {
  const v = Vocabulary.build([["a", "dog", "runs"], ["a", "dog"], ["a", "cat"]], 2);
  assert.deepEqual(v.words, ["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]);
  assert.equal(v.id("a"), 4);
  assert.equal(v.id("cat"), UNK);
  assert.deepEqual(v.encode("A cat, a DOG."), [4, UNK, 4, 5]);
  assert.deepEqual(v.decode([START, 4, UNK, 5, END, 4]), ["a", "dog"]);
  assert.deepEqual([PAD, START, END, UNK], [0, 1, 2, 3]);
  assert.throws(() => new Vocabulary(["a", "b"]), /id 0 must be <pad>/);
});
