/**
 * What the object tests share: the coco-dev photo they caption (chosen by running the real
 * model: see OBJECT_PHOTO) and checks of the documented shape of detections and of words that
 * name them.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { COCO_LABELS, classOf, classOfWord, findObjectMentions } from "../../model/objects.ts";
import { COCO } from "./studio.ts";

/**
 * A coco-dev photo with one obvious object: a giraffe standing alone on a grass plain. The
 * shipped detector finds it with a high score, and the grounded caption names it.
 */
export const OBJECT_PHOTO = path.join(COCO, "images", "COCO_val2014_000000009478.jpg");
/** The object every test expects the detector to find in OBJECT_PHOTO. */
export const OBJECT_LABEL = "giraffe";

export interface ObjectLike {
  label: string;
  score: number;
  box: number[];
}

/** Every detection has a COCO label, a score in (0, 1] and a box inside the image; most confident first. */
export function assertObjectShape(objects: unknown): asserts objects is ObjectLike[] {
  assert.ok(Array.isArray(objects), `objects is an array: ${JSON.stringify(objects)}`);
  for (const o of objects as ObjectLike[]) {
    assert.deepEqual(Object.keys(o).sort(), ["box", "label", "score"], JSON.stringify(o));
    assert.ok((COCO_LABELS as readonly string[]).includes(o.label), `${o.label} is a COCO class`);
    assert.ok(typeof o.score === "number" && o.score > 0 && o.score <= 1, `score ${o.score} in (0, 1]`);
    assert.equal(o.box.length, 4);
    const [x, y, w, h] = o.box;
    assert.ok(o.box.every((v) => typeof v === "number" && Number.isFinite(v)), JSON.stringify(o.box));
    assert.ok(x >= 0 && y >= 0 && w > 0 && h > 0, `box [${o.box}] starts inside the image and has an area`);
    assert.ok(x + w <= 1 + 1e-3 && y + h <= 1 + 1e-3, `box [${o.box}] ends inside the image`);
  }
  const scores = (objects as ObjectLike[]).map((o) => o.score);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a), "most confident first");
}

/**
 * Each word with `object` points at a detection whose class that word names ("giraffe" ->
 * "giraffe", "table" -> "dining table", "girl" -> "person": model/objects.ts's own tables);
 * returns how many words name an object.
 */
export function assertWordsNameTheirObjects(words: { word: string; object?: number }[], objects: ObjectLike[]): number {
  const tokens = words.map((w) => w.word);
  const mentions = findObjectMentions(tokens);
  let named = 0;
  words.forEach((w, i) => {
    if (w.object === undefined) return;
    named++;
    assert.ok(Number.isInteger(w.object) && w.object >= 0 && w.object < objects.length, `word ${i} "${w.word}" points at object ${w.object} of ${objects.length}`);
    // The class the word names: within an object's name ("hot dog"), or as a word for it ("girl" -> person).
    const m = mentions.find((x) => x.start <= i && i < x.end);
    const names = [m ? classOf(m.object) : null, classOfWord(w.word)].filter((c) => c !== null);
    assert.ok(names.length > 0, `"${w.word}" (word ${i} of "${tokens.join(" ")}") names an object`);
    assert.ok(names.includes(objects[w.object].label), `"${w.word}" (word ${i} of "${tokens.join(" ")}") names the ${objects[w.object].label} it points at (it names: ${names})`);
  });
  return named;
}
