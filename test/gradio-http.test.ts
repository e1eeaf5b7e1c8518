/**
 * Gradio compatibility over plain HTTP, as curl users (and Gradio's clients, underneath) speak
 * it: config and API description, upload, the /call flow and the queue protocol as server-sent
 * events, heartbeats, cancelling, and every kind of bad input. Real server, real model.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import express from "express";
import sharp from "sharp";
import { loadCaptioner } from "../model/index.ts";
import type { Captioner } from "../model/types.ts";
import { createApp, type StudioApp } from "../server/app.ts";
import { createCaptionJobs, type CaptionJobs } from "../server/caption-jobs.ts";
import { makeConfig, type ServerConfig } from "../server/config.ts";
import { diffValue } from "../server/gradio/event-sessions.ts";
import { FileStore } from "../server/gradio/file-store.ts";
import { gradioRouter } from "../server/gradio/index.ts";
import { readInput } from "../server/gradio/read-input.ts";
import { ResultStore } from "../server/result-store.ts";
import { DATA, waitFor } from "./support/studio.ts";

const IMAGES = path.join(DATA, "images");
const PHOTOS = readdirSync(IMAGES).filter((n) => n.endsWith(".jpg")).sort().slice(0, 2);
const JPEG = readFileSync(path.join(IMAGES, PHOTOS[0]));
const T = { timeout: 180_000 };
const FILE_DATA = { _type: "gradio.FileData" };

let captioner: Captioner;
const cleanups: (() => Promise<void>)[] = [];

/** The studio on a random port; greedy, short captions keep the test light. */
async function serve(overrides: Partial<ServerConfig> = {}): Promise<{ studio: StudioApp; url: string }> {
  const studio = createApp({ captioner, config: makeConfig({ port: 0, beam: 1, maxLen: 8, ...overrides }) });
  cleanups.push(() => studio.close());
  return { studio, url: await listen(studio.httpServer) };
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  assert.ok(addr && typeof addr === "object");
  return `http://127.0.0.1:${addr.port}`;
}

/**
 * The Gradio routes alone, over a queue with one slot that a caption holds until `release()`
 * (its first step waits on a promise): whatever is submitted meanwhile waits, deterministically.
 * With `warm`, one prediction runs first, so the server has a time per caption for its ETAs.
 */
async function heldQueue(overrides: Partial<ServerConfig> = {}, { heartbeatMs = 25, warm = false } = {}) {
  const config = makeConfig({ port: 0, beam: 1, maxLen: 8, concurrency: 1, ...overrides });
  const jobs = createCaptionJobs({ captioner, config });
  const results = new ResultStore({ pixelLimit: config.pixelLimit });
  const server = http.createServer(express().use(gradioRouter({ config, jobs, results }, { sessions: { heartbeatMs } })));
  const url = await listen(server);
  if (warm) assert.equal((await call(url, [`data:image/jpeg;base64,${JPEG.toString("base64")}`])).at(-1)?.event, "complete");
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const holder = jobs.run(JPEG, jobs.options({}), { onStep: () => gate });
  await waitFor(() => jobs.stats.running === 1);
  const close = async () => {
    open();
    await holder.catch(() => undefined);
    await jobs.close(0);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  cleanups.push(close);
  return { url, jobs, release: () => (open(), holder) };
}

const post = (url: string, body: unknown, raw = false) =>
  fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: raw ? (body as string) : JSON.stringify(body) });

async function upload(url: string, bytes: Uint8Array, name = "photo.jpg"): Promise<string> {
  const form = new FormData();
  form.append("files", new Blob([new Uint8Array(bytes)]), name);
  const res = await fetch(`${url}/gradio_api/upload`, { method: "POST", body: form });
  assert.equal(res.status, 200);
  const paths = (await res.json()) as string[];
  assert.equal(paths.length, 1);
  return paths[0];
}

interface SseEvent {
  event: string;
  data: unknown;
}

