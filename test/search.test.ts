/**
 * Greedy and beam search on a tiny hand-built decoder whose next-word distribution depends only
 * on the previous word (a Markov chain), so the best caption is known in advance:
 *   <start> -> x 0.6 | y 0.4;   x -> x 0.3 | y 0.3 | <end> 0.4;   y -> <end> 0.95 | x 0.05
 * Greedy picks x then <end> (p = 0.24); beam search finds y <end> (p = 0.38).
 * Every search test runs on both decoder runtimes: tfjs (the reference) and onnxruntime.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DecoderConfig } from "../model/config.ts";
import { paramShapes, type Params } from "../model/decoder.ts";
import { toParams } from "../model/index.ts";
import { onnxDecoder } from "../model/onnx-decoder.ts";
import { greedyBatch } from "../model/batch-decode.ts";
import { search, type Hypothesis, type SearchOptions } from "../model/search.ts";
import { ensembleDecoder, tfDecoder, type StepDecoder } from "../model/step-decoder.ts";
import { initBackend, tf } from "../model/tf.ts";
import type { NamedArray } from "../model/weights.ts";

const X = 4, Y = 5, V = 6;
const cfg: DecoderConfig = { encoder: "none", grid: [2, 2], featureDim: 3, vocabSize: V, embedDim: V, hiddenDim: 4, attnDim: 4, outDim: V, maxLen: 6 };
const P: number[][] = [];
P[1] = [0, 0, 0, 0, 0.6, 0.4]; // after <start>
P[X] = [0, 0, 0.4, 0, 0.3, 0.3];
P[Y] = [0, 0, 0.95, 0, 0.05, 0];

function tinyWeights(chain = P): Record<string, NamedArray> {
  const s = 3, t = Math.tanh(s);
  const H = cfg.hiddenDim;
  const weights: Record<string, NamedArray> = {};
  for (const [name, shape] of Object.entries(paramShapes(cfg))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name === "embedding") for (let i = 0; i < V; i++) data[i * V + i] = 1;
    if (name === "wordIn") for (let i = 0; i < V; i++) data[i * (4 * H + V) + 4 * H + i] = s; // deep output sees tanh(s) * onehot(prev)
    if (name === "logits") for (const i of [1, X, Y]) for (let j = 0; j < V; j++) data[i * V + j] = Math.log(Math.max(chain[i][j], 1e-9)) / t;
    if (name === "attnFeat" || name === "attnScore") data.forEach((_, i) => (data[i] = Math.sin(i + 1)));
    weights[name] = { shape, data };
  }
  return weights;
}

const tinyModel = (chain = P): Params => toParams(cfg, tinyWeights(chain));

/** The tiny model on one runtime, and how to free it. */
async function tinyDecoder(runtime: "tfjs" | "onnx", chain = P): Promise<{ decoder: StepDecoder; free(): void }> {
  if (runtime === "onnx") {
    const d = await onnxDecoder([tinyWeights(chain)], cfg);
    return { decoder: d, free: () => void d.release() };
  }
  const params = tinyModel(chain);
  return { decoder: tfDecoder(params), free: () => tf.dispose(Object.values(params)) };
}

type Extra = Pick<SearchOptions, "blockRepeats" | "repeatable" | "bias" | "constraints" | "trustOwn" | "prefix" | "topK" | "beams">;

async function run(decoder: StepDecoder, beam: number, signal?: AbortSignal, extra: Extra = { blockRepeats: false }) {
  const feats = tf.randomUniform([1, 4, 3]) as tf.Tensor3D;
  const events: Hypothesis[] = [];
  const beams: Hypothesis[][] = [];
  const it = search(decoder, feats, { beam, maxLen: cfg.maxLen, lengthPenalty: 0, ...extra, signal });
  try {
    let r = await it.next();
    while (!r.done) {
      events.push(r.value.best);
      if (r.value.beams) beams.push(r.value.beams);
      r = await it.next();
    }
    return { final: r.value, events, beams };
  } finally {
    feats.dispose();
  }
}

