/**
 * The full fuzz run of the upload path: --inputs generated or mutated files (test/fuzz-inputs.ts:
 * truncated and bit-flipped JPEG/PNG/WebP/TIFF/GIF, wrong magic numbers, zero bytes, 1x1 images,
 * huge declared dimensions, animated GIFs, text and other file types) sent --clients at a time to
 * the real server (`npm start`, a child process) as raw bodies, multipart uploads and Socket.IO
 * captions. Every input must get a caption or a 4xx with a known code. A crash is anything else:
 * a 5xx, a dropped connection or socket, an unknown code, or the server process exiting. Reports
 * inputs tried, outcomes, crashes, the server's peak RSS (polled under load) and its tensor count
 * before and after; fails (exit 1) on any crash, on leaked tensors, or if peak RSS exceeds
 * --maxRssMb.
 *   npx tsx bench/server-fuzz.ts [--inputs=20000] [--clients=8] [--seed=1] [--maxLen=8] [--maxRssMb=2048]
 */
import { fuzzInputs, fuzzSeeds } from "../test/fuzz-inputs.ts";
import type { DoneEvent, FailedEvent } from "../server/events.ts";
import { connect, health, parseConfig, photos, runStep, startServer, type Client } from "./server-harness.ts";

const defaults = {
  inputs: 20_000,
  clients: 8,
  seed: 1,
  maxLen: 8, // short captions: the point is the upload path, not the decoder
  maxRssMb: 2048, // the server's RSS must stay under this
};

const REFUSALS = new Set(["bad_image", "bad_request", "too_large", "busy"]);

type Outcome = { kind: "caption" } | { kind: "refused"; code: string } | { kind: "crash"; why: string };

function viaSocket(s: Client, image: Uint8Array, maxLen: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let id: string | null | undefined;
    const off = () => {
      s.off("done", onDone);
      s.off("failed", onFailed);
      s.off("disconnect", onGone);
    };
    const onDone = (e: DoneEvent) => e.id === id && (off(), resolve({ kind: "caption" }));
    const onFailed = (e: FailedEvent) => e.id === id && (off(), resolve(REFUSALS.has(e.code) ? { kind: "refused", code: e.code } : { kind: "crash", why: `failed ${e.code}: ${e.message}` }));
    const onGone = (reason: string) => (off(), resolve({ kind: "crash", why: `socket dropped: ${reason}` }));
    s.on("done", onDone);
    s.on("failed", onFailed);
    s.on("disconnect", onGone);
    s.emit("caption", { image, beam: 1, maxLen }, (ack) => {
      id = ack.ok ? ack.id : null;
      if (!ack.ok) (off(), resolve(REFUSALS.has(ack.code) ? { kind: "refused", code: ack.code } : { kind: "crash", why: `refused ${ack.code}` }));
    });
  });
}

async function viaHttp(url: string, image: Uint8Array, query: string, multipart: boolean): Promise<Outcome> {
  try {
    let body: BodyInit = new Uint8Array(image);
    if (multipart) {
      const form = new FormData();
      form.append("image", new Blob([new Uint8Array(image)]), "upload.jpg");
      body = form;
    }
    const res = await fetch(new URL(`/api/caption?${query}`, url), { method: "POST", body, ...(multipart ? {} : { headers: { "content-type": "image/jpeg" } }) });
    const json = (await res.json().catch(() => null)) as { caption?: unknown; error?: string } | null;
    if (res.status === 200 && typeof json?.caption === "string") return { kind: "caption" };
    if (res.status >= 400 && res.status < 500 && REFUSALS.has(json?.error ?? "")) return { kind: "refused", code: json!.error! };
    return { kind: "crash", why: `HTTP ${res.status} ${json?.error ?? "(not JSON)"}` };
  } catch (e) {
    return { kind: "crash", why: `network: ${(e as Error).cause ?? e}` };
  }
}

runStep(async () => {
  const cfg = parseConfig(defaults);
  const seeds = await fuzzSeeds(photos(2));
  const server = await startServer(["--max-queue=64"]);
  const outcomes = new Map<string, number>();
  const crashes: string[] = [];
  let tried = 0;
  let peakRssMb = 0;
  const poller = setInterval(() => {
    health(server.url).then((h) => (peakRssMb = Math.max(peakRssMb, h.memory.rssMb)), () => undefined);
  }, 250);
  const t0 = performance.now();
  let before: Awaited<ReturnType<typeof health>>;
  let after: Awaited<ReturnType<typeof health>> | null = null;
  try {
    const sockets = await Promise.all(Array.from({ length: cfg.clients }, () => connect(server.url)));
    await viaHttp(server.url, photos(1)[0], "beam=1", false); // warm-up
    before = await health(server.url);
    const inputs = fuzzInputs(seeds, cfg.inputs, cfg.seed);
    await Promise.all(
      sockets.map(async (_, w) => {
        for (let next = inputs.next(); !next.done; next = inputs.next()) {
          const { kind, bytes } = next.value;
          const n = tried++;
          const route = n % 10 === 3 ? "socket" : n % 10 === 7 ? "multipart" : "raw";
          const out = route === "socket" ? await viaSocket(sockets[w], bytes, cfg.maxLen) : await viaHttp(server.url, bytes, `beam=1&maxLen=${cfg.maxLen}`, route === "multipart");
          const key = out.kind === "refused" ? `refused ${out.code}` : out.kind;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          if (out.kind === "crash") {
            crashes.push(`#${n} ${kind} (${bytes.length} B, ${route}): ${out.why}`);
            if (route === "socket" && !sockets[w].connected) sockets[w] = await connect(server.url);
          }
          if (server.child.exitCode !== null) throw new Error(`the server exited (code ${server.child.exitCode}) at input #${n} (${kind})`);
          if (n > 0 && n % 2000 === 0) console.log(`  ${n} inputs, ${crashes.length} crashes, peak RSS ${peakRssMb.toFixed(0)} MB, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        }
      }),
    );
    for (;;) {
      after = await health(server.url);
      if (after.queue.running + after.queue.waiting === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    sockets.forEach((s) => s.close());
  } finally {
    clearInterval(poller);
    await server.stop();
  }

  const s = (performance.now() - t0) / 1000;
  console.log(`fuzz: ${tried} inputs from ${cfg.clients} clients in ${s.toFixed(0)} s (${(tried / s).toFixed(0)}/s); server up to the end: ${after ? "yes" : "NO"}`);
  console.log(`  outcomes: ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  console.log(`  crashes: ${crashes.length}`);
  for (const c of crashes.slice(0, 20)) console.log(`    ${c}`);
  console.log(`  server RSS: ${before!.memory.rssMb} MB after warm-up, peak ${peakRssMb.toFixed(1)} MB under load (limit ${cfg.maxRssMb}), ${after?.memory.rssMb} MB at the end`);
  console.log(`  tensors: ${before!.memory.tensors} before, ${after?.memory.tensors} after`);
  if (crashes.length > 0 || !after || after.memory.tensors !== before!.memory.tensors || peakRssMb > cfg.maxRssMb) process.exitCode = 1;
});
