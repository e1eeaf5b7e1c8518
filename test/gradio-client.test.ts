/**
 * Gradio compatibility, through the real `@gradio/client` package from npm (no mocks): the
 * studio on a random port with the shipped model, and code written for a Gradio app pointed at it.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import { Client, handle_file } from "@gradio/client";
import sharp from "sharp";
import { tf } from "../model/tf.ts";
import type { StudioApp } from "../server/app.ts";
import type { ServerConfig } from "../server/config.ts";
import { DATA, studioFixture, waitFor } from "./support/studio.ts";

const IMAGES = path.join(DATA, "images");
const PHOTOS = readdirSync(IMAGES).filter((n) => n.endsWith(".jpg")).sort().slice(0, 4);
const JPEG = readFileSync(path.join(IMAGES, PHOTOS[0]));
const T = { timeout: 180_000 };

interface FileData {
  path: string;
  url: string;
  orig_name: string;
  mime_type: string;
  meta: { _type: string };
}

/** Greedy and short captions keep the test light. */
const fixture = studioFixture({ beam: 1, maxLen: 12 });

/** A studio on a random port; its URL ends in "/" (Gradio's root). */
async function serve(overrides: Partial<ServerConfig> = {}): Promise<{ studio: StudioApp; url: string }> {
  const { studio, url } = await fixture.serve(overrides);
  return { studio, url: `${url}/` };
}

async function connect(url: string, events: ("data" | "status")[] = ["data"]): Promise<Client> {
  return fixture.track(await Client.connect(url, { events }));
}

