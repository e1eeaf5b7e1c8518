/**
 * Memory over 2,000 requests: RSS and the model's tensor count must stay flat. Mixed traffic
 * against the real server (a child process): Socket.IO clients and HTTP posts, greedy and beam
 * search, the occasional cancelled job (client disconnects mid-caption) and bad upload. Requests
 * run in rounds of --every; between rounds, once the server is idle, /api/health is sampled (a
 * sample taken mid-job would count that job's live tensors). Fails (exit 1) if the idle tensor
 * count ever changes, or if mean RSS over the last third of the run exceeds the first third
 * (after warm-up) by more than --rssSlackMb; single samples swing with garbage collection.
 *   npx tsx bench/server-soak.ts [--requests=2000] [--clients=4] [--every=100] [--rssSlackMb=40]
 */
import { captionOnce, connect, health, parseConfig, photos, runStep, startServer, summarise, type Client } from "./server-harness.ts";

const defaults = {
  requests: 2000,
  clients: 4,
  every: 100, // requests per round; /api/health is sampled after each
  warmup: 200, // requests left out of the RSS comparison
  rssSlackMb: 40, // allowed growth of mean RSS, last third vs first third
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const imgs = photos(64);
  const server = await startServer(["--max-queue=64"]);
  const samples: { at: number; rssMb: number; heapMb: number; tensors: number }[] = [];
  const counts = { done: 0, cancelled: 0, refused: 0, failed: 0 };
  const latencies: number[] = [];
  const t0 = performance.now();

  async function one(socketRef: { s: Client }, i: number, c: number): Promise<void> {
    const image = imgs[i % imgs.length];
    if (i % 97 === 13) {
      // A client that gives up mid-caption: the server must cancel the job and free its state.
      socketRef.s.emit("caption", { image, beam: 5, maxLen: 30 });
      await new Promise((r) => setTimeout(r, 15));
      socketRef.s.close();
      socketRef.s = await connect(server.url);
      counts.cancelled++;
    } else if (i % 50 === 7) {
      const r = await captionOnce(socketRef.s, image.subarray(0, 1500)); // truncated JPEG
      if (r.code === "bad_image") counts.refused++;
      else counts.failed++;
    } else if (i % 5 === c % 5) {
      const form = new FormData();
      form.append("image", new Blob([new Uint8Array(image)], { type: "image/jpeg" }), "p.jpg");
      const t = performance.now();
      const res = await fetch(new URL(`/api/caption?beam=${1 + (i % 3)}`, server.url), { method: "POST", body: form });
      await res.arrayBuffer();
      if (!res.ok) counts.failed++;
      else {
        counts.done++;
        latencies.push(performance.now() - t);
      }
    } else {
      const r = await captionOnce(socketRef.s, image, { beam: 1 + (i % 3) });
      if (!r.ok) counts.failed++;
      else {
        counts.done++;
        latencies.push(r.totalMs);
      }
    }
  }

  async function idleSample(at: number): Promise<void> {
    for (;;) {
      const h = await health(server.url);
      if (h.queue.running === 0 && h.queue.waiting === 0) {
        samples.push({ at, ...h.memory });
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  try {
    const sockets = await Promise.all(Array.from({ length: cfg.clients }, async () => ({ s: await connect(server.url) })));
    await idleSample(0);
    for (let start = 0; start < cfg.requests; start += cfg.every) {
      const end = Math.min(cfg.requests, start + cfg.every);
      let next = start;
      await Promise.all(sockets.map(async (ref, c) => {
        while (next < end) await one(ref, next++, c);
      }));
      await idleSample(end);
    }
    sockets.forEach((ref) => ref.s.close());
  } finally {
    await server.stop();
  }

  const lat = summarise(latencies);
  console.log(`soak: ${cfg.requests} requests from ${cfg.clients} clients in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${counts.done} captions, ${counts.cancelled} cancelled mid-caption, ${counts.refused} bad uploads refused, ${counts.failed} unexpected failures`);
  console.log(`  caption latency: median ${lat.median.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms`);
  console.log("  after   RSS MB   heap MB   tensors (server idle)");
  for (const s of samples) console.log(`  ${String(s.at).padStart(5)}   ${s.rssMb.toFixed(1).padStart(6)}   ${s.heapMb.toFixed(1).padStart(7)}   ${String(s.tensors).padStart(7)}`);

  const tensors = new Set(samples.map((s) => s.tensors));
  const steady = samples.filter((s) => s.at >= cfg.warmup);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const mean = (xs: typeof samples) => xs.reduce((a, s) => a + s.rssMb, 0) / xs.length;
  const [early, late] = [mean(steady.slice(0, third)), mean(steady.slice(-third))];
  const rssOk = late - early <= cfg.rssSlackMb;
  console.log(`  tensors: ${tensors.size === 1 ? `flat at ${[...tensors][0]}` : `CHANGED: ${[...tensors].join(", ")}`}`);
  console.log(`  RSS, mean of first vs last third after ${cfg.warmup} requests: ${early.toFixed(1)} -> ${late.toFixed(1)} MB (${late >= early ? "+" : ""}${(late - early).toFixed(1)}; allowed +${cfg.rssSlackMb}): ${rssOk ? "flat" : "GROWING"}`);
  if (tensors.size !== 1 || !rssOk || counts.failed > 0) process.exitCode = 1;
});
