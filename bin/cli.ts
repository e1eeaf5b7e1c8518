/**
 * caption [--beam N] [--max-len N] [--prefix WORDS] [--json] [--no-objects] [--concurrency N] [--batch N] <files or folders...>
 * Captions images from the command line with the shipped model. Folders are walked recursively;
 * several photos are captioned at once, and the results are printed in order.
 * A file that cannot be read gets an error line on stderr and the rest go on; the exit code is
 * 1 if any file failed, 2 for a usage error.
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ImageError, loadCaptioner, PrefixError } from "../model/index.ts";
import { inOrder } from "./in-order.ts";

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|avif|heic|bmp)$/i;
const USAGE = `usage: caption [--beam N] [--max-len N] [--prefix WORDS] [--json] [--no-objects] [--concurrency N] [--batch N] <files or folders...>
  --beam N      beam size, 1 = greedy (default 3)
  --max-len N   longest caption in words (default 20)
  --prefix W    "what if": the caption starts with these words (e.g. "a cat"), the model writes the rest
  --json        one JSON object per image per line: {"file","caption","logProb","words","objects","ms"};
                words: [{"word","prob","top":[{"word","prob"}]}], top = the model's 5 likeliest
                words at that position; objects: [{"label","score","box":[x,y,w,h]}], box as
                fractions of the image, most confident first; a word that names one has "object": its index
  --no-objects  no object detection: the Flickr8k-only captioner ("objects" is [])
  --concurrency N  photos captioned at once (default 8; their decoder steps are batched); output stays in input order
  --batch N     at most N of those photos go through the encoder in one pass (default 8; 1: one at a time)
  --model DIR   model folder (default: the shipped model)`;

function fail(msg: string): never {
  process.stderr.write(`caption: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      beam: { type: "string" }, "max-len": { type: "string" }, concurrency: { type: "string" }, batch: { type: "string" }, prefix: { type: "string" }, json: { type: "boolean" }, "no-objects": { type: "boolean" }, model: { type: "string" }, help: { type: "boolean", short: "h" },
    },
  });
}
try {
  args = parse();
} catch (e) {
  fail((e as Error).message);
}
if (args.values.help) {
  process.stdout.write(USAGE + "\n");
  process.exit(0);
}
const int = (v: string | undefined, name: string, lo: number, hi: number, dflt: number) => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) fail(`--${name} must be an integer from ${lo} to ${hi}, got "${v}"`);
  return n;
};
const beam = int(args.values.beam, "beam", 1, 10, 3);
const maxLen = int(args.values["max-len"], "max-len", 1, 50, 20);
// Captions in flight share each decoder step, which mostly streams the weights from memory: more rows per step cost little (bench/folder.ts has the figures).
const concurrency = int(args.values.concurrency, "concurrency", 1, 64, 8);
// Photos whose decoding ends together share an encoder pass, which uses both cores better (model/encode-batcher.ts).
const encoderBatch = int(args.values.batch, "batch", 1, 64, 8);
const objects = !args.values["no-objects"];
const json = Boolean(args.values.json);
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
if (!args.positionals.length) fail("no files or folders given");

// Expand folders; a missing path is reported like an unreadable file.
const files: { file: string; fromFolder: boolean }[] = [];
const missing: string[] = [];
function walk(dir: string) {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (IMAGE_EXT.test(e.name)) files.push({ file: p, fromFolder: true });
  }
}
for (const p of args.positionals) {
  let st;
  try {
    st = statSync(p);
  } catch {
    missing.push(p);
    continue;
  }
  if (st.isDirectory()) walk(p);
  else files.push({ file: p, fromFolder: false });
}

const captioner = await loadCaptioner({ encoderBatch, ...(args.values.model ? { modelDir: args.values.model } : {}) });
let prefix: string[] | undefined;
try {
  if (args.values.prefix !== undefined) prefix = captioner.checkPrefix(args.values.prefix, maxLen);
} catch (e) {
  if (!(e instanceof PrefixError)) throw e;
  captioner.dispose();
  fail(`--prefix: ${e.message}`);
}
let failed = 0;
for (const m of missing) {
  process.stderr.write(`caption: ${m}: no such file or folder\n`);
  failed++;
}
const showProgress = files.some((f) => f.fromFolder) && files.length > 1;
const t0 = performance.now();
// Alternatives cost a little per word: only --json prints them.
const outcomes = inOrder(files, concurrency, ({ file }) => captioner.caption(file, { beam, maxLen, objects, prefix, details: json }));
for await (const { index, value: r, error } of outcomes) {
  const { file } = files[index];
  if (r) {
    if (json) {
      const found = r.objects ?? [];
      const words = r.words.map((w) => {
        const named = Number.isInteger(w.object) && w.object! >= 0 && w.object! < found.length;
        const top = (w.top ?? []).map((c) => ({ word: c.word, prob: r4(c.prob) }));
        return named ? { word: w.word, prob: r4(w.prob), object: w.object, top } : { word: w.word, prob: r4(w.prob), top };
      });
      const objs = found.map((o) => ({ label: o.label, score: r4(o.score), box: o.box.map(r4) }));
      process.stdout.write(JSON.stringify({ file, caption: r.caption, logProb: r4(r.logProb), words, objects: objs, ms: +r.ms.toFixed(1) }) + "\n");
    } else process.stdout.write(`${file}\t${r.caption}\n`);
  } else {
    failed++;
    const msg = error instanceof ImageError ? error.message : `unexpected error: ${(error as Error).message}`;
    process.stderr.write(`caption: ${file}: ${msg}\n`);
  }
  if (showProgress) {
    const done = index + 1, s = (performance.now() - t0) / 1000;
    const eta = (s / done) * (files.length - done);
    const line = done === files.length ? `[${done}/${files.length}] ${(done / s).toFixed(1)} photos/s, ${s.toFixed(1)} s\n` : `[${done}/${files.length}] ${(done / s).toFixed(1)} photos/s, ETA ${eta.toFixed(0)} s\r`;
    process.stderr.write(line);
  }
}
captioner.dispose();
process.exitCode = failed ? 1 : 0;