/** The server-sent events of a response, parsed, as they arrive. */
async function* sse(res: Response): AsyncGenerator<SseEvent> {
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body!) {
    buf += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      yield { event, data: data === "" ? undefined : JSON.parse(data) };
    }
  }
}

async function allEvents(res: Response): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of sse(res)) out.push(e);
  return out;
}

/** The curl flow: POST the inputs, GET the event's stream to its end. */
async function call(url: string, data: unknown[]): Promise<SseEvent[]> {
  const res = await post(`${url}/gradio_api/call/predict`, { data });
  assert.equal(res.status, 200, await res.clone().text());
  const { event_id } = (await res.json()) as { event_id: string };
  assert.match(event_id, /^[0-9a-f]{32}$/);
  return allEvents(await fetch(`${url}/gradio_api/call/predict/${event_id}`));
}

async function studioCaption(url: string, photo: Uint8Array): Promise<string> {
  const res = await fetch(`${url}/api/caption`, { method: "POST", body: new Uint8Array(photo), headers: { "Content-Type": "image/jpeg" } });
  return ((await res.json()) as { caption: string }).caption;
}

before(async () => {
  captioner = await loadCaptioner();
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  captioner?.dispose();
});

describe("Gradio over plain HTTP", () => {
  let url: string;
  before(async () => {
    ({ url } = await serve());
  });

  it("GET /config and GET /gradio_api/info describe one endpoint, /predict", T, async () => {
    const config = (await (await fetch(`${url}/config`)).json()) as Record<string, any>;
    assert.equal(config.protocol, "sse_v3");
    assert.equal(config.api_prefix, "/gradio_api");
    assert.equal(config.root, url, "the root is the URL the client used");
    assert.match(config.version, /^5\./);
    assert.equal(config.dependencies.length, 1);
    const [dep] = config.dependencies;
    assert.equal(dep.api_name, "predict");
    assert.equal(dep.id, 0);
    assert.equal(dep.queue, true);
    assert.equal(dep.types.generator, true);
    const type = (id: number) => config.components.find((c: { id: number }) => c.id === id)?.type;
    assert.deepEqual(dep.inputs.map(type), ["image"]);
    assert.deepEqual(dep.outputs.map(type), ["textbox", "image"]);
    const info = (await (await fetch(`${url}/gradio_api/info?serialize=False`)).json()) as Record<string, any>;
    assert.deepEqual(Object.keys(info.named_endpoints), ["/predict"]);
    const predict = info.named_endpoints["/predict"];
    assert.deepEqual(predict.parameters.map((p: { component: string }) => p.component), ["Image"]);
    assert.deepEqual(predict.returns.map((p: { component: string }) => p.component), ["Textbox", "Image"]);
  });

  it("upload, POST /gradio_api/call/predict, then GET its stream: one `generating` per word, then `complete`", T, async () => {
    const uploaded = await upload(url, JPEG);
    assert.match(uploaded, /^upload\/[0-9a-f]{32}\/photo\.jpg$/);
    const events = await call(url, [{ path: uploaded, meta: FILE_DATA }]);
    const generating = events.filter((e) => e.event === "generating").map((e) => e.data as [string, null]);
    const last = events.at(-1)!;
    assert.equal(last.event, "complete", JSON.stringify(events));
    assert.deepEqual(new Set(events.map((e) => e.event)), new Set(["generating", "complete"]));
    const [caption, picture] = last.data as [string, { url: string; path: string; meta: object }];
    assert.equal(caption, await studioCaption(url, JPEG));
    for (let i = 0; i < generating.length; i++) {
      assert.equal(generating[i][1], null);
      assert.equal(generating[i][0].split(" ").length, i + 1, "greedy: one more word each time");
    }
    assert.equal(generating.at(-1)![0], caption);
    assert.deepEqual(picture.meta, FILE_DATA);
    const png = await fetch(picture.url);
    assert.equal(png.headers.get("content-type"), "image/png");
    assert.equal((await sharp(Buffer.from(await png.arrayBuffer())).metadata()).format, "png");
    // gradio_client fetches files as <root>/gradio_api/file=<path>, ignoring `url`.
    assert.equal((await fetch(`${url}/gradio_api/file=${picture.path}`)).status, 200);
  });

  it("takes the image as a base64 data URL, and keyword bodies at /call/v2/predict", T, async () => {
    const dataUrl = `data:image/jpeg;base64,${JPEG.toString("base64")}`;
    const caption = await studioCaption(url, JPEG);
    const captionOf = (events: SseEvent[]) => (events.at(-1)?.data as string[])[0];
    assert.equal(captionOf(await call(url, [dataUrl])), caption);
    assert.equal(captionOf(await call(url, [{ url: dataUrl, meta: FILE_DATA }])), caption);
    const res = await post(`${url}/gradio_api/call/v2/predict`, { image: { path: await upload(url, JPEG), meta: FILE_DATA } });
    const { event_id } = (await res.json()) as { event_id: string };
    const events = await allEvents(await fetch(`${url}/gradio_api/call/v2/predict/${event_id}`));
    assert.equal(captionOf(events), caption);
  });

  it("serves uploads back at /gradio_api/file=, and takes that URL as input (handle_file(url))", T, async () => {
    const uploaded = await upload(url, JPEG, "dog photo (1).jpg");
    assert.match(uploaded, /\/dog_photo_1_.jpg$/, "the name is made safe");
    const fileUrl = `${url}/gradio_api/file=${uploaded}`;
    const back = await fetch(fileUrl);
    assert.equal(back.headers.get("content-type"), "image/jpeg");
    assert.deepEqual(Buffer.from(await back.arrayBuffer()), JPEG);
    const events = await call(url, [{ path: fileUrl, url: fileUrl, orig_name: "dog.jpg", meta: FILE_DATA }]);
    assert.equal(events.at(-1)?.event, "complete");
    // Anything that is not an image comes back as a download, never inline.
    const text = await fetch(`${url}/gradio_api/file=${await upload(url, Buffer.from("<script>alert(1)</script>"), "x.html")}`);
    assert.equal(text.headers.get("content-type"), "application/octet-stream");
    assert.match(text.headers.get("content-disposition") ?? "", /^attachment/);
  });

  it("GET /gradio_api/heartbeat/<session> streams ALIVE", T, async () => {
    const ctl = new AbortController();
    const res = await fetch(`${url}/gradio_api/heartbeat/abc123`, { signal: ctl.signal });
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /^data: ALIVE\n\n/);
    ctl.abort();
  });
});

