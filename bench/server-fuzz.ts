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
import { forgedHeaders, viaHttp, viaSocket } from "../test/fuzz-client.ts";
import { connect, health, parseConfig, photos, runStep, startServer } from "./server-harness.ts";

const defaults = {
  inputs: 20_000,
  clients: 8,
  seed: 1,
  maxLen: 8, // short captions: the point is the upload path, not the decoder
  maxRssMb: 2048, // the server's RSS must stay under this
};

const REFUSALS = new Set(["bad_image", "bad_request", "too_large", "busy"]);

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
    await viaHttp(server.url, photos(1)[0], "beam=1", false, REFUSALS); // warm-up
    before = await health(server.url);
    const inputs = fuzzInputs(seeds, cfg.inputs, cfg.seed);
    await Promise.all(
      sockets.map(async (_, w) => {
        for (let next = inputs.next(); !next.done; next = inputs.next()) {
          const { kind, bytes } = next.value;
          const n = tried++;
          const route = n % 10 === 3 ? "socket" : n % 10 === 7 ? "multipart" : "raw";
          const out = route === "socket" ? await viaSocket(sockets[w], bytes, { beam: 1, maxLen: cfg.maxLen }, REFUSALS) : await viaHttp(server.url, bytes, `beam=1&maxLen=${cfg.maxLen}`, route === "multipart", REFUSALS, forgedHeaders(n));
          const key = out.ok ? "caption" : "refused" in out ? `refused ${out.refused}` : "crash";
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          if (!out.ok && "failure" in out) {
            crashes.push(`#${n} ${kind} (${bytes.length} B, ${route}): ${out.failure}`);
            if (route === "socket" && !sockets[w].connected) sockets[w] = await connect(server.url);
          }
          if (server.child.exitCode !== null) throw new Error(`the server exited (code ${server.child.exitCode}) at input #${n} (${kind})`);
          if (n > 0 && n % 2000 === 0) console.log(`  ${n} inputs, ${crashes.length} crashes, peak RSS ${peakRssMb.toFixed(0)} MiB, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
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
  console.log(`  server RSS: ${before!.memory.rssMb} MiB after warm-up, peak ${peakRssMb.toFixed(1)} MiB under load (limit ${cfg.maxRssMb}), ${after?.memory.rssMb} MiB at the end`);
  console.log(`  tensors: ${before!.memory.tensors} before, ${after?.memory.tensors} after`);
  if (crashes.length > 0 || !after || after.memory.tensors !== before!.memory.tensors || peakRssMb > cfg.maxRssMb) process.exitCode = 1;
});
