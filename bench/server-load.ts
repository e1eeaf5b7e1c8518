/**
 * Full-caption latency and throughput with 1, 4 and 16 concurrent clients. Each client is a
 * Socket.IO connection (or, with --http, a fetch loop) captioning Flickr8k JPEGs back to back
 * against the real server (a child process); every request must succeed. Prints per level:
 * latency median/p99, time to first word, throughput, errors, and the server's RSS and tensor
 * count. Baseline in the same run: one client's throughput, i.e. the serial rate.
 *   npx tsx bench/server-load.ts [--levels=1,4,16] [--requests=96] [--beam=3] [--concurrency=2] [--http]
 */
import { captionOnce, connect, fmt, health, parseConfig, photos, runStep, startServer, summarise, type Timing } from "./server-harness.ts";

const defaults = {
  levels: "1,4,16", // concurrent clients
  requests: 96, // timed captions per level (split across its clients)
  warmup: 8,
  beam: 3,
  concurrency: 2, // the server's --concurrency
  http: false, // POST /api/caption instead of Socket.IO
};

async function httpOnce(url: string, image: Buffer, beam: number): Promise<Timing> {
  const t0 = performance.now();
  const form = new FormData();
  form.append("image", new Blob([new Uint8Array(image)], { type: "image/jpeg" }), "photo.jpg");
  const res = await fetch(new URL(`/api/caption?beam=${beam}`, url), { method: "POST", body: form });
  const body = (await res.json()) as { ms?: number; words?: unknown[]; error?: string };
  return { ok: res.ok, firstMs: NaN, totalMs: performance.now() - t0, serverMs: body.ms ?? NaN, words: body.words?.length ?? 0, code: body.error };
}

runStep(async () => {
  const cfg = parseConfig(defaults);
  const imgs = photos(64);
  const server = await startServer([`--concurrency=${cfg.concurrency}`, "--max-queue=64"]);
  try {
    const mode = cfg.http ? "HTTP POST /api/caption" : "Socket.IO";
    console.log(`load: ${mode}, beam ${cfg.beam}, server concurrency ${cfg.concurrency}, ${cfg.requests} captions per level; ${server.url}`);
    let serial = NaN;
    for (const clients of cfg.levels.split(",").map(Number)) {
      const sockets = cfg.http ? [] : await Promise.all(Array.from({ length: clients }, () => connect(server.url)));
      const once = (c: number, i: number) => (cfg.http ? httpOnce(server.url, imgs[i % imgs.length], cfg.beam) : captionOnce(sockets[c], imgs[i % imgs.length], { beam: cfg.beam }));
      for (let i = 0; i < cfg.warmup; i++) await once(0, i);

      const timings: Timing[] = [];
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          while (next < cfg.requests) timings.push(await once(c, next++));
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      sockets.forEach((s) => s.close());

      const ok = timings.filter((t) => t.ok);
      const errors = timings.length - ok.length;
      const rate = ok.length / wall;
      if (clients === 1) serial = rate;
      const h = await health(server.url);
      console.log(`  ${String(clients).padStart(2)} client${clients === 1 ? " " : "s"}: ${rate.toFixed(1)} captions/s${Number.isNaN(serial) ? "" : ` (${(rate / serial).toFixed(2)}x one client)`}, errors ${errors}${errors ? ` (${[...new Set(timings.filter((t) => !t.ok).map((t) => t.code))]})` : ""}`);
      console.log(`      latency     ${fmt(summarise(ok.map((t) => t.totalMs)))}`);
      if (!cfg.http) console.log(`      first word  ${fmt(summarise(ok.map((t) => t.firstMs)))}`);
      console.log(`      server time ${fmt(summarise(ok.map((t) => t.serverMs)))}; RSS ${h.memory.rssMb} MiB, ${h.memory.tensors} tensors`);
      if (errors) process.exitCode = 1;
    }
  } finally {
    await server.stop();
  }
});
