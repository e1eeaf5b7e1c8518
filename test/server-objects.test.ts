/**
 * Detected objects through the server ("Everyday photos"), with the real shipped model on a real
 * coco-dev photo: Socket.IO `started`/`step`/`done` and POST /api/caption carry the objects and
 * each word's `object`; `objects=false` turns detection off; a bad `objects` value is a 400; the
 * result picture draws the boxes. Skips, saying why, where the coco-dev photos are missing.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import request from "supertest";
import { loadCaptioner } from "../model/index.ts";
import type { Captioner } from "../model/types.ts";
import type { StudioApp } from "../server/app.ts";
import type { CaptionAck, DoneEvent, FailedEvent, StartedEvent, StepEvent } from "../server/events.ts";
import { renderPicture } from "../server/picture.ts";
import { decodeUpload } from "../server/decode-upload.ts";
import { STORED_SIDE } from "../server/result-store.ts";
import { objectColor } from "../static/objects.js";
import { OBJECT_LABEL, OBJECT_PHOTO, assertObjectShape, assertWordsNameTheirObjects } from "./support/objects.ts";
import { connectClient, DATA, startStudio, type Client } from "./support/studio.ts";

const T = { timeout: 180_000 };
const skip = existsSync(OBJECT_PHOTO) ? false : `no coco-dev photo at ${OBJECT_PHOTO}`;
const PHOTO = skip ? Buffer.alloc(0) : readFileSync(OBJECT_PHOTO);
const FLICKR = path.join(DATA, "images", "1000268201_693b08cb0e.jpg");

let captioner: Captioner;
let studio: StudioApp;
let url: string;
const clients: Client[] = [];

before(async () => {
  if (skip) return;
  captioner = await loadCaptioner();
  ({ studio, url } = await startStudio(captioner));
});

after(async () => {
  clients.forEach((c) => c.close());
  await studio?.close();
  captioner?.dispose();
});

async function client(): Promise<Client> {
  const socket = await connectClient(url);
  clients.push(socket);
  return socket;
}

/** Emits `caption` and records this job's events until done/failed. */
async function caption(req: Record<string, unknown>) {
  const socket = await client();
  const events: { name: string; payload: Record<string, unknown> }[] = [];
  let id: string | null | undefined;
  const end = new Promise<{ name: string; payload: Record<string, unknown> }>((resolve) => {
    for (const name of ["queued", "started", "step", "done", "failed"] as const) {
      socket.on(name, (payload: unknown) => {
        const p = payload as Record<string, unknown>;
        if (id === undefined || p.id !== id) return;
        events.push({ name, payload: p });
        if (name === "done" || name === "failed") resolve({ name, payload: p });
      });
    }
  });
  const ack = await new Promise<CaptionAck>((resolve) =>
    socket.emit("caption", req as never, (a: CaptionAck) => {
      id = a.ok ? a.id : null;
      resolve(a);
    }),
  );
  return { ack, events, end: await end };
}

