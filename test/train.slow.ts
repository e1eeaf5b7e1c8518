/**
 * A short real training run through the pipeline's own steps (prepare -> features -> train ->
 * finetune -> export) on 50 Flickr8k training images, in a temporary work folder: the loss must
 * fall, resuming must continue where the run stopped, the model must overfit enough to reproduce
 * training captions, fine-tuning and export must record what they did in the model card, a copied
 * checkpoint folder must export on its own, a decoder given the detector's class scores must
 * fine-tune from an exported member, and the detector calibration step must count the detector's hits on training photos for the exported model.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DATA } from "./support/studio.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(path.join(tmpdir(), "caption-train-"));
after(() => rmSync(work, { recursive: true, force: true }));

const step = (name: string, ...args: string[]) =>
  execFileSync(process.execPath, ["--import", "tsx", path.join(ROOT, "notebooks-port", `${name}.ts`), ...args], {
    env: { ...process.env, CAPTION_WORK_DIR: work }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 15 * 60_000,
  });

// Small and fast, no regularisation: the point is to check that learning works end to end.
const TRAIN = ["--name=tiny", "--maxImages=50", "--workers=1", "--hiddenDim=256", "--attnDim=32", "--outDim=128", "--batch=10",
  "--lr=0.003", "--lrDecay=1", "--dropout=0", "--attnReg=0", "--flip=false", "--glove=false", "--trainEmbeddings=true", "--patience=1000", "--saveEvery=1000"];

test("a short training run on 50 images learns, resumes and overfits", { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, async () => {
  step("prepare", `--data=${DATA}`);
  step("features", "--limit=50", "--flip=false");
  step("train", ...TRAIN, "--epochs=8");
  const ckpt = path.join(work, "checkpoints", "tiny");
  const first = JSON.parse(readFileSync(path.join(ckpt, "state.json"), "utf8"));
  assert.equal(first.epoch, 8);
  // Resume: asking for more epochs continues from epoch 8 instead of starting again.
  const out = step("train", ...TRAIN, "--epochs=30");
  assert.match(out, /^epoch 9:/m);
  assert.doesNotMatch(out, /^epoch 1:/m);
  const state = JSON.parse(readFileSync(path.join(ckpt, "state.json"), "utf8"));
  const xent = state.history.map((h: { trainXent: number }) => h.trainXent);
  assert.equal(xent.length, 30);
  assert.ok(xent[0] > 5, `starts near chance (ln 2541 = 7.8): ${xent[0]}`);
  assert.ok(xent.at(-1) < xent[0] / 3, `loss falls: ${xent[0].toFixed(2)} -> ${xent.at(-1).toFixed(2)}`);
  assert.ok(existsSync(path.join(work, "runs", "tiny", "curves.png")), "loss curves are drawn");

  // Overfitting: greedy captions of the training images reproduce their reference captions.
  const { loadArrays } = await import("../model/weights.ts");
  const { greedyBatch } = await import("../model/batch-decode.ts");
  const { initBackend, tf } = await import("../model/tf.ts");
  const { loadDataset } = await import("../notebooks-port/lib/dataset.ts");
  const { loadFeatures, readIndex } = await import("../notebooks-port/lib/features.ts");
  await initBackend();
  const { data, vocab } = loadDataset(path.join(work, ".cache", "data", "dataset.json"));
  const imgs = data.splits.train.slice(0, 50);
  const index = readIndex(state.decoder.encoder, path.join(work, ".cache", "features", state.decoder.encoder));
  const feats = tf.tensor3d(loadFeatures(index, "orig", imgs.map((i) => i.file), path.join(work, ".cache", "features", state.decoder.encoder)), [50, 64, state.decoder.featureDim]);
  const arrays = loadArrays(path.join(ckpt, "latest", "params"));
  const params = Object.fromEntries(Object.entries(arrays).map(([n, a]) => [n, tf.tensor(a.data, a.shape)]));
  const caps = greedyBatch(params, feats, 20).map((ids) => vocab.decode(ids).join(" "));
  const exact = caps.filter((c, i) => imgs[i].captions.some((r) => r.join(" ") === c)).length;
  assert.ok(exact >= 25, `at least half of the training images get one of their own captions back, got ${exact}/50: e.g. "${caps[0]}"`);
  Object.values(params).forEach((t) => t.dispose());
  feats.dispose();

  // Fine-tuning, self-critical with the teacher-forced anchor and dev measured within the epoch,
  // then export: the card records both runs (oldest first), the reward, the anchor's weight and
  // the peak memory.
  const ft = step("finetune", "--name=tiny-ft", `--init=${path.join(ckpt, "best")}`, "--maxImages=50", "--workers=1", "--hiddenDim=256", "--attnDim=32", "--outDim=128",
    "--batch=50", "--scstXent=0.5", "--epochs=1", "--lr=1e-4", "--evalEvery=2");
  assert.match(ft, /^epoch 1: train CIDEr-D reward \d\.\d+.*peak RSS \d+ MiB/m);
  // 50 images, 10 per step (5 samples each): 5 steps, with dev measured after steps 2 and 4 too.
  assert.match(ft, /^epoch 0\.40: dev xent/m);
  const out2 = path.join(work, "exported");
  step("export", `--from=${path.join(work, "checkpoints", "tiny-ft", "best")}`, `--out=${out2}`);
  const card = JSON.parse(readFileSync(path.join(out2, "model-card.json"), "utf8"));
  assert.deepEqual(card.training.map((t: { run: string }) => t.run), ["tiny", "tiny-ft"]);
  assert.equal(card.training[1].hyperParameters.scstXent, 0.5);
  const last = card.training[1].history.at(-1);
  assert.ok(last.trainReward > 0 && last.peakRssMB > 100, `reward ${last.trainReward}, peak RSS ${last.peakRssMB} MiB`);
  assert.deepEqual(card.training[1].history.map((h: { epoch: number }) => h.epoch), [0, 0.4, 0.8, 1]);
  assert.deepEqual(card.curves, ["exported/curves-tiny.png", "exported/curves-tiny-ft.png"]);

  // A checkpoint folder is self-contained: best/ copied elsewhere exports the same record, with the
  // runs' own folders (checkpoints/, runs/) out of the way.
  const moved = path.join(work, "elsewhere", "best");
  cpSync(path.join(work, "checkpoints", "tiny-ft", "best"), moved, { recursive: true });
  const out3 = path.join(work, "exported-copy");
  for (const d of ["checkpoints", "runs"]) renameSync(path.join(work, d), path.join(work, `${d}-away`));
  try {
    step("export", `--from=${moved}`, `--out=${out3}`);
  } finally {
    for (const d of ["checkpoints", "runs"]) renameSync(path.join(work, `${d}-away`), path.join(work, d));
  }
  const card3 = JSON.parse(readFileSync(path.join(out3, "model-card.json"), "utf8"));
  assert.deepEqual(card3.training, card.training, "the same runs, settings and histories as exported from the checkpoints folder");
  assert.deepEqual(card3.architecture, card.architecture);
  for (const run of ["tiny", "tiny-ft"]) assert.ok(statSync(path.join(out3, `curves-${run}.png`)).size > 1000, `curves of ${run} drawn from the record`);
  assert.deepEqual(readFileSync(path.join(out3, "decoder.bin")), readFileSync(path.join(out2, "decoder.bin")), "the same weights");

  // An ensemble export: both checkpoints as members, each run recorded once, and it loads.
  step("export", `--from=${path.join(ckpt, "best")},${path.join(work, "checkpoints", "tiny-ft", "latest")}`, `--out=${out2}`, "--dtype=float32");
  const config = JSON.parse(readFileSync(path.join(out2, "config.json"), "utf8"));
  assert.deepEqual(config.members, ["decoder", "decoder-2"]);
  const card2 = JSON.parse(readFileSync(path.join(out2, "model-card.json"), "utf8"));
  assert.deepEqual(card2.training.map((t: { run: string }) => t.run), ["tiny", "tiny-ft"]);
  assert.equal(card2.data.augmentation, "none", "both members' first run trained without mirrored images");
  const { loadDecoder } = await import("../model/index.ts");
  const loaded = loadDecoder(out2);
  assert.equal(loaded.members.length, 2);
  const [l0, l1] = loaded.members.map((m) => m.logits.data);
  assert.ok(l0.some((x, i) => x !== l1[i]), "two different decoders");
  // Exporting one checkpoint again leaves no stale member behind.
  step("export", `--from=${path.join(ckpt, "best")}`, `--out=${out2}`);
  assert.equal(JSON.parse(readFileSync(path.join(out2, "config.json"), "utf8")).members, undefined);
  assert.ok(!existsSync(path.join(out2, "decoder-2.bin")));

  // A decoder given the detector's class scores, fine-tuned from the exported (shipped-style) member:
  // only the new projection trains, everything else stays the member's, its history comes from the
  // member's model card, and the exported model captions a photo through the public API.
  assert.equal(readIndex(state.decoder.encoder, path.join(work, ".cache", "features", state.decoder.encoder)).tags, 80, "the features step cached the class scores");
  const tagged = step("train", "--name=tiny-tags", `--init=${path.join(out2, "decoder")}`, "--tags", "--only=tagIn", "--maxImages=50", "--workers=1", "--hiddenDim=256", "--attnDim=32", "--outDim=128",
    "--batch=10", "--lr=0.01", "--dropout=0", "--flip=false", "--glove=false", "--epochs=1");
  assert.match(tagged, /^epoch 1: train xent/m);
  const before = loadArrays(path.join(out2, "decoder")), afterTags = loadArrays(path.join(work, "checkpoints", "tiny-tags", "latest", "params"));
  for (const [name, a] of Object.entries(before)) assert.deepEqual(afterTags[name].data, a.data, `${name} is frozen`);
  assert.deepEqual(afterTags.tagIn.shape, [80, 4 * 256 + 128]);
  assert.ok(afterTags.tagIn.data.some((x) => Math.abs(x) > 1e-3), "the projection learnt something");
  const tagState = JSON.parse(readFileSync(path.join(work, "checkpoints", "tiny-tags", "state.json"), "utf8"));
  assert.deepEqual(tagState.ancestors.map((a: { config: { name: string } }) => a.config.name), ["tiny"], "the member's runs, from its model card");
  const out4 = path.join(work, "exported-tags");
  step("export", `--from=${path.join(work, "checkpoints", "tiny-tags", "best")}`, `--out=${out4}`);
  assert.equal(JSON.parse(readFileSync(path.join(out4, "config.json"), "utf8")).tags, 80);
  const { loadCaptioner } = await import("../model/index.ts");
  const captioner = await loadCaptioner({ modelDir: out4 });
  const result = await captioner.caption(path.join(DATA, "images", imgs[0].file), { beam: 1 });
  assert.ok(result.words.length > 0, "a tag-conditioned model captions through the public API");
  captioner.dispose();

  // The detector's calibration for the exported model: its detections on training photos, counted
  // against their references (people and dogs, which Flickr8k's captions do name, among them).
  const calibrated = step("detector-calibration", `--model=${out2}`, "--limit=24");
  assert.match(calibrated, /over 24 training photos/);
  const { loadDetectorCalibration } = await import("../model/detector-calibration.ts");
  const cal = loadDetectorCalibration(out2)!;
  assert.equal(cal.photos, 24);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  assert.ok(sum(cal.all.detected) >= 24, `detections counted: ${cal.all.detected}`);
  assert.ok(sum(cal.all.named) > 0 && sum(cal.all.named) < sum(cal.all.detected), `some named, some not: ${cal.all.named} of ${cal.all.detected}`);
});
