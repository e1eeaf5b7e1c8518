/**
 * Time to the first streamed word, one client: a 224 px Flickr8k JPEG sent over Socket.IO to the
 * real server (a child process running `npm start`'s entry point), timed from `emit` to the
 * first `step` event, for greedy and beam search. Target: median <= 40 ms.
 *
 * Baseline, measured in the same run: the captioner called in-process (bytes -> first yielded
 * step), i.e. the model's own floor; the difference is what the server and the socket add.
 *   npx tsx bench/server-first-word.ts [--n=200] [--warmup=20] [--beams=1,3]
 */
import { loadCaptioner } from "../model/index.ts";
import { captionOnce, connect, fmt, health, parseConfig, photos, runStep, startServer, summarise } from "./server-harness.ts";

const defaults = {
  n: 200, // timed captions per beam size
  warmup: 20, // untimed captions first
  beams: "1,3",
  images: 50, // distinct photos, cycled
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const beams = cfg.beams.split(",").map(Number);
  const imgs = photos(cfg.images);
  const at = (i: number) => imgs[i % imgs.length];

  // Baseline: the model alone, in this process.
  const captioner = await loadCaptioner();
  const base: Record<number, number[]> = {};
  for (const beam of beams) {
    base[beam] = [];
    for (let i = 0; i < cfg.warmup + cfg.n; i++) {
      const t0 = performance.now();
      const it = captioner.steps(at(i), { beam });
      await it.next();
      if (i >= cfg.warmup) base[beam].push(performance.now() - t0);
      await it.return(undefined as never);
    }
  }
  captioner.dispose();

  const server = await startServer();
  try {
    const socket = await connect(server.url);
    console.log(`time to first word, 1 client, ${imgs.length} Flickr8k JPEGs (224 px), ${cfg.n} timed after ${cfg.warmup} warm-up; ${server.url}`);
    for (const beam of beams) {
      const first: number[] = [];
      const total: number[] = [];
      for (let i = 0; i < cfg.warmup + cfg.n; i++) {
        const t = await captionOnce(socket, at(i), { beam });
        if (!t.ok) throw new Error(`caption failed: ${t.code}`);
        if (i >= cfg.warmup) {
          first.push(t.firstMs);
          total.push(t.totalMs);
        }
      }
      const f = summarise(first);
      console.log(`  ${beam === 1 ? "greedy" : `beam ${beam}`}:`);
      console.log(`    first word over Socket.IO   ${fmt(f)}  ${f.median <= 40 ? "(target <= 40 ms: met)" : "(target <= 40 ms: MISSED)"}`);
      console.log(`    baseline, model in-process  ${fmt(summarise(base[beam]))}`);
      console.log(`    full caption over Socket.IO ${fmt(summarise(total))}`);
    }
    const h = await health(server.url);
    console.log(`  server: RSS ${h.memory.rssMb} MiB, ${h.memory.tensors} tensors`);
    socket.close();
  } finally {
    await server.stop();
  }
});