/** What the studio's own HTTP API answers for the same photo (same server defaults). */
async function studioCaption(url: string, photo: Buffer): Promise<string> {
  const res = await fetch(new URL("api/caption", url), { method: "POST", body: new Uint8Array(photo), headers: { "Content-Type": "image/jpeg" } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { caption: string }).caption;
}

describe("@gradio/client against the studio", () => {
  let url: string;
  let studio: StudioApp;
  before(async () => {
    ({ url, studio } = await serve());
  });

  it("view_api() lists one endpoint, /predict: an image in; the caption and the attention picture out", T, async () => {
    const client = await connect(url);
    const api = await client.view_api();
    assert.deepEqual(Object.keys(api.named_endpoints), ["/predict"]);
    const predict = api.named_endpoints["/predict"];
    assert.deepEqual(predict.parameters.map((p: { parameter_name: string; component: string }) => [p.parameter_name, p.component]), [["image", "Image"]]);
    assert.equal(predict.parameters[0].parameter_has_default, false);
    assert.deepEqual(predict.returns.map((r: { label: string; component: string }) => [r.label, r.component]), [["Caption", "Textbox"], ["Attention", "Image"]]);
    assert.equal(client.config?.protocol, "sse_v3");
    assert.equal(client.config?.api_prefix, "/gradio_api");
  });

  it("predict('/predict', …) returns the studio's caption and the result picture", T, async () => {
    const client = await connect(url);
    const result = await client.predict("/predict", [handle_file(JPEG)]);
    const [caption, picture] = result.data as [string, FileData];
    assert.equal(caption, await studioCaption(url, JPEG), "the same caption as POST /api/caption");
    for (const w of caption.split(" ")) assert.ok(fixture.captioner.words.includes(w), `${w} is in the vocabulary`);
    assert.equal(picture.meta._type, "gradio.FileData");
    assert.equal(picture.mime_type, "image/png");
    assert.ok(picture.url.startsWith(`${url}gradio_api/file=`), picture.url);
    const png = await fetch(picture.url);
    assert.equal(png.status, 200);
    assert.equal(png.headers.get("content-type"), "image/png");
    const meta = await sharp(Buffer.from(await png.arrayBuffer())).metadata();
    assert.equal(meta.format, "png");
    assert.ok(meta.width! > 300, "the photo and one tile per word");
  });

  it("takes keyword arguments and local file paths, as Gradio apps do", T, async () => {
    const client = await connect(url);
    const file = path.join(IMAGES, PHOTOS[1]);
    const result = await client.predict("/predict", { image: handle_file(file) });
    assert.equal((result.data as [string])[0], await studioCaption(url, readFileSync(file)));
  });

  it("submit() yields the partial captions in order, then the caption with its picture", T, async () => {
    const client = await connect(url, ["data", "status"]);
    const final = await studioCaption(url, JPEG);
    const partials: string[] = [];
    const pictures: (FileData | null)[] = [];
    const stages: string[] = [];
    for await (const msg of client.submit("/predict", [handle_file(JPEG)])) {
      if (msg.type === "data") {
        const [caption, picture] = msg.data as [string, FileData | null];
        partials.push(caption);
        pictures.push(picture);
      } else if (msg.type === "status") {
        stages.push(msg.stage);
      }
    }
    assert.equal(partials.at(-1), final, "the last message carries the caption");
    assert.ok(partials.length >= 3, `one message per word, then the result: ${JSON.stringify(partials)}`);
    // Greedy decoding: each partial caption is the previous one plus one word.
    const growing = partials.slice(0, -1);
    assert.equal(growing[0].split(" ").length, 1);
    for (let i = 1; i < growing.length; i++) {
      assert.ok(growing[i].startsWith(`${growing[i - 1]} `), `${JSON.stringify(growing[i - 1])} then ${JSON.stringify(growing[i])}`);
      assert.equal(growing[i].split(" ").length, i + 1);
    }
    assert.ok(final.startsWith(growing.at(-1)!));
    assert.ok(pictures.slice(0, -1).every((p) => p === null), "no picture until the caption is done");
    assert.equal(pictures.at(-1)?.meta._type, "gradio.FileData");
    assert.ok(stages.includes("pending") && stages.includes("generating"), stages.join(","));
    assert.equal(stages.at(-1), "complete");
  });

  it("reports queue positions from the studio's own queue", T, async () => {
    const { url: single, studio: one } = await serve({ concurrency: 1 });
    // Hold the only slot: the first step of this caption waits until `open()`.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const holder = one.jobs.run(JPEG, one.jobs.options({}), { onStep: () => gate });
    await waitFor(() => one.jobs.stats.running === 1);
    const client = await connect(single, ["data", "status"]);
    const runs = PHOTOS.slice(0, 2).map(async (name) => {
      const queue: { position: number; size: number }[] = [];
      let caption = "";
      for await (const msg of client.submit("/predict", [handle_file(readFileSync(path.join(IMAGES, name)))])) {
        if (msg.type === "status" && msg.stage === "pending" && msg.original_msg !== "process_starts" && msg.position !== undefined) {
          queue.push({ position: msg.position, size: msg.size! });
        }
        if (msg.type === "data") caption = (msg.data as [string])[0];
      }
      return { queue, caption };
    });
    await waitFor(() => one.jobs.stats.waiting === 2);
    open();
    await holder;
    const done = (await Promise.all(runs)).sort((a, b) => a.queue.length - b.queue.length);
    assert.ok(done.every((d) => d.caption.length > 0), "both are captioned");
    // Gradio's ranks count from 0 (next in line); the size is how many wait.
    assert.deepEqual(done[0].queue, [{ position: 0, size: 1 }], "the first in line");
    assert.deepEqual(done[1].queue, [{ position: 1, size: 2 }, { position: 0, size: 1 }], "the second moves up");
  });

  it("bad input: predict() rejects with the studio's message, and the server carries on", T, async () => {
    const client = await connect(url);
    await assert.rejects(client.predict("/predict", [handle_file(Buffer.from("hello, I am not a photo\n"))]), /not an image/);
    await assert.rejects(client.predict("/predict", [JPEG.subarray(0, 2000)]), /truncated|corrupt/i);
    await assert.rejects(client.predict("/predict", [handle_file("http://169.254.169.254/latest/meta-data/photo.jpg")]), /does not download images from URLs/);
    const ok = await client.predict("/predict", [handle_file(JPEG)]);
    assert.equal((ok.data as [string])[0], await studioCaption(url, JPEG));
  });

  it("leaves no jobs running and no tensors behind", T, async () => {
    const client = await connect(url);
    await client.predict("/predict", [handle_file(JPEG)]);
    const before = tf.memory().numTensors;
    for (const name of PHOTOS.slice(0, 2)) await client.predict("/predict", [handle_file(readFileSync(path.join(IMAGES, name)))]);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(studio.jobs.stats.running + studio.jobs.stats.waiting, 0);
  });
});
