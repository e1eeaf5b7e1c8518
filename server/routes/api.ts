/**
 * The HTTP API (README, "HTTP API"; the page at /api shows examples):
 *   POST /api/caption                    image as multipart field `image` or as the raw body -> JSON
 *                                        (caption, words with attention and `object`, detected objects)
 *   POST /api/caption?format=png         the same, answered with the result picture
 *   GET  /api/results/:id/picture.png    picture of a recent socket caption (`done.picture`)
 *   GET  /api/health                     readiness, queue and memory figures
 * Errors are JSON `{ error: <code>, message }` with a matching status (400, 413, 429, 503...).
 */
import express, { type RequestHandler } from "express";
import multer from "multer";
import type { Captioner } from "../../model/index.ts";
import { toObjectResults, toWordResults, type CaptionJobs } from "../caption-jobs.ts";
import type { ServerConfig } from "../config.ts";
import { decodeUpload } from "../decode-upload.ts";
import { jsonErrorHandler, StudioError } from "../errors.ts";
import { ErrorCode } from "../events.ts";
import { renderPicture } from "../picture.ts";
import { STORED_SIDE, type ResultStore } from "../result-store.ts";

export interface ApiDeps {
  captioner: Captioner;
  config: ServerConfig;
  jobs: CaptionJobs;
  results: ResultStore;
  startedAt: number;
}

export function apiRouter({ captioner, config, jobs, results, startedAt }: ApiDeps): express.Router {
  const router = express.Router();
  const multipart = multer({
    storage: multer.memoryStorage(), // nothing is written to disk
    limits: { fileSize: config.uploadLimit, files: 1, fields: 8, fieldSize: 1024, parts: 12 },
  }).single("image");
  const rawBody = express.raw({ type: () => true, limit: config.uploadLimit });
  const readImage: RequestHandler = (req, res, next) => (req.is("multipart/form-data") ? multipart(req, res, next) : rawBody(req, res, next));

  router.get("/health", (_req, res) => {
    const stats = jobs.stats;
    const mem = process.memoryUsage();
    res.status(stats.closing ? 503 : 200).json({
      status: stats.closing ? "shutting_down" : "ok",
      ready: !stats.closing,
      model: { grid: captioner.grid, vocabulary: captioner.words.length, card: captioner.card !== null },
      queue: { running: stats.running, waiting: stats.waiting, concurrency: stats.concurrency, maxQueue: stats.maxQueue },
      memory: { rssMb: Math.round((mem.rss / 1048576) * 10) / 10, heapMb: Math.round((mem.heapUsed / 1048576) * 10) / 10, tensors: captioner.memory().tensors },
      uptimeS: Math.round((Date.now() - startedAt) / 1000),
    });
  });

  router.post("/caption", readImage, async (req, res) => {
    const file = (req as { file?: Express.Multer.File }).file;
    const bytes: Uint8Array | undefined = file?.buffer ?? (Buffer.isBuffer(req.body) ? req.body : undefined);
    if (!bytes) {
      throw new StudioError(ErrorCode.BadRequest, 'no image: send it as the multipart field "image" or as the raw request body');
    }
    const fields = (req.is("multipart/form-data") ? req.body : {}) as Record<string, unknown>;
    const opts = jobs.options({ beam: req.query.beam ?? fields?.beam, maxLen: req.query.maxLen ?? fields?.maxLen, objects: req.query.objects ?? fields?.objects, prefix: req.query.prefix ?? fields?.prefix });
    const wantsPng = req.query.format === "png";
    if (req.query.format !== undefined && !wantsPng && req.query.format !== "json") {
      throw new StudioError(ErrorCode.BadRequest, 'format must be "json" or "png"');
    }
    const ctl = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) ctl.abort(new StudioError(ErrorCode.Cancelled, "the client went away"));
    });
    const out = await jobs.track(jobs.run(bytes, opts, { signal: ctl.signal }));
    const { caption, grid } = out.result;
    const objects = toObjectResults(out.result.objects ?? []);
    const words = toWordResults(out.result.words, objects.length);
    if (wantsPng) {
      const { raw } = await decodeUpload(bytes, { pixelLimit: config.pixelLimit }, STORED_SIDE);
      const png = await renderPicture({ photo: raw, caption, words, grid, objects });
      res.type("png").set("Content-Disposition", 'inline; filename="caption.png"').send(png);
      return;
    }
    res.json({ caption, words, grid, objects, logProb: out.result.logProb, ms: Math.round(out.ms), waitMs: Math.round(out.waitMs), beam: opts.beam, maxLen: opts.maxLen, prefix: opts.prefix });
  });

  router.get("/results/:id/picture.png", async (req, res) => {
    const stored = results.get(req.params.id);
    if (!stored) {
      res.status(404).json({ error: ErrorCode.NotFound, message: "no such result: pictures are kept for recent captions only" });
      return;
    }
    const png = await renderPicture(await stored);
    const disposition = req.query.download !== undefined ? "attachment" : "inline";
    res.type("png").set("Content-Disposition", `${disposition}; filename="caption-${req.params.id.slice(0, 8)}.png"`).set("Cache-Control", "private, max-age=600").send(png);
  });

  router.use((req, res) => {
    res.status(404).json({ error: ErrorCode.NotFound, message: `no such endpoint: ${req.method} ${req.baseUrl}${req.path}` });
  });

  router.use(jsonErrorHandler(config.uploadLimit, 'unexpected file field: send the image in the field "image", one file only', (res, e) => {
    res.status(e.status).json({ error: e.code, message: e.message });
  }));
  return router;
}
