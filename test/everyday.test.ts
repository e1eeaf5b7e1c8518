/**
 * The shipped model on everyday COCO photos (coco-dev, read in place): with objects on, most
 * captions name an object the human captions name, and the words that do point at a detection of
 * that object; with objects off (the Flickr8k-only captioner) far fewer do. Bad input still gets the
 * same clear errors with objects on.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { ImageError, loadCaptioner, type Captioner } from "../model/index.ts";
import { classOf, findObjectMentions, namedObjects } from "../model/objects.ts";
import { tokenize } from "../model/text.ts";
import { readCoco } from "../notebooks-port/lib/coco.ts";
import { COCO } from "./support/studio.ts";

const skip = !existsSync(COCO) && `no coco-dev at ${COCO}`;
let captioner: Captioner;
before(async () => {
  captioner = await loadCaptioner();
});
after(() => captioner?.dispose());

/** Every 10th coco-dev photo whose references (at least 3 of them) agree on an object. */
function photos(): { file: string; wanted: Set<string> }[] {
  // Read as evaluate reads it (every photo, in the caption file's order).
  const coco = readCoco(path.join(COCO, "captions_coco-dev.json"), { devFraction: 0, testFraction: 0 });
  const out: { file: string; wanted: Set<string> }[] = [];
  for (const file of coco.splits.train.filter((_, i) => i % 10 === 0)) {
    const counts = new Map<string, number>();
    for (const c of coco.captions.get(file)!) for (const o of namedObjects(tokenize(c))) counts.set(o, (counts.get(o) ?? 0) + 1);
    const wanted = new Set([...counts].filter(([, n]) => n >= 3).map(([o]) => o));
    if (wanted.size) out.push({ file: path.join(coco.imageDir, file), wanted });
  }
  return out;
}

test("on everyday photos most captions name an object the references name; off, the Flickr8k captioner rarely does", { skip }, async () => {
  const set = photos();
  assert.ok(set.length >= 25, `${set.length} photos`);
  const named = { on: 0, off: 0 };
  const lines: string[] = [];
  for (const { file, wanted } of set) {
    for (const objects of [true, false]) {
      const r = await captioner.caption(file, { beam: 3, objects });
      const said = namedObjects(r.words.flatMap((w) => w.word.split(" ")));
      const hit = [...said].some((o) => wanted.has(o));
      if (hit) named[objects ? "on" : "off"]++;
      if (!objects) {
        assert.deepEqual(r.objects, [], "objects: false detects nothing");
        assert.ok(r.words.every((w) => w.object === undefined));
        continue;
      }
      lines.push(`${hit ? "ok  " : "miss"} ${path.basename(file)} [${[...wanted].join(", ")}]: ${r.caption} | ${r.objects.map((o) => `${o.label} ${o.score.toFixed(2)}`).join(", ")}`);
      // A word that names an object points at a detection of it (both words of "teddy bear" at the
      // teddy bear), and every box lies in the photo.
      const tokens = r.words.map((w) => w.word);
      const spans = new Map<number, string>();
      for (const m of findObjectMentions(tokens)) for (let t = m.start; t < m.end; t++) spans.set(t, classOf(m.object));
      r.words.forEach((w, t) => {
        if (w.object === undefined) return;
        const o = r.objects[w.object];
        assert.ok(o, `${w.word} points at object ${w.object} of ${r.objects.length}`);
        if (spans.has(t)) assert.equal(o.label, spans.get(t), `"${w.word}" points at a ${o.label}`);
      });
      for (const o of r.objects) {
        const [x, y, bw, bh] = o.box;
        assert.ok(x >= 0 && y >= 0 && bw >= 0 && bh >= 0 && x + bw <= 1 + 1e-6 && y + bh <= 1 + 1e-6, `${o.label} box ${o.box}`);
        assert.ok(o.score > 0 && o.score <= 1);
      }
    }
  }
  console.log(lines.join("\n"));
  console.log(`named a reference object: objects on ${named.on}/${set.length}, off ${named.off}/${set.length}`);
  assert.ok(named.on > set.length / 2, `objects on: ${named.on}/${set.length}`);
  assert.ok(named.on >= named.off + set.length / 5, `objects on ${named.on} against off ${named.off}`);
});

test("streaming reports the objects before the first word, and bad input still fails clearly", { skip }, async () => {
  const file = path.join(COCO, "images", "COCO_val2014_000000009478.jpg"); // a giraffe
  let started: { objects: unknown[]; grid: [number, number] } | null = null;
  let steps = 0;
  const it = captioner.steps(file, { beam: 1, onStart: (s) => { assert.equal(steps, 0, "onStart comes before any word"); started = s; } });
  for (let r = await it.next(); !r.done; r = await it.next()) steps++;
  assert.ok(started, "onStart was called");
  const s = started as { objects: { label: string }[]; grid: [number, number] };
  assert.deepEqual(s.grid, captioner.grid);
  assert.equal(s.objects[0]?.label, "giraffe");
  await assert.rejects(captioner.caption(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3])), ImageError);
  await assert.rejects(captioner.caption(new Uint8Array(0)), /empty file/);
});