for (const runtime of ["tfjs", "onnx"] as const) {
  test(`${runtime}: greedy follows the locally best word; beam search finds the best caption`, async () => {
    await initBackend();
    const { decoder, free } = await tinyDecoder(runtime);
    const before = tf.memory().numTensors;
    const greedy = await run(decoder, 1);
    assert.deepEqual(greedy.final.ids, [X]);
    assert.ok(Math.abs(Math.exp(greedy.final.logp) - 0.6 * 0.4) < 1e-3);
    const beam = await run(decoder, 2);
    assert.deepEqual(beam.final.ids, [Y]);
    assert.ok(Math.abs(Math.exp(beam.final.logp) - 0.4 * 0.95) < 1e-3);
    assert.ok(Math.abs(beam.final.probs[0] - 0.4) < 1e-3, "per-word probability of y");
    // Every yielded step carries an attention grid over the 4 regions that sums to 1.
    for (const e of [...greedy.events, ...beam.events]) for (const a of e.alphas) {
      assert.equal(a.length, 4);
      assert.ok(Math.abs(a.reduce((s, v) => s + v, 0) - 1) < 1e-5);
    }
    // The live best hypothesis is reported whenever it changes, never twice in a row, before the final answer.
    assert.ok(beam.events.length >= 2);
    assert.equal(greedy.events.length, greedy.final.ids.length, "greedy yields once per word");
    for (const { events } of [greedy, beam]) for (let i = 1; i < events.length; i++) assert.notDeepEqual(events[i].ids, events[i - 1].ids);
    assert.deepEqual(beam.events.at(-1)!.ids, beam.final.ids);
    assert.equal(tf.memory().numTensors, before, "search frees every tensor it made");
    free();
  });

  test(`${runtime}: an aborted search stops and frees its tensors`, async () => {
    const { decoder, free } = await tinyDecoder(runtime);
    const before = tf.memory().numTensors;
    const ac = new AbortController();
    ac.abort(new Error("client left"));
    await assert.rejects(run(decoder, 3, ac.signal), /client left/);
    assert.equal(tf.memory().numTensors, before);
    free();
  });

  test(`${runtime}: repeat blocking: trigrams never repeat, and content words appear at most once`, async () => {
    await initBackend();
    // x -> x is the likeliest move, so unblocked greedy loops "x x x x x x".
    const loop: number[][] = [];
    loop[1] = [0, 0, 0, 0, 0.9, 0.1];
    loop[X] = [0, 0, 0.1, 0, 0.6, 0.3];
    loop[Y] = [0, 0, 0.95, 0, 0.05, 0];
    const { decoder, free } = await tinyDecoder(runtime, loop);
    assert.deepEqual((await run(decoder, 1)).final.ids, [X, X, X, X, X, X]);
    // x counted as a function word: only the trigram rule applies (x x x once, then y).
    assert.deepEqual((await run(decoder, 1, undefined, { blockRepeats: true, repeatable: new Set([X]) })).final.ids, [X, X, X, Y]);
    // x as a content word: used once.
    assert.deepEqual((await run(decoder, 1, undefined, { blockRepeats: true, repeatable: new Set() })).final.ids, [X, Y]);
    free();
  });

  test(`${runtime}: constrained search puts the required name in at the best place; a bias re-ranks words`, async () => {
    await initBackend();
    const { decoder, free } = await tinyDecoder(runtime);
    const none = { blockRepeats: false };
    // Unconstrained beam 2 finds "y" (0.38). Required to contain x, the best caption that does is "x" (0.24),
    // ahead of "y x" (0.4 * 0.05 * 0.4 = 0.008).
    const mustX = await run(decoder, 2, undefined, { ...none, constraints: [{ label: "x", alternatives: [[X]] }] });
    assert.deepEqual(mustX.final.ids, [X]);
    assert.ok(Math.abs(Math.exp(mustX.final.logp) - 0.24) < 1e-3);
    assert.equal(mustX.final.met, 1);
    // A two-word name "y x": the only captions holding it are "y x" (0.008) and "x y x" (0.6 * 0.3 * 0.05 * 0.4 = 0.0036).
    for (const beam of [1, 2]) {
      const phrase = await run(decoder, beam, undefined, { ...none, constraints: [{ label: "yx", alternatives: [[Y, X]] }] });
      assert.deepEqual(phrase.final.ids, [Y, X], `beam ${beam}`);
      assert.ok(Math.abs(Math.exp(phrase.final.logp) - 0.008) < 1e-4);
    }
    // Any alternative counts: "x" or "y", and y's caption is the likelier (beam 2).
    assert.deepEqual((await run(decoder, 2, undefined, { ...none, constraints: [{ label: "x|y", alternatives: [[X], [Y]] }] })).final.ids, [Y]);
    // A bias of -Infinity bans a word: greedy then starts with y; a bonus on x's log-probability makes beam 2 pick "x".
    const ban = new Float32Array(V), bonus = new Float32Array(V);
    ban[X] = -Infinity;
    bonus[X] = Math.log(2);
    assert.deepEqual((await run(decoder, 1, undefined, { ...none, bias: ban })).final.ids, [Y]);
    const boosted = await run(decoder, 2, undefined, { ...none, bias: bonus });
    assert.deepEqual(boosted.final.ids, [X]); // 0.24 * 2 = 0.48 > 0.38
    assert.ok(Math.abs(boosted.final.probs[0] - 0.6) < 1e-3, "reported probabilities are the model's own, not biased");
    free();
  });

  test(`${runtime}: a caption the decoder is sure of is kept over a required name (trustOwn)`, async () => {
    await initBackend();
    const { decoder, free } = await tinyDecoder(runtime);
    const mustX = { blockRepeats: false, constraints: [{ label: "x", alternatives: [[X]] }] };
    // The best caption without x is "y": one word at p = 0.4, a mean log-probability of log 0.4 = -0.92.
    for (const beam of [1, 2]) {
      assert.deepEqual((await run(decoder, beam, undefined, { ...mustX, trustOwn: -1 })).final.ids, [Y], `beam ${beam}: sure enough, own caption kept`);
      const forced = await run(decoder, beam, undefined, { ...mustX, trustOwn: -0.5 });
      assert.deepEqual(forced.final.ids, [X], `beam ${beam}: not sure enough, the name goes in`);
      assert.equal(forced.final.met, 1);
    }
    free();
  });

  test(`${runtime}: each word carries the model's top words at its step, most likely first`, async () => {
    await initBackend();
    const { decoder, free } = await tinyDecoder(runtime);
    const top = (h: Hypothesis) => h.top.map((alts) => alts.map((a) => [a.id, Math.round(a.prob * 1000) / 1000]));
    // Greedy: x (0.6 over y 0.4), then <end> (0.4 over x and y at 0.3 each; its own top goes with <end>).
    const greedy = await run(decoder, 1, undefined, { blockRepeats: false, topK: 2 });
    assert.deepEqual(top(greedy.final), [[[X, 0.6], [Y, 0.4]]]);
    assert.ok(greedy.final.endProb !== undefined && Math.abs(greedy.final.endProb - 0.4) < 1e-3, "the probability of ending is kept");
    // Beam search: the chosen "y" keeps the top of its own step, although y was not the likeliest word there.
    const beam = await run(decoder, 2, undefined, { blockRepeats: false, topK: 3 });
    assert.deepEqual(beam.final.ids, [Y]);
    assert.deepEqual(top(beam.final).map((alts) => alts.slice(0, 2)), [[[X, 0.6], [Y, 0.4]]]);
    // Words the bias bans are not offered; off by default.
    const banned = new Float32Array(V);
    banned[Y] = -Infinity;
    assert.deepEqual(top((await run(decoder, 1, undefined, { blockRepeats: false, topK: 2, bias: banned })).final)[0].map(([id]) => id), [X, 2]);
    assert.deepEqual((await run(decoder, 1)).final.top, [[]]);
    free();
  });

  test(`${runtime}: a forced prefix is taken word by word, and the search continues from it as the chain says`, async () => {
    await initBackend();
    const { decoder, free } = await tinyDecoder(runtime);
    const near = (a: number, b: number) => Math.abs(a - b) < 1e-3;
    // Unforced, beam search says "y" (0.38); forced to start with x, the best is "x" then <end> (0.6 * 0.4),
    // ahead of "x y" (0.6 * 0.3 * 0.95).
    for (const beam of [1, 2]) {
      const x = await run(decoder, beam, undefined, { blockRepeats: false, prefix: [X] });
      assert.deepEqual(x.final.ids, [X], `beam ${beam}`);
      assert.ok(near(Math.exp(x.final.logp), 0.6 * 0.4));
      // "y x" is unlikely (0.05) but forced all the same; then x ends (0.4) with the chain's own odds.
      const yx = await run(decoder, beam, undefined, { blockRepeats: false, prefix: [Y, X] });
      assert.deepEqual(yx.final.ids, [Y, X]);
      assert.ok(near(yx.final.probs[0], 0.4) && near(yx.final.probs[1], 0.05), `forced words report the model's own probabilities: ${yx.final.probs}`);
      assert.ok(near(yx.final.endProb!, 0.4));
      assert.deepEqual(yx.events.slice(0, 2).map((e) => e.ids), [[Y], [Y, X]], "the forced words stream first");
    }
    // A banned word can still be forced (a person asked for it).
    const banned = new Float32Array(V);
    banned[Y] = -Infinity;
    assert.deepEqual((await run(decoder, 2, undefined, { blockRepeats: false, bias: banned, prefix: [Y] })).final.ids, [Y]);
    await assert.rejects(run(decoder, 1, undefined, { blockRepeats: false, prefix: Array(cfg.maxLen + 1).fill(X) }), /at most 6 fit/);
    // A set of interchangeable words ("a" / "an"): the likelier one is taken (x at 0.6, whichever order).
    assert.deepEqual((await run(decoder, 1, undefined, { blockRepeats: false, prefix: [[Y, X]] })).final.ids, [X]);
    free();
  });

  test(`${runtime}: a prefix that already names the required object decodes as if the name had been chosen (trustOwn has nothing to keep)`, async () => {
    await initBackend();
    const { decoder, free } = await tinyDecoder(runtime);
    // Must name x, and keep the own caption when sure (trustOwn -1 would keep "y"). Forced to start with
    // x, no hypothesis is without it: greedy must still stop at x's likeliest next word, <end> (0.4).
    const mustX = { blockRepeats: false, constraints: [{ label: "x", alternatives: [[X]] }], trustOwn: -1 };
    let stepsRun = 0;
    const counting: StepDecoder = {
      async start(feats, rows) {
        const r = await decoder.start(feats, rows);
        return { step: (prev) => (stepsRun++, r.step(prev)), reorder: (from) => r.reorder(from), dispose: () => r.dispose() };
      },
    };
    for (const beam of [1, 2]) {
      stepsRun = 0;
      const r = await run(counting, beam, undefined, { ...mustX, prefix: [X] });
      assert.deepEqual(r.final.ids, [X], `beam ${beam}`);
      // Greedy: the forced x, then <end>. (It used to wait for an own caption that could never come.)
      if (beam === 1) assert.equal(stepsRun, 2, "greedy stops once the caption has ended");
    }
    free();
  });

  test(`${runtime}: with beams on, every step lists the live hypotheses with the best first`, async () => {
    await initBackend();
    const { decoder, free } = await tinyDecoder(runtime);
    const { final, events, beams } = await run(decoder, 2, undefined, { blockRepeats: false, beams: true });
    assert.equal(beams.length, events.length);
    // After the first word both x and y are alive (x ahead at 0.6).
    assert.deepEqual(beams[0].map((h) => h.ids), [[X], [Y]]);
    for (const [i, list] of beams.entries()) assert.deepEqual(list[0].ids, events[i].ids, "the chosen best comes first");
    assert.deepEqual(beams.at(-1)![0].ids, final.ids);
    // Once y has ended it stays listed, marked by its end probability, while x lives on.
    assert.ok(beams.some((list) => list.some((h) => h.ids.join() === String(Y) && h.endProb !== undefined)));
    assert.equal((await run(decoder, 2)).beams.length, 0, "off by default");
    free();
  });
}