describe("objects over Socket.IO", { skip }, () => {
  for (const beam of [1, 3]) {
    it(`started carries the detections before any step; steps and done point into them (beam ${beam})`, T, async () => {
      const { ack, events, end } = await caption({ image: PHOTO, beam });
      assert.equal(ack.ok, true);
      assert.equal(end.name, "done", JSON.stringify(end.payload));
      const names = events.map((e) => e.name);
      assert.equal(names[0], "started", `started comes first: ${names}`);
      assert.equal(names.filter((n) => n === "started").length, 1, "exactly one started");
      const started = events[0].payload as unknown as StartedEvent;
      assert.deepEqual(Object.keys(started).sort(), ["grid", "id", "objects"]);
      assert.deepEqual(started.grid, captioner.grid);
      assertObjectShape(started.objects);
      assert.ok(started.objects.length > 0, "the detector found something in an everyday photo");
      assert.equal(started.objects[0].label, OBJECT_LABEL, `the most confident detection is the ${OBJECT_LABEL}: ${JSON.stringify(started.objects)}`);
      assert.ok(started.objects[0].score >= 0.5, `and it is confident (${started.objects[0].score})`);

      const done = end.payload as unknown as DoneEvent;
      assert.deepEqual(done.objects, started.objects, "done repeats the objects of started");
      const named = assertWordsNameTheirObjects(done.words, done.objects);
      assert.ok(named >= 1, `the caption names a detected object: "${done.caption}"`);
      assert.ok(done.words.some((w) => w.object !== undefined && done.objects[w.object].label === OBJECT_LABEL), `a word points at the ${OBJECT_LABEL}: "${done.caption}"`);
      for (const w of done.words) assert.deepEqual(Object.keys(w).sort(), w.object === undefined ? ["alpha", "prob", "top", "word"] : ["alpha", "object", "prob", "top", "word"]);

      const steps = events.filter((e) => e.name === "step").map((e) => e.payload as unknown as StepEvent);
      const stepsNaming = steps.filter((s) => s.object !== undefined);
      assert.ok(stepsNaming.length >= 1, "the stream marks the word that names an object as it is written");
      for (const s of stepsNaming) {
        assert.ok(Number.isInteger(s.object) && s.object! < started.objects.length);
        assertWordsNameTheirObjects(s.hypothesis.map((word, i) => (i === s.index ? { word, object: s.object } : { word })), started.objects);
      }
      // The last step shows the final caption, and marks its word as done does.
      const last = steps.at(-1)!;
      assert.deepEqual(last.hypothesis, done.words.map((w) => w.word));
      assert.equal(last.object, done.words[last.index].object);
    });
  }

  it("objects: false gives the Flickr8k-only captioner: no objects anywhere", T, async () => {
    const { events, end } = await caption({ image: PHOTO, beam: 1, objects: false });
    assert.equal(end.name, "done");
    const started = events.find((e) => e.name === "started")!.payload as unknown as StartedEvent;
    assert.deepEqual(started.objects, []);
    const done = end.payload as unknown as DoneEvent;
    assert.deepEqual(done.objects, []);
    assert.ok(done.words.length > 0);
    assert.ok(done.words.every((w) => w.object === undefined));
    assert.ok(events.filter((e) => e.name === "step").every((e) => e.payload.object === undefined));
  });

  for (const bad of ["maybe", 2, "yes please", [true]]) {
    it(`a bad objects value (${JSON.stringify(bad)}) is refused with bad_request`, T, async () => {
      const { ack, end } = await caption({ image: PHOTO, objects: bad });
      assert.equal(ack.ok, false);
      assert.equal(!ack.ok && ack.code, "bad_request");
      assert.equal(end.name, "failed");
      assert.equal((end.payload as unknown as FailedEvent).code, "bad_request");
      assert.match((end.payload as unknown as FailedEvent).message, /objects must be true or false/);
    });
  }
});

