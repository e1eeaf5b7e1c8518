/**
 * The upload path under hostile input and sustained load, against the real server (createApp on
 * a random port, real model):
 *   - fuzz: FUZZ_INPUTS generated or mutated files (test/fuzz-inputs.ts), 8 at a time, as raw
 *     bodies, multipart uploads and Socket.IO captions. Every one must get a caption or a 4xx with
 *     a known code; the server stays up, memory stays bounded, and no tensor is left behind.
 *   - soak: SOAK_CAPTIONS captions at concurrency 8 (sockets and HTTP, greedy and beam), sampling
 *     RSS and the tensor count whenever the server is idle: both flat, no request lost.
 * The full runs (10,000 captions; 20,000 fuzz inputs against `npm start`) are bench/server-soak.ts
 * and bench/server-fuzz.ts.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { tf } from "../model/tf.ts";
import type { StudioApp } from "../server/app.ts";
import { forgedHeaders, viaHttp as http, viaSocket as socket, type Outcome } from "./fuzz-client.ts";
import { fuzzInputs, fuzzSeeds, type FuzzInput } from "./fuzz-inputs.ts";
import { connected, DATA, openClient, studioFixture, type Client } from "./support/studio.ts";

const FUZZ_INPUTS = 2400;
const SOAK_CAPTIONS = 320;
const WORKERS = 8;
const IMAGES = path.join(DATA, "images");
const PHOTOS = readdirSync(IMAGES).filter((n) => n.endsWith(".jpg")).sort().slice(0, 16).map((n) => readFileSync(path.join(IMAGES, n)));
// "busy" is not among them: the queue here is deep enough for every worker.
const REFUSALS = new Set(["bad_image", "bad_request", "too_large"]);
const viaSocket = (s: Client, image: Uint8Array, opts: Record<string, unknown>) => socket(s, image, opts, REFUSALS);
const viaHttp = (url: string, image: Uint8Array, query: string, multipart: boolean, headers: Record<string, string> = {}): Promise<Outcome> => http(url, image, query, multipart, REFUSALS, headers);
const mb = (bytes: number) => Math.round(bytes / 1048576);

// No rate limit: one address sends everything here.
const { serve, track } = studioFixture({ rateLimit: 0, maxQueue: 64 });

async function socketTo(url: string): Promise<Client> {
  const s = track(openClient(url));
  await connected(s);
  return s;
}

async function idle(studio: StudioApp): Promise<void> {
  while (studio.jobs.stats.running + studio.jobs.stats.waiting + studio.jobs.stats.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
}

describe("fuzzing the upload path", () => {
  it(`${FUZZ_INPUTS} hostile files: each gets a caption or a 4xx, the server stays up, memory stays bounded`, { timeout: 600_000 }, async () => {
    const { studio, url } = await serve();
    const seeds = await fuzzSeeds(PHOTOS.slice(0, 2));
    const perWorker = await Promise.all(Array.from({ length: WORKERS }, () => socketTo(url))); // a client has one caption at a time
    // Warm up, then take the baseline.
    assert.deepEqual(await viaHttp(url, PHOTOS[0], "beam=1&maxLen=4", false), { ok: true });
    await idle(studio);
    const tensors = tf.memory().numTensors;
    const rssStart = process.memoryUsage().rss;
    let rssPeak = rssStart;
    const inputs = fuzzInputs(seeds, FUZZ_INPUTS, 20251125);
    const counts = { tried: 0, captioned: 0, refused: 0 };
    const codes = new Map<string, number>();
    const failures: string[] = [];
    const t0 = performance.now();

    async function worker(w: number): Promise<void> {
      for (let next = inputs.next(); !next.done; next = inputs.next()) {
        const { kind, bytes }: FuzzInput = next.value;
        const n = counts.tried++;
        const route = n % 10 === 3 ? "socket" : n % 10 === 7 ? "multipart" : "raw";
        const out = route === "socket" ? await viaSocket(perWorker[w], bytes, { beam: 1, maxLen: 4 }) : await viaHttp(url, bytes, `beam=${1 + (n % 2)}&maxLen=4`, route === "multipart", forgedHeaders(n));
        if (out.ok) counts.captioned++;
        else if ("refused" in out) {
          counts.refused++;
          codes.set(out.refused, (codes.get(out.refused) ?? 0) + 1);
        } else failures.push(`#${n} ${kind} (${bytes.length} B, ${route}, worker ${w}): ${out.failure}`);
        if (n % 25 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      }
    }
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    await idle(studio);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    const health = await fetch(`${url}/api/health`);
    console.log(
      `fuzz: ${counts.tried} inputs in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${counts.captioned} captioned, ${counts.refused} refused (${[...codes].map(([c, k]) => `${c} ${k}`).join(", ")}), ` +
        `${failures.length} failures; process RSS ${mb(rssStart)} MB at start, peak ${mb(rssPeak)} MB; tensors ${tensors} -> ${tf.memory().numTensors}`,
    );
    assert.ok(counts.tried >= 2000);
    assert.deepEqual(failures, [], "every input got a caption or a 4xx");
    assert.equal(health.status, 200, "the server is up");
    assert.ok(perWorker.every((s) => s.connected), "no fuzzing socket was dropped");
    assert.equal(tf.memory().numTensors, tensors, "no tensors left behind");
    assert.ok(rssPeak - rssStart < 1536 * 1048576, `memory bounded: peak ${mb(rssPeak)} MB vs ${mb(rssStart)} MB at start`);
    assert.ok(counts.refused > counts.tried / 2, "most inputs are refused (cheaply, at the header)");
    assert.ok(counts.captioned > 0, "some mutated files still decode and get a caption");
  });
});

describe("soak", () => {
  it(`${SOAK_CAPTIONS} captions at concurrency ${WORKERS}: RSS and tensor count flat, none lost`, { timeout: 600_000 }, async () => {
    const { studio, url } = await serve({ concurrency: 2 });
    const clients = await Promise.all(Array.from({ length: WORKERS }, () => socketTo(url)));
    const samples: { rss: number; tensors: number }[] = [];
    const lost: string[] = [];
    let done = 0;
    let busy = 0;
    const every = SOAK_CAPTIONS / 8;
    const t0 = performance.now();
    for (let start = 0; start < SOAK_CAPTIONS; start += every) {
      let next = start;
      await Promise.all(
        clients.map(async (s, c) => {
          while (next < start + every) {
            const i = next++;
            const image = PHOTOS[i % PHOTOS.length];
            const beam = 1 + (i % 3);
            const out = (i + c) % 4 === 0 ? await viaHttp(url, image, `beam=${beam}&maxLen=12`, i % 8 === 0) : await viaSocket(s, image, { beam, maxLen: 12 });
            if (out.ok) done++;
            else if ("refused" in out && out.refused === "busy") busy++;
            else lost.push(`#${i}: ${JSON.stringify(out)}`);
          }
        }),
      );
      await idle(studio);
      samples.push({ rss: process.memoryUsage().rss, tensors: tf.memory().numTensors });
    }
    const rss = samples.map((s) => mb(s.rss));
    console.log(`soak: ${SOAK_CAPTIONS} captions in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${done} done, ${busy} refused busy, ${lost.length} lost; idle RSS MB ${rss.join(" ")}; tensors ${[...new Set(samples.map((s) => s.tensors))].join(", ")}`);
    assert.deepEqual(lost, []);
    assert.equal(done + busy, SOAK_CAPTIONS);
    assert.equal(new Set(samples.map((s) => s.tensors)).size, 1, "tensor count flat");
    // After the first round (warm-up), RSS may wobble with garbage collection but must not climb.
    const later = rss.slice(1);
    assert.ok(Math.max(...later) - later[0] < 150, `RSS flat: ${rss.join(", ")} MB`);
  });
});
