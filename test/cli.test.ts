/** The `caption` CLI, run as a user would: real photos, a bad file, a missing path, bad flags. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { OBJECT_LABEL, OBJECT_PHOTO, assertObjectShape, assertWordsNameTheirObjects } from "./support/objects.ts";
import { DATA } from "./support/studio.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(path.join(tmpdir(), "caption-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, "bin", "caption.js"), ...args], { encoding: "utf8", timeout: 120_000 });

test("captions a folder as JSON lines, reports bad files and goes on", { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, () => {
  const photos = readdirSync(path.join(DATA, "images")).sort().slice(0, 2);
  mkdirSync(path.join(dir, "sub"));
  copyFileSync(path.join(DATA, "images", photos[0]), path.join(dir, photos[0]));
  copyFileSync(path.join(DATA, "images", photos[1]), path.join(dir, "sub", photos[1]));
  writeFileSync(path.join(dir, "notes.jpg"), "this is not a picture");
  const r = cli("--json", "--beam", "2", dir, path.join(dir, "missing.png"));
  assert.equal(r.status, 1, "exit code 1 when a file failed");
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 2, r.stdout);
  for (const l of lines) {
    assert.deepEqual(Object.keys(l).sort(), ["caption", "file", "logProb", "ms", "objects", "words"]);
    assert.ok(l.logProb < 0);
    for (const w of l.words) assert.ok(w.top.length === 5 && w.top.every((c: { word: string; prob: number }) => typeof c.word === "string" && c.prob > 0), "each word has its top 5");
    assertObjectShape(l.objects);
    assert.ok(l.caption.split(" ").length >= 3);
    assert.equal(l.words.length, l.caption.split(" ").length);
    assert.ok(l.ms > 0);
  }
  assert.ok(lines.some((l) => l.file.endsWith(path.join("sub", photos[1]))), "folders are walked recursively");
  assert.match(r.stderr, /notes\.jpg: not an image/);
  assert.match(r.stderr, /missing\.png: no such file or folder/);
  assert.match(r.stderr, /\[2\/3\]|\[3\/3\]/, "progress for folders");
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, "no stack traces");
});

test("a folder captioned several at a time comes out in order, each caption as captioned alone", { skip: !existsSync(DATA) && `no Flickr8k at ${DATA}` }, () => {
  const photos = readdirSync(path.join(DATA, "images")).sort().filter((_, i) => i % 400 === 0).slice(0, 12);
  const folder = path.join(dir, "many");
  mkdirSync(folder);
  for (const p of photos) copyFileSync(path.join(DATA, "images", p), path.join(folder, p));
  // One at a time, each photo through the encoder alone; then 6 at a time, their photos sharing encoder passes.
  const [one, many] = [["--concurrency", "1", "--batch", "1"], ["--concurrency", "6"]].map((flags) => cli("--beam", "1", ...flags, folder));
  for (const r of [one, many]) assert.equal(r.status, 0, r.stderr);
  const files = many.stdout.trim().split("\n").map((l) => path.basename(l.split("\t")[0]));
  assert.deepEqual(files, [...photos].sort(), "input order");
  assert.equal(many.stdout, one.stdout, "the same captions");
  assert.match(many.stderr, /\[12\/12\] [\d.]+ photos\/s, [\d.]+ s\n/, "photos/s at the end");
});

test("plain output is file<TAB>caption", { skip: !existsSync(DATA) }, () => {
  const photo = path.join(DATA, "images", readdirSync(path.join(DATA, "images")).sort()[0]);
  const r = cli("--beam", "1", photo);
  assert.equal(r.status, 0, r.stderr);
  const [file, caption] = r.stdout.trim().split("\t");
  assert.equal(file, photo);
  assert.ok(caption.split(" ").length >= 3);
});

test("--json lists the detected objects (rounded) and the words that name them; --no-objects turns detection off", { skip: !existsSync(OBJECT_PHOTO) && `no coco-dev photo at ${OBJECT_PHOTO}` }, () => {
  const r = cli("--json", "--beam", "1", OBJECT_PHOTO);
  assert.equal(r.status, 0, r.stderr);
  const line = JSON.parse(r.stdout.trim());
  assertObjectShape(line.objects);
  assert.ok(line.objects.length > 0);
  assert.equal(line.objects[0].label, OBJECT_LABEL);
  const rounded = (x: number) => Math.abs(x * 1e4 - Math.round(x * 1e4)) < 1e-6;
  for (const o of line.objects) assert.ok(rounded(o.score) && o.box.every(rounded), `rounded to 4 decimals: ${JSON.stringify(o)}`);
  assert.ok(assertWordsNameTheirObjects(line.words, line.objects) >= 1, `the caption names the ${OBJECT_LABEL}: ${line.caption}`);
  for (const w of line.words) assert.deepEqual(Object.keys(w).sort(), w.object === undefined ? ["prob", "top", "word"] : ["object", "prob", "top", "word"]);

  const off = cli("--json", "--beam", "1", "--no-objects", OBJECT_PHOTO);
  assert.equal(off.status, 0, off.stderr);
  const plain = JSON.parse(off.stdout.trim());
  assert.deepEqual(plain.objects, []);
  assert.ok(plain.words.length > 0 && plain.words.every((w: { object?: number }) => w.object === undefined));

  const help = cli("--help");
  assert.match(help.stdout, /--no-objects/);
  assert.match(help.stdout, /"objects"/);
});

test("--prefix: the caption starts with the given words, and the model writes the rest", { skip: !existsSync(DATA) }, () => {
  const photo = path.join(DATA, "images", readdirSync(path.join(DATA, "images")).sort()[0]);
  const r = cli("--beam", "1", "--prefix", "A cat,", photo);
  assert.equal(r.status, 0, r.stderr);
  const caption = r.stdout.trim().split("\t")[1];
  assert.match(caption, /^a cat \S+ \S+/);
});

test("usage errors exit 2 with a readable message", () => {
  for (const args of [[], ["--beam", "0", "x.jpg"], ["--max-len", "abc", "x.jpg"], ["--concurrency", "0", "x.jpg"], ["--batch", "0", "x.jpg"], ["--bogus", "x.jpg"], ["--prefix", "a qwxyzzy", "x.jpg"], ["--max-len", "2", "--prefix", "a big dog", "x.jpg"]]) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^caption: .+\nusage: caption/);
  }
  assert.match(cli("--batch", "0", "x.jpg").stderr, /--batch must be an integer from 1 to 64/);
});
