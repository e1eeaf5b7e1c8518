/**
 * Memory under sustained load: 10,000 captions at concurrency 8 (issue 4's soak); RSS and the
 * model's tensor count must stay flat, and no request may be lost. Mixed traffic against the real
 * server (a child process): Socket.IO clients and HTTP posts, greedy and beam search, the
 * occasional cancelled job (client disconnects mid-caption) and bad upload. Requests run in
 * rounds of --every; between rounds, once the server is idle, /api/health is sampled (a sample
 * taken mid-job would count that job's live tensors); a poller also records the peak RSS under
 * load. Refusals on purpose (the queue limit's `busy`, bad uploads, cancellations) are counted
 * apart; anything else is a lost request. Fails (exit 1) if any request is lost, if the idle
 * tensor count ever changes, or if mean RSS over the last third of the run exceeds the first
 * third (after warm-up) by more than --rssSlackMb; single samples swing with garbage collection.
 *   npx tsx bench/server-soak.ts [--requests=10000] [--clients=8] [--every=250] [--rssSlackMb=40]
 */
import { captionOnce, connect, health, parseConfig, photos, runStep, startServer, summarise, type Client } from "./server-harness.ts";

const defaults = {
  requests: 10_000,
  clients: 8, // concurrent clients
  every: 250, // requests per round; /api/health is sampled after each
  warmup: 500, // requests left out of the RSS comparison
  rssSlackMb: 40, // allowed growth of mean RSS, last third vs first third
  maxQueue: 32, // the server's --max-queue (its default); lower it to see `busy` refusals counted apart
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const imgs = photos(64);
  const server = await startServer([`--max-queue=${cfg.maxQueue}`]);
  const samples: { at: number; rssMb: number; heapMb: number; tensors: number }[] = [];
  const counts = { done: 0, cancelled: 0, refused: 0, busy: 0, failed: 0 };
  const lost: string[] = [];
  let peakRssMb = 0;
  const latencies: number[] = [];
  const t0 = performance.now();

  function fail(i: number, why: string): void {
    counts.failed++;
    if (lost.length < 20) lost.push(`#${i}: ${why}`);
  }

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
      else fail(i, `truncated upload: ${r.code ?? "captioned"}`);
    } else if (i % 5 === c % 5) {
      const form = new FormData();
      form.append("image", new Blob([new Uint8Array(image)], { type: "image/jpeg" }), "p.jpg");
      const t = performance.now();
      try {
        const res = await fetch(new URL(`/api/caption?beam=${1 + (i % 3)}`, server.url), { method: "POST", body: form });
        await res.arrayBuffer();
        if (res.status === 429) counts.busy++;
        else if (!res.ok) fail(i, `HTTP ${res.status}`);
        else {
          counts.done++;
          latencies.push(performance.now() - t);
        }
      } catch (e) {
        fail(i, `HTTP: ${(e as Error).cause ?? e}`);
      }
    } else {
      const r = await captionOnce(socketRef.s, image, { beam: 1 + (i % 3) });
      if (r.ok) {
        counts.done++;
        latencies.push(r.totalMs);
      } else if (r.code === "busy") counts.busy++;
      else fail(i, `socket: ${r.code}`);
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

  // The peak under load, not only at idle.
  const poller = setInterval(() => {
    health(server.url).then((h) => (peakRssMb = Math.max(peakRssMb, h.memory.rssMb)), () => undefined);
  }, 500);
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
    clearInterval(poller);
    await server.stop();
  }

  const lat = summarise(latencies);
  peakRssMb = Math.max(peakRssMb, ...samples.map((x) => x.rssMb));
  console.log(`soak: ${cfg.requests} requests from ${cfg.clients} clients in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${counts.done} captions, ${counts.cancelled} cancelled mid-caption, ${counts.refused} bad uploads refused, ${counts.busy} refused busy (queue limit), ${counts.failed} lost`);
  for (const l of lost) console.log(`  lost ${l}`);
  console.log(`  peak server RSS under load: ${peakRssMb.toFixed(1)} MiB`);
  console.log(`  caption latency: median ${lat.median.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms`);
  console.log("  after  RSS MiB  heap MiB   tensors (server idle)");
  for (const s of samples) console.log(`  ${String(s.at).padStart(5)}   ${s.rssMb.toFixed(1).padStart(6)}   ${s.heapMb.toFixed(1).padStart(7)}   ${String(s.tensors).padStart(7)}`);

  const tensors = new Set(samples.map((s) => s.tensors));
  const steady = samples.filter((s) => s.at >= cfg.warmup);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const mean = (xs: typeof samples) => xs.reduce((a, s) => a + s.rssMb, 0) / xs.length;
  const [early, late] = [mean(steady.slice(0, third)), mean(steady.slice(-third))];
  const rssOk = late - early <= cfg.rssSlackMb;
  console.log(`  tensors: ${tensors.size === 1 ? `flat at ${[...tensors][0]}` : `CHANGED: ${[...tensors].join(", ")}`}`);
  console.log(`  RSS, mean of first vs last third after ${cfg.warmup} requests: ${early.toFixed(1)} -> ${late.toFixed(1)} MiB (${late >= early ? "+" : ""}${(late - early).toFixed(1)} MiB; allowed +${cfg.rssSlackMb}): ${rssOk ? "flat" : "GROWING"}`);
  if (tensors.size !== 1 || !rssOk || counts.failed > 0) process.exitCode = 1;
});