describe("the queue protocol, through the studio's queue", () => {
  it("join, then queue/data: estimation, process_starts, generating edits, process_completed, close_stream", T, async () => {
    const { url, release } = await heldQueue({}, { warm: true });
    const join = await post(`${url}/gradio_api/queue/join`, { data: [{ path: await upload(url, JPEG), meta: FILE_DATA }], fn_index: 0, session_hash: "s1", event_data: null, trigger_id: null });
    assert.equal(join.status, 200);
    const { event_id } = (await join.json()) as { event_id: string };
    const messages: Record<string, any>[] = [];
    const reading = (async () => {
      for await (const e of sse(await fetch(`${url}/gradio_api/queue/data?session_hash=s1`))) messages.push(e.data as Record<string, any>);
    })();
    await waitFor(() => messages.some((m) => m.msg === "estimation"));
    await waitFor(() => messages.some((m) => m.msg === "heartbeat"), 5000);
    await release();
    await reading;
    const seq = messages.map((m) => m.msg).filter((m) => m !== "heartbeat");
    assert.deepEqual(seq.slice(0, 2), ["estimation", "process_starts"]);
    assert.deepEqual(seq.slice(-2), ["process_completed", "close_stream"]);
    assert.ok(seq.slice(2, -2).every((m) => m === "process_generating") && seq.length > 5, seq.join(","));
    const estimation = messages.find((m) => m.msg === "estimation")!;
    assert.deepEqual([estimation.event_id, estimation.rank, estimation.queue_size], [event_id, 0, 1]);
    assert.ok(estimation.rank_eta > 0, `an ETA from the time the first caption took: ${estimation.rank_eta}`);
    // sse_v3: the first generating message has whole values, the next ones edits to them.
    const generating = messages.filter((m) => m.msg === "process_generating");
    assert.equal(typeof generating[0].output.data[0], "string");
    let caption = generating[0].output.data[0] as string;
    for (const g of generating.slice(1)) {
      const [edits, pictureEdits] = g.output.data as [[string, [], string][], unknown[]];
      assert.deepEqual(pictureEdits, [], "the picture stays empty while generating");
      assert.equal(edits.length, 1);
      assert.equal(edits[0][0], "append", "greedy captions only grow");
      caption += edits[0][2];
    }
    const done = messages.find((m) => m.msg === "process_completed")!;
    assert.equal(done.success, true);
    assert.equal(done.output.data[0], caption, "the edits add up to the caption");
    assert.deepEqual(done.output.data[1].meta, FILE_DATA);
  });

  it("heartbeats on a /call stream while the event waits; /gradio_api/cancel stops it with an `error` event", T, async () => {
    const { url, jobs } = await heldQueue();
    const res = await post(`${url}/gradio_api/call/predict`, { data: [`data:image/jpeg;base64,${JPEG.toString("base64")}`] });
    const { event_id } = (await res.json()) as { event_id: string };
    await waitFor(() => jobs.stats.waiting === 1);
    const events: SseEvent[] = [];
    const reading = (async () => {
      for await (const e of sse(await fetch(`${url}/gradio_api/call/predict/${event_id}`))) events.push(e);
    })();
    await waitFor(() => events.filter((e) => e.event === "heartbeat").length >= 2, 5000);
    assert.deepEqual((await (await post(`${url}/gradio_api/cancel`, { event_id, session_hash: "x", fn_index: 0 })).json()), { success: true });
    await reading;
    const last = events.at(-1)!;
    assert.equal(last.event, "error");
    assert.match((last.data as { error: string }).error, /cancelled/);
    assert.equal(jobs.stats.waiting, 0);
  });

  it("a client that drops its stream cancels its waiting event", T, async () => {
    const { url, jobs } = await heldQueue();
    const join = await post(`${url}/gradio_api/queue/join`, { data: [{ path: await upload(url, JPEG), meta: FILE_DATA }], fn_index: 0, session_hash: "leaver" });
    assert.equal(join.status, 200);
    await waitFor(() => jobs.stats.waiting === 1);
    const ctl = new AbortController();
    const res = await fetch(`${url}/gradio_api/queue/data?session_hash=leaver`, { signal: ctl.signal });
    await res.body!.getReader().read();
    ctl.abort();
    await waitFor(() => jobs.stats.waiting === 0);
  });

  it("a full queue answers 503 (Gradio's 'queue full') with Retry-After", T, async () => {
    const { url } = await heldQueue({ maxQueue: 0 });
    const res = await post(`${url}/gradio_api/call/predict`, { data: [`data:image/jpeg;base64,${JPEG.toString("base64")}`] });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "2");
    assert.equal(((await res.json()) as { error: string }).error, "busy");
    const join = await post(`${url}/gradio_api/queue/join`, { data: [`data:image/jpeg;base64,${JPEG.toString("base64")}`], fn_index: 0, session_hash: "s" });
    assert.equal(join.status, 503);
  });

  it("a queue that is shutting down refuses a join with the caption path's own words", T, async () => {
    const { url, jobs, release } = await heldQueue();
    const closed = jobs.close(60_000); // refuses new work at once, and stops the held caption
    const held = release().catch(() => undefined);
    const res = await post(`${url}/gradio_api/call/predict`, { data: [`data:image/jpeg;base64,${JPEG.toString("base64")}`] });
    const body = (await res.json()) as { detail: string; error: string };
    assert.equal(res.status, 503);
    assert.equal(body.error, "shutting_down");
    await assert.rejects(jobs.run(JPEG, jobs.options({})), (e: Error) => e.message === body.detail);
    await Promise.all([closed, held]);
  });
});

