/**
 * COCO caption files in the pipeline: coco-dev (408 COCO photos in COCO's caption-file format)
 * stands in for a full COCO here. prepare must read it alone, as a json path with --images, and
 * together with Flickr8k; split it by image id; tokenise its captions; keep coco-dev out of
 * training unless told; and turn bad input into a one-line error. Steps run in a temporary work
 * folder, as test/train.slow.ts does. Flickr8k's folder is found one way everywhere (FLICKR8K_DIR).
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { tokenize } from "../model/text.ts";
import { idHash, readSplitFile, splitOf } from "../notebooks-port/lib/coco.ts";
import { imagePath, type PreparedDataset } from "../notebooks-port/lib/dataset.ts";
import { flickr8kDir } from "../notebooks-port/lib/flickr8k.ts";
import { commonRoot } from "../notebooks-port/lib/sources.ts";
import { DATA } from "./support/studio.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const COCO = process.env.COCO_DEV_DIR ?? path.resolve(ROOT, "../shared/data/coco-dev");
const COCO_JSON = path.join(COCO, "captions_coco-dev.json");
const noCoco = !existsSync(COCO_JSON) && `no coco-dev at ${COCO} (set COCO_DEV_DIR)`;
const work = mkdtempSync(path.join(tmpdir(), "caption-coco-"));
after(() => rmSync(work, { recursive: true, force: true }));

const run = (name: string, ...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "notebooks-port", `${name}.ts`), ...args], {
    env: { ...process.env, CAPTION_WORK_DIR: work }, encoding: "utf8", timeout: 10 * 60_000,
  });
const step = (name: string, ...args: string[]) => {
  const r = run(name, ...args);
  assert.equal(r.status, 0, `${name} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
};
const dataset = (): PreparedDataset => JSON.parse(readFileSync(path.join(work, ".cache", "data", "dataset.json"), "utf8"));
const raw = () => JSON.parse(readFileSync(COCO_JSON, "utf8")) as { images: { id: number; file_name: string }[]; annotations: { image_id: number; caption: string }[] };

test("Flickr8k is where FLICKR8K_DIR says, for the pipeline as for the tests; else ../shared/data/flickr8k", () => {
  assert.equal(flickr8kDir({ FLICKR8K_DIR: "/elsewhere/flickr8k" }), "/elsewhere/flickr8k");
  assert.equal(flickr8kDir({}), path.resolve(ROOT, "../shared/data/flickr8k"));
  assert.equal(DATA, flickr8kDir());
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "notebooks-port", "prepare.ts")], {
    env: { ...process.env, CAPTION_WORK_DIR: work, FLICKR8K_DIR: "/nonexistent/flickr8k" }, encoding: "utf8", timeout: 60_000,
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /data not found: \/nonexistent\/flickr8k/, "prepare's default --data is FLICKR8K_DIR");
});

test("the id split is deterministic, near its fractions, and independent of order", () => {
  const ids = Array.from({ length: 20000 }, (_, i) => i * 7 + 3);
  const count = (s: string) => ids.filter((id) => splitOf(id, 0.05, 0.1) === s).length / ids.length;
  assert.ok(Math.abs(count("dev") - 0.05) < 0.01 && Math.abs(count("test") - 0.1) < 0.01, `dev ${count("dev")}, test ${count("test")}`);
  assert.ok(ids.every((id) => idHash(id) >= 0 && idHash(id) < 1));
  // Neighbouring ids land in different places (a hash, not id ranges), and the same id always in the same one.
  assert.ok(new Set(ids.slice(0, 100).map((id) => splitOf(id, 0.3, 0.3))).size === 3);
  assert.equal(splitOf(391895, 0.05, 0.05), splitOf(391895, 0.05, 0.05));
  // Growing dev/test only moves images out of train, never between dev and test.
  assert.ok(ids.every((id) => splitOf(id, 0.05, 0.1) !== "test" || splitOf(id, 0.1, 0.1) === "test"));
});

test("split files: id lists and Karpathy's dataset_coco.json", () => {
  const lists = path.join(work, "lists.json");
  writeFileSync(lists, JSON.stringify({ train: [1, 2], dev: [3], test: [4] }));
  assert.deepEqual([...readSplitFile(lists)], [[1, "train"], [2, "train"], [3, "dev"], [4, "test"]]);
  const karpathy = path.join(work, "dataset_coco.json");
  writeFileSync(karpathy, JSON.stringify({ images: [{ cocoid: 9, split: "restval" }, { cocoid: 8, split: "val" }, { cocoid: 7, split: "test" }] }));
  assert.deepEqual([...readSplitFile(karpathy)], [[9, "train"], [8, "dev"], [7, "test"]]);
  writeFileSync(lists, JSON.stringify({ train: ["a.jpg"] }));
  assert.throws(() => readSplitFile(lists), { name: "DataError", message: /integers/ });
});

test("commonRoot is the deepest folder holding them all", () => {
  assert.equal(commonRoot(["/d/flickr8k/images", "/d/coco-dev/images"]), "/d");
  assert.equal(commonRoot(["/d/x", "/d/x/y"]), "/d/x");
  assert.equal(commonRoot(["/d/..x/images", "/d/y"]), "/d");
});

test("prepare reads coco-dev as a COCO data set: counts, id split, tokenised captions, vocabulary", { skip: noCoco }, () => {
  const out = step("prepare", `--data=${COCO}`, "--holdOut=", "--devFraction=0.1", "--testFraction=0.2");
  const d = dataset();
  const coco = raw();
  const byId = new Map(coco.images.map((i) => [i.file_name, i.id]));
  const all = [...d.splits.train, ...d.splits.dev, ...d.splits.test];
  assert.equal(all.length, 408);
  assert.equal(new Set(all.map((i) => i.file)).size, 408);
  for (const s of ["train", "dev", "test"] as const) {
    for (const i of d.splits[s]) assert.equal(splitOf(byId.get(i.file)!, 0.1, 0.2), s, `${i.file} in ${s}`);
  }
  // About 10% and 20% of 408 (binomial spread, several standard deviations allowed).
  assert.ok(d.splits.dev.length > 20 && d.splits.dev.length < 65, `dev ${d.splits.dev.length}`);
  assert.ok(d.splits.test.length > 55 && d.splits.test.length < 110, `test ${d.splits.test.length}`);
  assert.match(out, new RegExp(`images: train ${d.splits.train.length}, dev ${d.splits.dev.length}, test ${d.splits.test.length}`));
  // Captions: all of an image's annotations, in file order, tokenised (lower case, no punctuation).
  const first = coco.images[0];
  const prepared = all.find((i) => i.file === first.file_name)!;
  assert.deepEqual(prepared.captions, coco.annotations.filter((a) => a.image_id === first.id).map((a) => tokenize(a.caption)));
  assert.equal(all.reduce((s, i) => s + i.captions.length, 0), coco.annotations.length);
  assert.ok(all.every((i) => i.captions.every((c) => c.length > 0 && c.every((w) => w === w.toLowerCase() && !/^[.,!?]$/.test(w)))));
  // Vocabulary: the training captions' words seen at least 5 times (and nothing from dev/test only).
  const counts = new Map<string, number>();
  for (const w of d.splits.train.flatMap((i) => i.captions).flat()) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = d.vocab.filter((w) => !w.startsWith("<"));
  assert.deepEqual(new Set(words), new Set([...counts].filter(([, n]) => n >= 5).map(([w]) => w)));
  assert.ok(words.includes("giraffe") || words.includes("pizza"), "COCO's everyday words are in it");
  // Every image resolves to its photo; one source keeps its own folder and bare file names.
  assert.equal(d.imageDir, path.join(COCO, "images"));
  assert.ok(all.every((i) => existsSync(imagePath(d, i))));
  assert.equal(d.sources?.[0].kind, "coco");
});

test("a COCO json path with --images, and a split file", { skip: noCoco }, () => {
  const ids = raw().images.map((i) => i.id);
  const splits = path.join(work, "split.json");
  writeFileSync(splits, JSON.stringify({ train: ids.slice(0, 300), dev: ids.slice(300, 350), test: ids.slice(350, 360) }));
  // The json alone in another folder: its photos are found only through --images.
  const lone = path.join(work, "lone");
  mkdirSync(lone, { recursive: true });
  const file = path.join(lone, "captions_mini.json");
  writeFileSync(file, readFileSync(COCO_JSON));
  const bad = run("prepare", `--data=${file}`, "--holdOut=");
  assert.match(bad.stderr, /^error: cannot find the photos of .*pass --images=DIR\n$/);
  step("prepare", `--data=${file}`, `--images=${path.join(COCO, "images")}`, `--splits=${splits}`, "--holdOut=");
  const d = dataset();
  assert.deepEqual([d.splits.train.length, d.splits.dev.length, d.splits.test.length], [300, 50, 10], "images the split file leaves out are left out");
  assert.ok(d.splits.dev.every((i) => existsSync(imagePath(d, i))));
});

test("coco-dev is held out of training by default", { skip: noCoco }, () => {
  const r = run("prepare", `--data=${COCO}`);
  assert.equal(r.status, 1);
  // Train and dev lose them (test may keep them: scoring on them is what they are for).
  const trainDev = raw().images.filter((i) => splitOf(i.id, 0.05, 0.05) !== "test").length;
  assert.match(r.stderr, new RegExp(`^error: no training images left .*\\(${trainDev} photos of .* are held out; --holdOut= keeps them\\)\n$`));
});

test("Flickr8k plus COCO: one dataset, paths under a common root, features readable", { skip: noCoco || (!existsSync(DATA) && `no Flickr8k at ${DATA}`) }, () => {
  step("prepare", `--data=${DATA}`);
  const flickr = dataset();
  // Flickr8k alone is written as before (bare names, no sources), so existing feature caches stay valid.
  assert.equal(flickr.sources, undefined);
  assert.ok(!flickr.splits.train[0].file.includes("/"));
  assert.equal(flickr.splits.test.length, 1000);

  const out = step("prepare", `--data=${COCO},${DATA}`, "--holdOut=");
  const d = dataset();
  assert.equal(d.sources?.map((s) => s.kind).join(","), "coco,flickr8k");
  const [c, f] = d.sources!;
  assert.equal(d.splits.train.length, c.train + 6000);
  assert.equal(d.splits.test.length, c.test + 1000);
  assert.equal(c.train + c.dev + c.test, 408);
  assert.match(out, /^COCO captions_coco-dev: train \d+, dev \d+, test \d+ \(split by image id hash: dev 0.05, test 0.05\)$/m);
  assert.equal(d.imageDir, commonRoot([c.imageDir, f.imageDir]));
  const all = [...d.splits.train, ...d.splits.dev, ...d.splits.test];
  assert.ok(all.every((i) => existsSync(imagePath(d, i))), "every image resolves");
  assert.ok(all.some((i) => i.file.startsWith("coco-dev/images/COCO_val2014_")) && all.some((i) => i.file.startsWith("flickr8k/images/")));
  // The vocabulary now has words of both (Flickr8k alone: 2,541).
  assert.ok(d.vocab.length > flickr.vocab.length, `${d.vocab.length} words`);
  assert.ok(d.vocab.includes("skateboard") && d.vocab.includes("dog"));

  // The encoder pass reads the photos through those paths (two images of each split).
  step("features", "--limit=2", "--flip=false");
  const index = JSON.parse(readFileSync(path.join(work, ".cache", "features", "centernet+mnv2-256", "index.json"), "utf8"));
  assert.equal(index.images.length, 6);
  assert.ok(index.images.every((k: string) => k.startsWith("coco-dev/images/")));
  rmSync(path.join(work, ".cache", "features"), { recursive: true, force: true });
});

test("bad input gets a one-line error, never a stack", { skip: noCoco }, () => {
  const textOnly = path.resolve(COCO, "../coco-text/captions_coco-text.json");
  const wrong = path.join(work, "captions_wrong.json");
  writeFileSync(wrong, JSON.stringify({ images: [{ id: 1, file_name: "a.jpg" }], annotations: { caption: "x" } }));
  const broken = path.join(work, "captions_broken.json");
  writeFileSync(broken, "{ not json");
  const cases: [string[], RegExp][] = [
    [["--data=/no/such/captions_x.json"], /data not found: \/no\/such\/captions_x.json/],
    [[`--data=${wrong}`], /is not a COCO caption file/],
    [[`--data=${broken}`], /is not valid JSON/],
    [[`--data=${COCO}`, "--devFraction=0.7", "--testFraction=0.4"], /must be >= 0 and leave some images for training/],
    [[`--data=${COCO},${COCO}`, "--holdOut="], /is listed twice/],
    ...(existsSync(textOnly) ? [[[`--data=${textOnly}`], /has no "file_name" \(a text-only caption file/] as [string[], RegExp]] : []),
  ];
  for (const [args, message] of cases) {
    const r = run("prepare", ...args);
    assert.equal(r.status, 1, args.join(" "));
    assert.match(r.stderr, /^error: [^\n]+\n$/, `one line for ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test("evaluate scores coco-dev with object recall and human figures, and the card shows both sets", { skip: noCoco }, async () => {
  const bad = run("evaluate", "--set=everything");
  assert.match(bad.stderr, /^error: --set must be flickr8k, coco-dev or both, got "everything"\n$/);
  assert.match(run("evaluate", "--set=coco-dev", "--limit=3", "--card").stderr, /^error: --card records the model's defaults on whole sets/);
  assert.match(run("evaluate", "--set=coco-dev", "--decoderWeights=int4").stderr, /^error: --decoderWeights must be int8 or float32, got "int4"/);
  assert.match(run("evaluate", "--set=coco-dev", "--decoderWeights=float32", "--card").stderr, /^error: --card records the model's defaults on whole sets/);
  assert.match(run("evaluate", "--set=coco-dev", "--coco=/no/such/dir").stderr, /^error: no captions_\*\.json in \/no\/such\/dir/);

  const out = step("evaluate", "--set=coco-dev", "--limit=4", "--beams=1", "--objects=false");
  const file = path.join(work, "runs", "eval", "coco-dev-weights-no-objects-first4.json");
  assert.match(out, new RegExp(`wrote ${file.replace(/[.+]/g, "\\$&")}`));
  const r = JSON.parse(readFileSync(file, "utf8"));
  assert.equal(r.objects, false);
  const b1 = r.results.beam1;
  assert.equal(b1.images, 4);
  assert.equal(b1.captions.length, 4);
  for (const k of ["bleu1", "bleu4", "rougeL", "cider", "meanLength", "distinct", "medianMs"]) assert.equal(typeof b1[k], "number", k);
  assert.ok(b1.objectRefs > 0 && b1.objectRecall >= 0 && b1.objectRecall <= 1, `object recall ${b1.objectRecall} of ${b1.objectRefs}`);
  // Rescoring the saved captions against the references gives the saved figures.
  const { scoreCaptions, humanAgreement } = await import("../notebooks-port/lib/metrics.ts");
  const coco = raw();
  const refs = coco.images.slice(0, 4).map((i) => coco.annotations.filter((a) => a.image_id === i.id).map((a) => tokenize(a.caption)));
  assert.deepEqual(b1.captions.map((c: { file: string }) => c.file), coco.images.slice(0, 4).map((i) => i.file_name));
  const again = scoreCaptions(b1.captions.map((c: { caption: string }) => tokenize(c.caption)), refs);
  assert.equal(again.cider, b1.cider);
  assert.equal(again.objectRecall, b1.objectRecall);
  const { images, ...human } = humanAgreement(refs);
  assert.deepEqual({ ...r.human, images: undefined }, { ...human, images: undefined });
  assert.equal(r.human.images, images);

  // The card: each set's table with its ablation rows and the human row.
  const { writeModelCardMarkdown } = await import("../notebooks-port/lib/model-card.ts");
  const dir = path.join(work, "card", "weights");
  mkdirSync(dir, { recursive: true });
  const card = JSON.parse(readFileSync(path.join(ROOT, "model", "weights", "model-card.json"), "utf8"));
  card.scores = { ...card.scores, "coco-dev": { beam1: b1 }, "coco-dev-no-objects": { beam1: b1 } };
  card.human = { "coco-dev": r.human };
  writeFileSync(path.join(dir, "model-card.json"), JSON.stringify(card));
  const md = writeModelCardMarkdown(dir);
  assert.match(md, /## Scores \(Flickr8k test split, 1,000 images\)/);
  const coc = md.slice(md.indexOf("## Scores (coco-dev"));
  assert.match(coc, new RegExp(`\\| beam 1 \\|.*\\| ${b1.objectRecall.toFixed(3)} \\|`));
  assert.match(coc, /\| beam 1, objects off \|/);
  assert.match(coc, new RegExp(`\\| human \\(caption 0 against the others\\) \\|.*\\| ${r.human.cider.toFixed(3)} \\| ${r.human.objectRecall.toFixed(3)} \\|`));
});
