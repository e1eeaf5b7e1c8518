/**
 * Socket.IO streaming, against the real server on a random port with the real shipped model and
 * real socket.io-client sockets: events arrive in order, the right client gets them, and every
 * way a job can end (done, refused, cancelled, replaced, disconnected, shutdown) is covered.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import { tf } from "../model/tf.ts";
import type { CaptionAck, DoneEvent, FailedEvent, StepEvent } from "../server/events.ts";
import { connectClient, DATA, studioFixture, waitFor, type Client } from "./support/studio.ts";

const IMAGES = path.join(DATA, "images");
const PHOTOS = readdirSync(IMAGES).filter((n) => n.endsWith(".jpg")).sort().slice(0, 6);
const JPEG = readFileSync(path.join(IMAGES, PHOTOS[1]));
const T = { timeout: 180_000 };

const fixture = studioFixture();
const { serve, track } = fixture;

async function client(url: string): Promise<Client> {
  return track(await connectClient(url));
}

interface Recorded {
  ack: CaptionAck;
  events: { name: string; payload: Record<string, unknown> }[];
  end: Promise<{ name: "done"; payload: DoneEvent } | { name: "failed"; payload: FailedEvent }>;
}

/** Emits `caption` and records every server event until this job's done/failed. */
async function caption(socket: Client, req: Record<string, unknown>): Promise<Recorded> {
  const events: Recorded["events"] = [];
  let finish!: (e: Awaited<Recorded["end"]>) => void;
  const end = new Promise<Awaited<Recorded["end"]>>((resolve) => (finish = resolve));
  let id: string | null | undefined;
  for (const name of ["queued", "started", "step", "done", "failed"] as const) {
    socket.on(name, (payload: unknown) => {
      const p = payload as Record<string, unknown>;
      // Our job's events all follow the acknowledgement; anything earlier is another job's.
      if (id === undefined || p.id !== id) return;
      events.push({ name, payload: p });
      if (name === "done" || name === "failed") finish({ name, payload } as Awaited<Recorded["end"]>);
    });
  }
  // Set the id inside the callback: a refusal's `failed` can arrive in the same network read.
  const ack = await new Promise<CaptionAck>((resolve) =>
    socket.emit("caption", req as never, (a: CaptionAck) => {
      id = a.ok ? a.id : null;
      resolve(a);
    }),
  );
  return { ack, events, end };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("streaming a caption", () => {
  let url: string;
  before(async () => {
    ({ url } = await serve());
  });

  it("greedy without objects: started, then one step per word in order, then done", T, async () => {
    const socket = await client(url);
    // Detection off: plain greedy decoding, which only ever appends a word. (Grounded decoding
    // keeps a hypothesis per set of object names used, so even beam 1 may rewrite: next test.)
    const job = await caption(socket, { image: JPEG, beam: 1, objects: false });
    assert.equal(job.ack.ok, true);
    const end = await job.end;
    assert.equal(end.name, "done", JSON.stringify(end.payload));
    const names = job.events.map((e) => e.name);
    assert.equal(names[0], "started");
    assert.equal(names.at(-1), "done");
    assert.ok(names.slice(1, -1).every((n) => n === "step"), `only steps between started and done: ${names}`);

    const [h, w] = (job.events[0].payload as { grid: [number, number] }).grid;
    assert.deepEqual([h, w], fixture.captioner.grid);
    const steps = job.events.filter((e) => e.name === "step").map((e) => e.payload as unknown as StepEvent);
    const done = end.payload as DoneEvent;
    assert.equal(steps.length, done.words.length, "greedy: exactly one step per word");
    steps.forEach((s, i) => {
      assert.equal(s.index, i, "steps arrive in order");
      assert.equal(s.word, done.words[i].word);
      assert.deepEqual(s.hypothesis, done.words.slice(0, i + 1).map((x) => x.word));
      assert.ok(s.prob > 0 && s.prob <= 1);
      assert.equal(s.alpha.length, h * w);
      assert.ok(Math.abs(sum(s.alpha) - 1) < 1e-3, `step ${i} attention sums to ${sum(s.alpha)}`);
    });
    for (const x of done.words) assert.ok(Math.abs(sum(x.alpha) - 1) < 1e-3);
    assert.ok(done.caption.length > 0 && done.ms > 0 && done.waitMs >= 0);

    const png = await fetch(new URL(done.picture, url));
    assert.equal(png.status, 200);
    assert.equal(png.headers.get("content-type"), "image/png");
    const download = await fetch(new URL(`${done.picture}?download`, url));
    assert.match(download.headers.get("content-disposition") ?? "", /^attachment; filename="caption-/);
  });

  it("greedy with objects (the default): started with the objects, then the live best hypothesis with every step", T, async () => {
    const socket = await client(url);
    const job = await caption(socket, { image: JPEG, beam: 1 });
    const end = await job.end;
    assert.equal(end.name, "done", JSON.stringify(end.payload));
    const names = job.events.map((e) => e.name);
    assert.equal(names[0], "started");
    assert.ok(Array.isArray(job.events[0].payload.objects), "started carries the objects");
    assert.ok(names.slice(1, -1).every((n) => n === "step"), `only steps between started and done: ${names}`);
    const steps = job.events.filter((e) => e.name === "step").map((e) => e.payload as unknown as StepEvent);
    const done = end.payload as DoneEvent;
    assert.ok(steps.length > 0);
    for (const s of steps) {
      assert.equal(s.hypothesis.length, s.index + 1, "the hypothesis ends with the step's word");
      assert.equal(s.hypothesis[s.index], s.word);
    }
    assert.deepEqual(steps.at(-1)!.hypothesis, done.words.map((x) => x.word), "the last step shows the final caption");
    assert.deepEqual(done.objects, job.events[0].payload.objects);
  });

  it("beam search: the live best hypothesis arrives with every step", T, async () => {
    const socket = await client(url);
    const job = await caption(socket, { image: new Uint8Array(JPEG), beam: 3, maxLen: 16 });
    const end = await job.end;
    assert.equal(end.name, "done");
    const steps = job.events.filter((e) => e.name === "step").map((e) => e.payload as unknown as StepEvent);
    assert.ok(steps.length > 0);
    for (const s of steps) {
      assert.equal(s.hypothesis.length, s.index + 1, "the hypothesis ends with the step's word");
      assert.equal(s.hypothesis[s.index], s.word);
      assert.ok(Math.abs(sum(s.alpha) - 1) < 1e-3);
    }
    assert.equal(job.events.at(-1)?.name, "done", "done comes after every step");
    assert.ok((end.payload as DoneEvent).words.length <= 16);
  });

  it("every step and word carries the model's top 5 words; beam search also sends its beams; done has the log-probability", T, async () => {
    const socket = await client(url);
    const job = await caption(socket, { image: JPEG, beam: 3 });
    const end = await job.end;
    assert.equal(end.name, "done");
    const done = end.payload as DoneEvent;
    const steps = job.events.filter((e) => e.name === "step").map((e) => e.payload as unknown as StepEvent);
    const isTop = (top: { word: string; prob: number }[], what: string) => {
      assert.equal(top.length, 5, what);
      for (let i = 1; i < 5; i++) assert.ok(top[i - 1].prob >= top[i].prob, `${what}: most likely first`);
      assert.ok(top.every((c) => c.prob > 0 && c.prob <= 1 && (c.word === "<end>" || fixture.captioner.words.includes(c.word))), what);
      assert.ok(top.reduce((a, c) => a + c.prob, 0) <= 1 + 1e-6, what);
    };
    for (const s of steps) {
      isTop(s.top, `step ${s.index}`);
      assert.ok(Array.isArray(s.beams) && s.beams.length >= 1, "beam search sends its beams");
      assert.equal(s.beams.filter((b) => b.best).length, 1, "one best");
      assert.deepEqual(s.beams[0].words, s.hypothesis, "the best comes first and is the hypothesis");
      assert.ok(s.beams.every((b) => Number.isFinite(b.logProb) && b.logProb < 0 && typeof b.done === "boolean"));
      assert.ok(!("alpha" in s.beams[0]), "no attention grids for the beams");
    }
    assert.ok(steps.some((s) => s.beams!.length >= 3), "several hypotheses are listed while decoding");
    // Steps where only the beams moved repeat the index and the hypothesis (and are still sent).
    const beamsOnly = steps.filter((s, i) => i > 0 && s.index === steps[i - 1].index && s.hypothesis.join(" ") === steps[i - 1].hypothesis.join(" "));
    assert.ok(beamsOnly.length >= 1, "a step where only the beams moved");
    for (const s of beamsOnly) assert.notDeepEqual(s.beams, steps[steps.indexOf(s) - 1].beams);
    for (const s of steps) assert.ok(s.probs.length === s.hypothesis.length && s.probs[s.index] === s.prob, "each step has its hypothesis's probabilities");
    assert.deepEqual(steps.at(-1)!.hypothesis, done.words.map((w) => w.word));
    done.words.forEach((w, i) => isTop(w.top, `word ${i}`));
    const sumLog = done.words.reduce((a, w) => a + Math.log(w.prob), 0);
    assert.ok(done.logProb < sumLog && done.logProb > sumLog - 10, `log-probability ${done.logProb} = the words' ${sumLog} + the end's`);
    assert.deepEqual(done.prefix, []);
    // Greedy sends no beams.
    const greedy = await caption(socket, { image: JPEG, beam: 1, maxLen: 5 });
    assert.equal((await greedy.end).name, "done");
    assert.ok(greedy.events.filter((e) => e.name === "step").every((e) => e.payload.beams === undefined && Array.isArray(e.payload.top)));
  });

  it("what if: a prefix is forced word by word and the model writes the rest", T, async () => {
    const socket = await client(url);
    const first = await caption(socket, { image: JPEG, beam: 1, objects: false });
    const plain = (await first.end).payload as DoneEvent;
    // Swap the second word for the model's next-best choice there.
    const alt = plain.words[1].top.find((c) => c.word !== plain.words[1].word && c.word !== "<end>")!.word;
    const prefix = [plain.words[0].word, alt];
    const job = await caption(socket, { image: JPEG, beam: 1, objects: false, prefix });
    const end = await job.end;
    assert.equal(end.name, "done", JSON.stringify(end.payload));
    const done = end.payload as DoneEvent;
    assert.deepEqual(done.words.slice(0, 2).map((w) => w.word), prefix);
    assert.deepEqual(done.prefix, prefix);
    assert.ok(done.words.length > 2, "the model went on from the prefix");
    assert.notEqual(done.caption, plain.caption);
    const steps = job.events.filter((e) => e.name === "step").map((e) => e.payload as unknown as StepEvent);
    assert.deepEqual(steps.slice(0, 2).map((s) => s.word), prefix, "the forced words stream first");
    assert.ok(Math.abs(done.words[1].prob - plain.words[1].top.find((c) => c.word === alt)!.prob) < 1e-4, "a forced word reports the model's probability for it");
    // A string works too, and beam search takes the same prefix.
    const beam = await caption(socket, { image: JPEG, beam: 3, prefix: prefix.join(" ").toUpperCase() });
    const beamDone = (await beam.end).payload as DoneEvent;
    assert.deepEqual(beamDone.words.slice(0, 2).map((w) => w.word), prefix);
  });

  it("sends events only to the client that asked", T, async () => {
    const [a, b] = [await client(url), await client(url)];
    let leaked = 0;
    for (const name of ["queued", "started", "step", "done", "failed"] as const) b.on(name, () => leaked++);
    const job = await caption(a, { image: JPEG, beam: 1, maxLen: 6 });
    assert.equal((await job.end).name, "done");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(leaked, 0);
  });
});

describe("bad requests get a failed event (and a refusing ack)", () => {
  let url: string;
  before(async () => {
    ({ url } = await serve({ uploadLimit: 64 * 1024 }));
  });

  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ["no image", { beam: 1 }, "bad_request", /binary/],
    ["image as a string", { image: "not bytes" }, "bad_request", /binary/],
    ["beam out of range", { image: JPEG, beam: 99 }, "bad_request", /beam/],
    ["maxLen not an integer", { image: JPEG, maxLen: 2.5 }, "bad_request", /maxLen/],
    ["over the upload limit", { image: Buffer.alloc(100 * 1024, 1) }, "too_large", /too large/],
    ["a prefix word outside the vocabulary", { image: JPEG, prefix: ["a", "qwxyzzy"] }, "bad_request", /"qwxyzzy" is not in the model's vocabulary/],
    ["a prefix of only the end marker", { image: JPEG, prefix: ["<end>"] }, "bad_request", /marker, not a word/],
    ["a prefix longer than maxLen", { image: JPEG, maxLen: 4, prefix: "a dog runs on the grass" }, "bad_request", /6 words.*at most 4/],
    ["a prefix that is not words", { image: JPEG, prefix: { 0: "a" } }, "bad_request", /prefix must be/],
  ];
  for (const [name, req, code, pattern] of cases) {
    it(name, T, async () => {
      const socket = await client(url);
      const job = await caption(socket, req);
      assert.equal(job.ack.ok, false);
      assert.equal(!job.ack.ok && job.ack.code, code);
      const end = await job.end;
      assert.equal(end.name, "failed");
      assert.equal((end.payload as FailedEvent).id, null);
      assert.match((end.payload as FailedEvent).message, pattern);
    });
  }

  // Header problems are refused before queueing; pixel problems once decoding has started.
  const images: [string, Buffer, RegExp, boolean][] = [
    ["empty image", Buffer.alloc(0), /empty/, false],
    ["text, not an image", Buffer.from("definitely not a jpeg"), /not an image/, false],
    ["truncated JPEG", JPEG.subarray(0, Math.floor(JPEG.length / 2)), /truncated JPEG/, true],
  ];
  for (const [name, image, pattern, starts] of images) {
    it(name, T, async () => {
      const socket = await client(url);
      const job = await caption(socket, { image });
      assert.equal(job.ack.ok, true);
      const end = await job.end;
      assert.equal(end.name, "failed");
      const f = end.payload as FailedEvent;
      assert.equal(f.code, "bad_image");
      assert.match(f.message, pattern);
      if (!starts) assert.ok(!job.events.some((e) => e.name === "started"), "refused before it starts");
      assert.ok(!job.events.some((e) => e.name === "step"), "no words for a bad image");
      assert.equal(socket.connected, true, "the connection survives a bad upload");
    });
  }
});

describe("queue", () => {
  it("waiting clients see their position, then get served", T, async () => {
    const { url } = await serve({ concurrency: 1, maxQueue: 4 });
    const sockets = await Promise.all([0, 1, 2].map(() => client(url)));
    const jobs = [];
    for (const s of sockets) jobs.push(await caption(s, { image: JPEG, beam: 2, maxLen: 12 }));
    const ends = await Promise.all(jobs.map((j) => j.end));
    assert.deepEqual(ends.map((e) => e.name), ["done", "done", "done"]);
    // Each upload's header is checked before it joins the line, concurrently, so which of the
    // three sockets lands where may vary; the line itself may not.
    const positions = jobs.map((j) => j.events.filter((e) => e.name === "queued").map((e) => e.payload.position as number));
    const byStart = [...positions].sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
    assert.deepEqual(byStart[0], [], "one starts at once");
    assert.equal(byStart[1][0], 1, "one waits next in line");
    assert.equal(byStart[2][0], 2, "the last waits behind one");
    assert.deepEqual(byStart[2].slice(-1), [1], "and moves up");
    const last = positions.indexOf(byStart[2]);
    assert.ok((ends[last].payload as DoneEvent).waitMs > 0);
  });

  it("a full queue is refused at once with failed busy", T, async () => {
    const { url } = await serve({ concurrency: 1, maxQueue: 0 });
    const [a, b] = [await client(url), await client(url)];
    const first = await caption(a, { image: JPEG, beam: 3, maxLen: 20 });
    await waitFor(() => first.events.some((e) => e.name === "started"));
    const second = await caption(b, { image: JPEG });
    const end = await second.end;
    assert.equal(end.name, "failed");
    assert.equal((end.payload as FailedEvent).code, "busy");
    assert.equal((await first.end).name, "done");
  });
});

describe("cancelling", () => {
  it("a disconnecting client cancels its job and frees its tensors", T, async () => {
    const { url, studio } = await serve();
    const warm = await caption(await client(url), { image: JPEG, beam: 1, maxLen: 4 });
    await warm.end;
    const before = tf.memory().numTensors;
    const socket = await client(url);
    const job = await caption(socket, { image: JPEG, beam: 5, maxLen: 40 });
    await waitFor(() => job.events.some((e) => e.name === "step"));
    socket.disconnect();
    await waitFor(() => studio.jobs.stats.running === 0 && studio.jobs.stats.inFlight === 0);
    assert.equal(tf.memory().numTensors, before);
  });

  it("a new caption replaces the client's running one", T, async () => {
    const { url } = await serve();
    const socket = await client(url);
    const first = await caption(socket, { image: JPEG, beam: 5, maxLen: 40 });
    await waitFor(() => first.events.some((e) => e.name === "step"));
    const second = await caption(socket, { image: readFileSync(path.join(IMAGES, PHOTOS[2])), beam: 1 });
    const [e1, e2] = await Promise.all([first.end, second.end]);
    assert.equal(e1.name, "failed");
    assert.equal((e1.payload as FailedEvent).code, "cancelled");
    assert.equal(e2.name, "done");
  });

  it("`cancel` stops the running job", T, async () => {
    const { url, studio } = await serve();
    const socket = await client(url);
    const job = await caption(socket, { image: JPEG, beam: 5, maxLen: 40 });
    await waitFor(() => job.events.some((e) => e.name === "step"));
    socket.emit("cancel");
    const end = await job.end;
    assert.equal(end.name, "failed");
    assert.equal((end.payload as FailedEvent).code, "cancelled");
    await waitFor(() => studio.jobs.stats.running === 0);
  });

  it("a job past the timeout is stopped with failed timeout", T, async () => {
    // 1 ms: the timer fires while the image decodes, so the outcome does not depend on speed.
    const { url, studio } = await serve({ jobTimeoutMs: 1 });
    const socket = await client(url);
    const job = await caption(socket, { image: JPEG, beam: 5, maxLen: 40 });
    const end = await job.end;
    assert.equal(end.name, "failed");
    assert.equal((end.payload as FailedEvent).code, "timeout");
    assert.match((end.payload as FailedEvent).message, /took longer than 1 ms/);
    await waitFor(() => studio.jobs.stats.running === 0);
  });
});

describe("shutdown", () => {
  it("finishes the in-flight caption, then refuses new ones and closes", T, async () => {
    const { url, studio } = await serve();
    const socket = await client(url);
    const job = await caption(socket, { image: JPEG, beam: 3, maxLen: 20 });
    await waitFor(() => job.events.some((e) => e.name === "started"));
    const closing = studio.close();
    const late = await caption(socket, { image: JPEG });
    const lateEnd = await late.end;
    assert.equal(lateEnd.name, "failed");
    assert.equal((lateEnd.payload as FailedEvent).code, "shutting_down");
    assert.equal((await job.end).name, "done", "the in-flight caption completes");
    await closing;
    await waitFor(() => !socket.connected);
  });
});