test("an ensemble scores words by the normalised geometric mean of its members' distributions", async () => {
  await initBackend();
  // A second chain that prefers y first: <start> -> x 0.2 | y 0.8.
  const other: number[][] = [...P];
  other[1] = [0, 0, 0, 0, 0.2, 0.8];
  const a = await tinyDecoder("tfjs"), b = await tinyDecoder("onnx", other); // members may mix runtimes
  const both = ensembleDecoder([a.decoder, b.decoder]);
  // First word: sqrt(0.6 * 0.2) = 0.346 for x against sqrt(0.4 * 0.8) = 0.566 for y, so y, with p = 0.566 / 0.912.
  const greedy = await run(both, 1);
  assert.deepEqual(greedy.final.ids, [Y]);
  const gx = Math.sqrt(0.6 * 0.2), gy = Math.sqrt(0.4 * 0.8);
  assert.ok(Math.abs(greedy.final.probs[0] - gy / (gx + gy)) < 1e-3, `p(y) ${greedy.final.probs[0]}`);
  // Alone, each member says otherwise about the first word (a: x; b: y with 0.8).
  assert.deepEqual((await run(a.decoder, 1)).final.ids, [X]);
  assert.ok(Math.abs((await run(b.decoder, 1)).final.probs[0] - 0.8) < 1e-3);
  for (const al of greedy.events.flatMap((e) => e.alphas)) assert.ok(Math.abs(al.reduce((s, v) => s + v, 0) - 1) < 1e-5);
  // The same two members in one ONNX graph (what the app runs) combine the same way.
  const fused = await onnxDecoder([tinyWeights(), tinyWeights(other)], cfg);
  const one = await run(fused, 1);
  assert.deepEqual(one.final.ids, [Y]);
  assert.ok(Math.abs(one.final.probs[0] - gy / (gx + gy)) < 1e-3, `fused p(y) ${one.final.probs[0]}`);
  assert.deepEqual((await run(fused, 3)).final.ids, (await run(both, 3)).final.ids);
  for (const al of one.events.flatMap((e) => e.alphas)) assert.ok(Math.abs(al.reduce((s, v) => s + v, 0) - 1) < 1e-5);
  await fused.release();
  a.free();
  b.free();
});

test("batched greedy decoding (the trainer's dev captions) agrees with the streaming search, repeat rule included", async () => {
  await initBackend();
  const params = tinyModel();
  const feats = tf.randomUniform([3, 4, 3]) as tf.Tensor3D;
  assert.deepEqual(greedyBatch(params, feats, cfg.maxLen), [[X], [X], [X]]);
  // The looping chain of the repeat-blocking test: the same captions as search() with blockRepeats.
  const loop: number[][] = [];
  loop[1] = [0, 0, 0, 0, 0.9, 0.1];
  loop[X] = [0, 0, 0.1, 0, 0.6, 0.3];
  loop[Y] = [0, 0, 0.95, 0, 0.05, 0];
  const looping = tinyModel(loop);
  assert.deepEqual(greedyBatch(looping, feats, cfg.maxLen, new Set([X])), [[X, X, X, Y], [X, X, X, Y], [X, X, X, Y]]);
  assert.deepEqual(greedyBatch(looping, feats, cfg.maxLen, new Set()), [[X, Y], [X, Y], [X, Y]]);
  feats.dispose();
  tf.dispose([...Object.values(params), ...Object.values(looping)]);
});