describe("bad input: HTTP 4xx JSON, or an `error` event, never a crash", () => {
  let url: string;
  before(async () => {
    ({ url } = await serve({ uploadLimit: 200_000 }));
  });

  const refused = async (res: Response, status: number, code: string, pattern: RegExp) => {
    const text = await res.text();
    assert.equal(res.status, status, text);
    assert.match(res.headers.get("content-type") ?? "", /json/);
    const body = JSON.parse(text) as { detail: string; error: string };
    assert.equal(body.error, code);
    assert.match(body.detail, pattern);
  };
  const callWith = (data: unknown) => post(`${url}/gradio_api/call/predict`, { data });

  it("a body that is not JSON, or not an object", T, async () => {
    await refused(await post(`${url}/gradio_api/call/predict`, "{data: [", true), 400, "bad_request", /not valid JSON/);
    await refused(await post(`${url}/gradio_api/call/predict`, [1, 2]), 400, "bad_request", /JSON object/);
    await refused(await fetch(`${url}/gradio_api/call/predict`, { method: "POST" }), 400, "bad_request", /JSON object|"data" must be an array/);
  });
  it("no data, or the wrong number of inputs", T, async () => {
    await refused(await post(`${url}/gradio_api/call/predict`, {}), 400, "bad_request", /"data" must be an array/);
    await refused(await callWith([]), 400, "bad_request", /takes 1 input/);
    await refused(await callWith([null, null]), 400, "bad_request", /takes 1 input/);
    await refused(await callWith([null]), 400, "bad_request", /no image/);
    await refused(await callWith([42]), 400, "bad_request", /FileData object or a data URL/);
    await refused(await callWith([{ meta: FILE_DATA }]), 400, "bad_request", /no path or url/);
    await refused(await post(`${url}/gradio_api/call/v2/predict`, { image: null, beam: 3 }), 400, "bad_request", /unknown argument "beam"/);
  });
  it("paths that are not uploads: nothing is read from disk", T, async () => {
    for (const p of ["../../package.json", "/etc/passwd", "upload/00000000000000000000000000000000/x.jpg", "C:\\Windows\\win.ini"]) {
      await refused(await callWith([{ path: p, meta: FILE_DATA }]), 404, "not_found", /no such uploaded file/);
    }
  });
  it("URLs of other hosts or other paths: never fetched (SSRF)", T, async () => {
    for (const u of ["http://169.254.169.254/latest/meta-data/", "https://example.com/dog.jpg", `${url}/api/health`, "file:///etc/passwd", "ftp://example.com/x.jpg"]) {
      await refused(await callWith([{ path: u, url: u, meta: FILE_DATA }]), 400, "bad_request", /does not download images from URLs/);
    }
  });
  it("data URLs that are not base64, or too large", T, async () => {
    await refused(await callWith(["data:text/plain,hello"]), 400, "bad_request", /base64/);
    await refused(await callWith(["data:image/png;base64,%%%%"]), 400, "bad_request", /not valid base64/);
    const big = Buffer.alloc(300_000, 1).toString("base64");
    await refused(await callWith([`data:image/jpeg;base64,${big}`]), 413, "too_large", /limit is 0\.2 MB/);
  });
  it("bytes that are not a usable image: an `error` event with the studio's message", T, async () => {
    const text = await call(url, [`data:image/jpeg;base64,${Buffer.from("hello, I am not a photo").toString("base64")}`]);
    assert.deepEqual(text.map((e) => e.event), ["error"]);
    assert.match((text[0].data as { error: string }).error, /not an image/);
    const truncated = await call(url, [{ path: await upload(url, JPEG.subarray(0, Math.floor(JPEG.length * 0.6))), meta: FILE_DATA }]);
    assert.equal(truncated.at(-1)?.event, "error");
    assert.match((truncated.at(-1)!.data as { error: string }).error, /truncated|corrupt/i);
  });
  it("unknown endpoints and events", T, async () => {
    await refused(await post(`${url}/gradio_api/call/translate`, { data: [] }), 404, "not_found", /no such endpoint: \/translate/);
    await refused(await fetch(`${url}/gradio_api/call/predict/0123456789abcdef0123456789abcdef`), 404, "not_found", /no such event/);
    await refused(await fetch(`${url}/gradio_api/nope`), 404, "not_found", /no such endpoint/);
    // An event's stream can be read once; then it is gone.
    const res = await callWith([`data:image/jpeg;base64,${JPEG.toString("base64")}`]);
    const { event_id } = (await res.json()) as { event_id: string };
    await allEvents(await fetch(`${url}/gradio_api/call/predict/${event_id}`));
    await refused(await fetch(`${url}/gradio_api/call/predict/${event_id}`), 404, "not_found", /no such event/);
  });
  it("queue/join without a session hash, or for a function that does not exist; queue/data for an unknown session", T, async () => {
    const image = `data:image/jpeg;base64,${JPEG.toString("base64")}`;
    await refused(await post(`${url}/gradio_api/queue/join`, { data: [image], fn_index: 0 }), 400, "bad_request", /Session hash/);
    await refused(await post(`${url}/gradio_api/queue/join`, { data: [image], fn_index: 0, session_hash: "a b<c>" }), 400, "bad_request", /Session hash/);
    await refused(await post(`${url}/gradio_api/queue/join`, { data: [image], fn_index: 3, session_hash: "s" }), 404, "not_found", /fn_index 3/);
    const events = await allEvents(await fetch(`${url}/gradio_api/queue/data?session_hash=never-joined`));
    assert.deepEqual(events.map((e) => (e.data as { msg: string }).msg), ["unexpected_error"]);
    assert.equal((events[0].data as { session_not_found: boolean }).session_not_found, true);
  });
  it("uploads: none, the wrong field, too large, not multipart", T, async () => {
    const upload = (body: BodyInit, headers?: HeadersInit) => fetch(`${url}/gradio_api/upload`, { method: "POST", body, headers });
    await refused(await upload(new FormData()), 400, "bad_request", /no files/);
    const wrong = new FormData();
    wrong.append("image", new Blob([JPEG]), "p.jpg");
    await refused(await upload(wrong), 400, "bad_request", /field "files"/);
    const big = new FormData();
    big.append("files", new Blob([Buffer.alloc(300_000)]), "big.jpg");
    await refused(await upload(big), 413, "too_large", /file too large/);
    await refused(await upload(JPEG, { "Content-Type": "image/jpeg" }), 400, "bad_request", /multipart/);
  });
  it("too large reads the same here as on /api/caption", T, async () => {
    const api = await fetch(`${url}/api/caption`, { method: "POST", body: new Uint8Array(300_000), headers: { "Content-Type": "image/jpeg" } });
    assert.equal(api.status, 413);
    const { message } = (await api.json()) as { message: string };
    const big = new FormData();
    big.append("files", new Blob([Buffer.alloc(300_000)]), "big.jpg");
    const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    await refused(await fetch(`${url}/gradio_api/upload`, { method: "POST", body: big }), 413, "too_large", new RegExp(`^${escape(message)}$`));
    await refused(await callWith([`data:image/jpeg;base64,${Buffer.alloc(300_000).toString("base64")}`]), 413, "too_large", new RegExp(`^${escape(message)}$`));
  });
  it("files that do not exist, and paths that try to leave", T, async () => {
    for (const p of ["upload/0123456789abcdef0123456789abcdef/x.jpg", "..%2F..%2Fpackage.json", "result/0123456789abcdef0123456789abcdef/caption.png", "%2Fetc%2Fpasswd"]) {
      await refused(await fetch(`${url}/gradio_api/file=${p}`), 404, "not_found", /no such file/);
    }
    await refused(await fetch(`${url}/gradio_api/file=%E0%A4%A`), 400, "bad_request", /bad file path/);
  });
  it("the server still captions after all that", T, async () => {
    assert.equal((await call(url, [`data:image/jpeg;base64,${JPEG.toString("base64")}`])).at(-1)?.event, "complete");
  });
});

