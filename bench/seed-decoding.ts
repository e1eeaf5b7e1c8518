/**
 * Our decoding against the seed notebook's way of decoding, with the same weights, on the same
 * photos, in one run. The notebook captions with Keras by calling model.predict on the whole
 * padded prefix for every new word: the decoder re-runs over all maxLen positions (Keras runs the
 * padding too) and keeps no state between words. This harness does exactly that with our tfjs
 * decoder functions (decoder.ts), greedy, as the notebook did: it exists only as a baseline.
 *
 * Compared, greedy, objects off (the seed had no detector), per caption (medians):
 *   - seed way: tfjs encoder, the whole prefix re-decoded for every word (tfjs);
 *   - ours on tfjs (the reference runtime): the same encoder, one cached LSTM step per word;
 *   - ours as the app runs it: onnxruntime encoder and decoder (int8 weights).
 * "decoding" is the time after the features exist; "end to end" adds JPEG decoding and the encoder.
 * The seed's captions are checked against ours (tfjs, repeat blocking off): same weights, same words.
 *   npx tsx bench/seed-decoding.ts [photos=20]
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { flickr8kDir } from "../notebooks-port/lib/flickr8k.ts";
import { imageState, step, toLogits, wordInput, type Params } from "../model/decoder.ts";
import { classScores } from "../model/detector.ts";
import { encoderSpec, loadEncoder, type Encoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { DEFAULT_MODEL_DIR, loadDecoder, toParams } from "../model/index.ts";
import { onnxDecoder } from "../model/onnx-decoder.ts";
import { search, BANNED } from "../model/search.ts";
import { ensembleDecoder, tfDecoder, type StepDecoder } from "../model/step-decoder.ts";
import { initBackend, tf } from "../model/tf.ts";
import { END, PAD, START } from "../model/vocab.ts";

const DATA = flickr8kDir();
const N = Number(process.argv[2] ?? 20);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

await initBackend();
const { config, members, vocab } = loadDecoder(DEFAULT_MODEL_DIR);
const params = members.map((m) => toParams(config, m));
const T = config.maxLen + 1; // the padded sequence: <start> and maxLen words

/** The notebook's loop: for each new word, the whole decoder over the padded prefix, no state kept. */
function seedCaption(feats: tf.Tensor3D, tags?: Float32Array): number[] {
  const ids: number[] = [];
  for (let t = 0; t < T; t++) {
    const seq = Int32Array.from({ length: T }, (_, i) => (i === 0 ? START : ids[i - 1] ?? PAD));
    const logp = tf.tidy(() => {
      // Every member runs all T positions (as model.predict does); only position t is read.
      const perMember = params.map((p: Params) => {
        const img = imageState(p, feats, tags && tf.tensor2d(tags, [1, tags.length]));
        let { h, c } = img;
        const words = tf.unstack(wordInput(p, tf.tensor1d(seq, "int32"))) as tf.Tensor2D[];
        let out: tf.Tensor2D | null = null;
        for (let i = 0; i < T; i++) {
          const s = step(p, img, h, c, words[i].reshape([1, -1]) as tf.Tensor2D);
          ({ h, c } = s);
          if (i === t) out = s.out;
        }
        return tf.logSoftmax(toLogits(p, out!));
      });
      return tf.logSoftmax(tf.addN(perMember).div(params.length)); // the ensemble's normalised geometric mean
    });
    const row = logp.dataSync() as Float32Array;
    logp.dispose();
    for (const b of BANNED) row[b] = -Infinity;
    let best = 0;
    for (let w = 1; w < row.length; w++) if (row[w] > row[best]) best = w;
    if (best === END) break;
    ids.push(best);
  }
  return ids;
}

async function ours(decoder: StepDecoder, feats: tf.Tensor3D, tags?: Float32Array): Promise<number[]> {
  const it = search(decoder, feats, { beam: 1, maxLen: config.maxLen, lengthPenalty: 1, blockRepeats: false, tags });
  let r = await it.next();
  while (!r.done) r = await it.next();
  return r.value.ids;
}

const files = readdirSync(path.join(DATA, "images")).sort().slice(0, N).map((f) => readFileSync(path.join(DATA, "images", f)));
const spec = encoderSpec(config.encoder);
// A decoder with tags also reads the detection head's class scores (model/detector.ts classScores).
const heads = Boolean(config.tags);
const encoders: Record<"tfjs" | "onnx", Encoder> = { tfjs: await loadEncoder(spec, "tfjs", { heads }), onnx: await loadEncoder(spec, "onnx", { heads }) };
const encode = async (encoder: Encoder, px: Uint8Array) => {
  const r = await encoder.encodeWithHeads([px]);
  return { feats: r.feats, tags: heads ? classScores(r.heads.keypoints) : undefined };
};
const onnx = await onnxDecoder(members, config, { int8: true }); // as the app runs it (LoadOptions.decoderWeights "int8")
const ways = {
  "seed way (tfjs, whole prefix per word)": { encoder: encoders.tfjs, decode: async (f: tf.Tensor3D, tags?: Float32Array) => seedCaption(f, tags) },
  "ours on tfjs (cached state)": { encoder: encoders.tfjs, decode: (f: tf.Tensor3D, tags?: Float32Array) => ours(ensembleDecoder(params.map(tfDecoder)), f, tags) },
  "ours as the app runs it (onnxruntime)": { encoder: encoders.onnx, decode: (f: tf.Tensor3D, tags?: Float32Array) => ours(onnx, f, tags) },
};
const times: Record<string, { total: number[]; decoding: number[]; words: number[] }> = {};
const captions: Record<string, string[]> = {};
for (const [name, way] of Object.entries(ways)) {
  times[name] = { total: [], decoding: [], words: [] };
  captions[name] = [];
  const warm = await encode(way.encoder, await toRgbSquare(files[0], spec.inputSize));
  await way.decode(warm.feats, warm.tags); // warm-up
  warm.feats.dispose();
  for (const bytes of files) {
    const t0 = performance.now();
    const { feats, tags } = await encode(way.encoder, await toRgbSquare(bytes, spec.inputSize));
    const t1 = performance.now();
    const ids = await way.decode(feats, tags);
    const t2 = performance.now();
    feats.dispose();
    times[name].total.push(t2 - t0);
    times[name].decoding.push(t2 - t1);
    times[name].words.push(ids.length);
    captions[name].push(vocab.decode(ids).join(" "));
  }
}
const [seed, ...rest] = Object.keys(ways);
const same = captions[seed].filter((c, i) => c === captions[rest[0]][i]).length;
console.log(`greedy captions of ${N} Flickr8k JPEGs, ${members.length}-decoder ensemble, objects off, medians per caption (${median(times[seed].words)} words):`);
for (const [name, t] of Object.entries(times)) {
  const s = times[seed];
  const ratio = (a: number[], b: number[]) => (median(a) / median(b)).toFixed(1);
  console.log(`  ${name}: end to end ${median(t.total).toFixed(1)} ms, decoding ${median(t.decoding).toFixed(1)} ms${name === seed ? "" : ` (seed way / this: end to end ${ratio(s.total, t.total)}x, decoding ${ratio(s.decoding, t.decoding)}x)`}`);
}
console.log(`  the seed way's captions equal ours (tfjs, no repeat blocking) on ${same} of ${N} photos; the app's on ${captions[rest[1]].filter((c, i) => c === captions[seed][i]).length}`);
tf.dispose(params.flatMap((p) => Object.values(p)));
await onnx.release();
Object.values(encoders).forEach((e) => e.dispose());
