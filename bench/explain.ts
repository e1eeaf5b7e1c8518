/**
 * What the "see why and steer" details cost while streaming: each word's top 5 alternatives and,
 * with beam search, the live beams in every step (CaptionOptions.details, on by default), against
 * the same captioner with them off (the stream as it was before they existed), in the same run.
 * Photos alternate between the two settings so both see the same machine state.
 *
 * Per caption: time to the first yielded step, and the time per word after it ((done - first) /
 * (words - 1)); medians over the photos. Target: details within 10% of off on both, at beam 3.
 *   npx tsx bench/explain.ts [--n=100] [--warmup=10] [--beams=1,3]
 */
import { loadCaptioner } from "../model/index.ts";
import { parseConfig, photos, runStep, summarise } from "./server-harness.ts";

const defaults = {
  n: 100, // timed captions per setting and beam size
  warmup: 10,
  beams: "1,3",
  images: 50,
};

runStep(async () => {
  const cfg = parseConfig(defaults);
  const beams = cfg.beams.split(",").map(Number);
  const imgs = photos(cfg.images);
  const captioner = await loadCaptioner();
  console.log(`streaming with and without details (top 5 per word, live beams), in-process, ${imgs.length} Flickr8k JPEGs, ${cfg.n} timed per setting after ${cfg.warmup} warm-up`);
  for (const beam of beams) {
    const times = { on: { first: [] as number[], word: [] as number[], steps: 0 }, off: { first: [] as number[], word: [] as number[], steps: 0 } };
    for (let i = 0; i < 2 * (cfg.warmup + cfg.n); i++) {
      const which = i % 2 === 0 ? "on" : "off";
      const t0 = performance.now();
      let first = 0, steps = 0;
      const it = captioner.steps(imgs[Math.floor(i / 2) % imgs.length], { beam, details: which === "on" });
      let r = await it.next();
      while (!r.done) {
        if (!steps++) first = performance.now() - t0;
        r = await it.next();
      }
      const total = performance.now() - t0;
      if (i < 2 * cfg.warmup) continue;
      const t = times[which];
      t.first.push(first);
      if (r.value.words.length > 1) t.word.push((total - first) / (r.value.words.length - 1));
      t.steps += steps;
    }
    const line = (name: string, on: number[], off: number[]) => {
      const a = summarise(on).median, b = summarise(off).median;
      const ratio = a / b;
      return `    ${name.padEnd(22)} details ${a.toFixed(2)} ms, off ${b.toFixed(2)} ms: ${ratio.toFixed(3)}x ${ratio <= 1.1 ? "(target <= 1.1x: met)" : "(target <= 1.1x: MISSED)"}`;
    };
    console.log(`  ${beam === 1 ? "greedy" : `beam ${beam}`} (steps per caption: details ${(times.on.steps / cfg.n).toFixed(1)}, off ${(times.off.steps / cfg.n).toFixed(1)}):`);
    console.log(line("time to first word", times.on.first, times.off.first));
    console.log(line("time per later word", times.on.word, times.off.word));
  }
  captioner.dispose();
});