describe("objects over HTTP", { skip }, () => {
  it("POST /api/caption answers objects and each word's object", T, async () => {
    const res = await request(url).post("/api/caption?beam=1").attach("image", PHOTO, "photo.jpg").expect(200);
    const { objects, words, caption: text } = res.body;
    assertObjectShape(objects);
    assert.ok(objects.length > 0);
    assert.equal(objects[0].label, OBJECT_LABEL);
    assert.ok(assertWordsNameTheirObjects(words, objects) >= 1, `the caption names a detected object: "${text}"`);
    // The same detections as the model reports for the same photo (the server does not invent or drop any).
    const direct = await captioner.caption(PHOTO, { beam: 1 });
    assert.deepEqual(objects.map((o: { label: string }) => o.label), direct.objects.map((o) => o.label));
    assert.equal(text, direct.caption);
  });

  it("objects=false in the query, as a multipart field, or 0: detection off", T, async () => {
    for (const req of [
      request(url).post("/api/caption?beam=1&objects=false").attach("image", PHOTO, "p.jpg"),
      request(url).post("/api/caption?beam=1").field("objects", "false").attach("image", PHOTO, "p.jpg"),
      request(url).post("/api/caption?beam=1&objects=0").set("Content-Type", "application/octet-stream").send(PHOTO),
    ]) {
      const res = await req.expect(200);
      assert.deepEqual(res.body.objects, []);
      assert.ok(res.body.words.length > 0 && res.body.words.every((w: { object?: number }) => w.object === undefined));
    }
    const on = await request(url).post("/api/caption?beam=1&objects=true").attach("image", PHOTO, "p.jpg").expect(200);
    assert.ok(on.body.objects.length > 0, "objects=true is the default made explicit");
  });

  for (const q of ["objects=maybe", "objects=2", "objects=", "objects=false&objects=true"]) {
    it(`bad option ${q}`, T, async () => {
      const res = await request(url).post(`/api/caption?${q}`).attach("image", PHOTO, "p.jpg");
      if (q === "objects=") {
        // An empty value means "not given", like beam= and maxLen=.
        assert.equal(res.status, 200);
        return;
      }
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error, "bad_request");
      assert.match(res.body.message, /objects must be true or false/);
    });
  }

  it("a bad objects multipart field is a 400 too", T, async () => {
    const res = await request(url).post("/api/caption").field("objects", "sure").attach("image", PHOTO, "p.jpg").expect(400);
    assert.equal(res.body.error, "bad_request");
    assert.match(res.body.message, /objects/);
  });

  it("a Flickr8k photo still captions, with whatever the detector finds in the documented shape", T, async () => {
    const res = await request(url).post("/api/caption?beam=1").attach("image", readFileSync(FLICKR), "p.jpg").expect(200);
    assertObjectShape(res.body.objects);
    assertWordsNameTheirObjects(res.body.words, res.body.objects);
  });
});

describe("the result picture marks the objects", { skip }, () => {
  /** How many pixels of `png` have exactly the colour `hex`. */
  async function countColour(png: Buffer, hex: string): Promise<number> {
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    let n = 0;
    for (let i = 0; i < data.length; i += info.channels) if (data[i] === r && data[i + 1] === g && data[i + 2] === b) n++;
    return n;
  }

  it("draws a labelled box per object on the photo, and on a word's tile the box it names", T, async () => {
    const res = await request(url).post("/api/caption?beam=1").attach("image", PHOTO, "p.jpg").expect(200);
    const { caption: text, words, grid, objects } = res.body;
    assert.ok(objects.length > 0);
    const { raw: photo } = await decodeUpload(PHOTO, { pixelLimit: 1e8 }, STORED_SIDE);
    const colour = objectColor(0);
    const plain = await renderPicture({ photo, caption: text, words, grid, objects: [] });
    const photoOnly = await renderPicture({ photo, caption: text, words: words.map(({ object: _, ...w }: { object?: number }) => w), grid, objects });
    const full = await renderPicture({ photo, caption: text, words, grid, objects });
    const [n0, n1, n2] = [await countColour(plain, colour), await countColour(photoOnly, colour), await countColour(full, colour)];
    // A box's 2 px outline plus its label's background: hundreds of pixels of the object's colour.
    assert.ok(n1 - n0 > 300, `the photo tile gets the box (${n0} -> ${n1} pixels of ${colour})`);
    const naming = words.filter((w: { object?: number }) => w.object === 0).length;
    assert.ok(naming >= 1, `a word names the most confident object: "${text}"`);
    assert.ok(n2 - n1 > 300 * naming * 0.8, `each word naming it gets its box too (${n1} -> ${n2})`);
  });

  it("the socket result picture and ?format=png are drawn with the boxes", T, async () => {
    const { end } = await caption({ image: PHOTO, beam: 1 });
    const done = end.payload as unknown as DoneEvent;
    const png = Buffer.from(await (await fetch(new URL(done.picture, url))).arrayBuffer());
    assert.ok((await countColour(png, objectColor(0))) > 300, "the stored result keeps the objects");
    const off = await request(url).post("/api/caption?format=png&beam=1&objects=false").attach("image", PHOTO, "p.jpg").responseType("blob").expect(200);
    const on = await request(url).post("/api/caption?format=png&beam=1").attach("image", PHOTO, "p.jpg").responseType("blob").expect(200);
    assert.ok((await countColour(on.body as Buffer, objectColor(0))) > (await countColour(off.body as Buffer, objectColor(0))) + 300);
  });
});