describe("the /api page", () => {
  it("shows JavaScript, Python and curl snippets for the Gradio endpoint", T, async () => {
    const { url } = await serve();
    const page = await (await fetch(`${url}/api`)).text();
    assert.match(page, /@gradio\/client/);
    assert.match(page, /from gradio_client import Client, handle_file/);
    assert.match(page, /gradio_api\/call\/predict/);
    assert.match(page, new RegExp(`Client\\.connect\\(&#34;${url}/&#34;\\)|Client\\.connect\\("${url}/"\\)`));
  });
});

describe("parts", () => {
  it("diffValue: no edit, an append, or a replacement", () => {
    assert.deepEqual(diffValue("a dog", "a dog"), []);
    assert.deepEqual(diffValue(null, null), []);
    assert.deepEqual(diffValue("a dog", "a dog runs"), [["append", [], " runs"]]);
    assert.deepEqual(diffValue("a dog runs", "a cat"), [["replace", [], "a cat"]]);
    assert.deepEqual(diffValue(null, { path: "x" }), [["replace", [], { path: "x" }]]);
  });

  it("FileStore: bounded by count, bytes and age; only its own paths resolve", async () => {
    const store = new FileStore({ maxFiles: 2, maxBytes: 10, ttlMs: 50 });
    const a = store.put(new Uint8Array(4), "a.jpg");
    const b = store.put(new Uint8Array(4), "../../b.jpg");
    assert.match(b, /^upload\/[0-9a-f]{32}\/b\.jpg$/);
    assert.ok(store.get(a) && store.get(b));
    const c = store.put(new Uint8Array(4), "c.jpg"); // 12 bytes, 3 files: the oldest goes
    assert.equal(store.get(a), undefined);
    assert.deepEqual(store.stats, { files: 2, bytes: 8 });
    assert.ok(store.get(`/${c}`), "a leading slash is fine");
    assert.equal(store.get(c.replace(/\/c\.jpg$/, "/../../etc/passwd")), undefined);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(store.get(c), undefined, "expired");
    assert.deepEqual(store.stats, { files: 0, bytes: 0 });
  });

  it("readInput: uploads, own file URLs and data URLs; never another host", () => {
    const files = new FileStore({ maxFiles: 4, maxBytes: 1000, ttlMs: 60_000 });
    const sources = { files, uploadLimit: 100 };
    const p = files.put(Uint8Array.from([1, 2, 3]), "x.jpg");
    assert.deepEqual([...readInput({ path: p, meta: FILE_DATA }, sources)], [1, 2, 3]);
    assert.deepEqual([...readInput(p, sources)], [1, 2, 3]);
    assert.deepEqual([...readInput({ url: `https://anywhere.example/gradio_api/file=${encodeURIComponent(p)}` }, sources)], [1, 2, 3]);
    assert.deepEqual([...readInput({ path: "gone", url: "data:image/png;base64,AQID" }, sources)], [1, 2, 3], "url when the path is not ours");
    assert.throws(() => readInput({ url: "http://10.0.0.1/gradio_api/upload" }, sources), /does not download/);
    assert.throws(() => readInput(`data:image/png;base64,${Buffer.alloc(200).toString("base64")}`, sources), /too large/);
  });
});
