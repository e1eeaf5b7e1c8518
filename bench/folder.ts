/**
 * Captioning a folder: `caption --beam 1` over N Flickr8k photos, as photos/s, against the
 * encoder's own batched throughput measured in the same run (the same ONNX encoder with the
 * detection head, on photos already decoded to pixels: the most a captioner built on it could do).
 * The CLI runs as a child process, as a user would run it; its photos/s (printed on its last
 * progress line) counts from its first photo to its last, model loading left out.
 * Each concurrency above 1 runs twice, one after the other: photos through the encoder one at a time
 * (`--batch 1`) and batched (the default), so the batching's gain comes from the same run.
 *   npx tsx bench/folder.ts [--n=200] [--concurrency=1,4,8] [--batch=8]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { flickr8kDir } from "../notebooks-port/lib/flickr8k.ts";
import { encoderSpec, loadEncoder } from "../model/encoder.ts";
import { toRgbSquare } from "../model/image.ts";
import { DEFAULT_MODEL_DIR, loadDecoder } from "../model/index.ts";
import { ROOT, parseConfig, runStep } from "./server-harness.ts";

const DATA = flickr8kDir();

const defaults = { n: 200, concurrency: "1,4,8", batch: 8, objects: "on" };

runStep(async () => {
  const cfg = parseConfig(defaults);
  const names = readdirSync(path.join(DATA, "images")).sort().slice(0, cfg.n);
  const dir = mkdtempSync(path.join(tmpdir(), "caption-folder-"));
  try {
    for (const f of names) symlinkSync(path.join(DATA, "images", f), path.join(dir, f));
    const { config } = loadDecoder(DEFAULT_MODEL_DIR);
    const spec = encoderSpec(config.encoder);

    // The encoder alone, batched, with the head the app reads objects from.
    const encoder = await loadEncoder(spec, "onnx", { heads: true });
    const pixels = await Promise.all(names.slice(0, 64).map((f) => toRgbSquare(path.join(DATA, "images", f), spec.inputSize)));
    const encoderRate: Record<number, number> = {};
    for (const b of [1, cfg.batch]) {
      let n = 0;
      const t0 = performance.now();
      for (let rep = 0; rep < 2; rep++) {
        for (let i = 0; i + b <= pixels.length; i += b) {
          (await encoder.encodeWithHeads(pixels.slice(i, i + b))).feats.dispose();
          n += b;
        }
      }
      encoderRate[b] = n / ((performance.now() - t0) / 1000);
    }
    encoder.dispose();
    const best = Math.max(...Object.values(encoderRate));

    console.log(`folder of ${names.length} Flickr8k JPEGs, greedy, objects ${cfg.objects}:`);
    console.log(`  encoder alone (ONNX, with the detection head, pixels already decoded): ${encoderRate[1].toFixed(1)} photos/s at batch 1, ${encoderRate[cfg.batch].toFixed(1)} at batch ${cfg.batch}`);
    for (const c of cfg.concurrency.split(",").map(Number)) {
      for (const batch of c > 1 ? [1, cfg.batch] : [1]) {
        const args = [path.join(ROOT, "bin", "caption.js"), "--beam", "1", "--concurrency", String(c), "--batch", String(batch), ...(cfg.objects === "on" ? [] : ["--no-objects"]), dir];
        const run = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", maxBuffer: 1 << 26 });
        if (run.status !== 0) throw new Error(`caption failed (${run.status}): ${run.stderr}`);
        const rate = Number(/([\d.]+) photos\/s, [\d.]+ s\n/.exec(run.stderr)?.[1]);
        console.log(`  caption --beam 1 --concurrency ${c} --batch ${batch}: ${rate.toFixed(1)} photos/s = ${((100 * rate) / best).toFixed(0)}% of the encoder's best (target >= 80%)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
