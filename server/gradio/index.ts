/**
 * Gradio API compatibility: enough of Gradio's HTTP protocol that code written for the original
 * Gradio app (`@gradio/client`, Python's `gradio_client`, curl) works when pointed at the studio.
 * Mounted at the root, since Gradio serves its config there (README, "Gradio clients"):
 *   GET  /config                                   the app config: one endpoint, /predict
 *   GET  /gradio_api/info                          the API description
 *   POST /gradio_api/upload                        multipart `files` -> ["upload/<id>/<name>", ...]
 *   GET  /gradio_api/file=<path>                   an upload, or a result picture
 *   POST /gradio_api/queue/join                    { data, fn_index, session_hash } -> { event_id }
 *   GET  /gradio_api/queue/data?session_hash=      the session's messages (server-sent events)
 *   POST /gradio_api/call/predict                  { data: [image] } -> { event_id }   (curl)
 *   POST /gradio_api/call/v2/predict               { image } -> { event_id }
 *   GET  /gradio_api/call/predict/<event_id>       `generating`..., then `complete` or `error`
 *   POST /gradio_api/cancel, /gradio_api/reset     stop an event
 *   GET  /gradio_api/heartbeat/<session_hash>      keep-alive stream (gradio_client opens one)
 * Every caption goes through the studio's queue and caption path (server/caption-jobs.ts).
 * Errors in a request are HTTP 4xx JSON `{ detail, error }` (`detail` is what Gradio's clients
 * show; `error` is the studio's code); errors while captioning are Gradio error messages.
 */
import { randomUUID } from "node:crypto";
import express, { type Request, type Response } from "express";
import multer from "multer";
import type { CaptionJobs } from "../caption-jobs.ts";
import type { ServerConfig } from "../config.ts";
import { sniffImageType } from "../decode-upload.ts";
import { admit, jsonErrorHandler, StudioError } from "../errors.ts";
import { ErrorCode } from "../events.ts";
import { renderPicture } from "../picture.ts";
import type { ResultStore } from "../result-store.ts";
import { EventSessions, type SessionLimits, type StreamFormat } from "./event-sessions.ts";
import { FileStore, type FileStoreLimits } from "./file-store.ts";
import { API_NAME, API_PREFIX, FN_INDEX, gradioSpec } from "./gradio-spec.ts";
import { createPredictor } from "./predictor.ts";
import { readInput } from "./read-input.ts";

/** The app's own components (server/app.ts builds each once); the Gradio routes share them. */
export interface GradioDeps {
  config: ServerConfig;
  jobs: CaptionJobs;
  /** Result pictures, drawn when fetched at /gradio_api/file=result/<event id>/caption.png. */
  results: ResultStore;
}

export interface GradioOptions {
  sessions?: Partial<SessionLimits>;
  uploads?: Partial<FileStoreLimits>;
}

export const SESSION_DEFAULTS: Readonly<SessionLimits> = Object.freeze({
  heartbeatMs: 15_000, // Gradio's rate; gradio_client gives up on a silent stream after 20 s
  idleMs: 5 * 60_000, // results nobody came for are dropped after this
  maxSessions: 4096,
  maxBuffered: 2048, // ~50 captions' worth of words
});

/** Upload limits; the byte budget is at least 4 uploads of the largest size. */
export function uploadDefaults(uploadLimit: number): FileStoreLimits {
  return { maxFiles: 256, maxBytes: Math.max(64 * 1048576, 4 * uploadLimit), ttlMs: 15 * 60_000 };
}

/** Most files in one upload request. */
const MAX_FILES_PER_UPLOAD = 8;
/** Gradio's session hashes are short random strings; anything else is refused. */
const SESSION_HASH = /^[\w.-]{1,128}$/;
const FILE_ROUTE = /^\/file=(.+)$/; // under /gradio_api

/**
 * This server's URL as the caller sees it. Behind a proxy the app trusts (the app's
 * "trust proxy" setting), Express takes the scheme and host from X-Forwarded-*.
 */
function publicRoot(req: Request): string {
  return `${req.protocol}://${req.host ?? req.get("host") ?? "localhost"}`;
}

function fail(code: ErrorCode, message: string): never {
  throw new StudioError(code, message);
}

export function gradioRouter({ config, jobs, results }: GradioDeps, options: GradioOptions = {}): express.Router {
  const router = express.Router();
  const spec = gradioSpec({ title: "Caption Studio", maxFileSize: config.uploadLimit });
  const files = new FileStore({ ...uploadDefaults(config.uploadLimit), ...options.uploads });
  const limits = { ...SESSION_DEFAULTS, ...options.sessions };
  const sessions = new EventSessions(limits);
  const predictor = createPredictor({ jobs, sessions, results });

  // Room for a base64 data URL of the largest upload.
  const json = express.json({ type: () => true, limit: Math.ceil((config.uploadLimit * 4) / 3) + 64 * 1024 });
  const upload = multer({
    storage: multer.memoryStorage(), // nothing is written to disk
    limits: { fileSize: config.uploadLimit, files: MAX_FILES_PER_UPLOAD, fields: 8, fieldSize: 1024, parts: MAX_FILES_PER_UPLOAD + 8 },
  }).array("files", MAX_FILES_PER_UPLOAD);

  /** Starts a prediction of `value` in `sessionHash`; returns its event id. */
  function start(req: Request, sessionHash: string, eventId: string, value: unknown): string {
    const bytes = readInput(value, { files, uploadLimit: config.uploadLimit });
    admit(jobs.stats); // here, not in the background run: a full queue is this request's 503
    const signal = sessions.join(sessionHash, eventId);
    void jobs.track(predictor.run({ eventId, bytes, root: publicRoot(req), signal }));
    return eventId;
  }

  const newEventId = () => randomUUID().replace(/-/g, "");

  /** The image from a `data` array: exactly one value. */
  function onlyInput(data: unknown): unknown {
    if (!Array.isArray(data)) fail(ErrorCode.BadRequest, `"data" must be an array holding the image: { "data": [image] }`);
    if (data.length !== 1) fail(ErrorCode.BadRequest, `/${API_NAME} takes 1 input (the image), got ${data.length}`);
    return data[0];
  }

  function checkApiName(name: string | undefined): void {
    if (name !== API_NAME) fail(ErrorCode.NotFound, `no such endpoint: /${name}; this app has one, /${API_NAME}`);
  }

  const body = (req: Request): Record<string, unknown> => {
    if (typeof req.body !== "object" || req.body === null || Array.isArray(req.body)) fail(ErrorCode.BadRequest, "the request body must be a JSON object");
    return req.body as Record<string, unknown>;
  };

  router.get("/config", (req, res) => {
    res.set("Cache-Control", "no-store").json(spec.config(publicRoot(req)));
  });

  const api = express.Router();
  router.use(API_PREFIX, api);

  api.get("/info", (_req, res) => {
    res.json(spec.info());
  });

  api.get("/app_id", (_req, res) => {
    res.json({ app_id: spec.appId });
  });

  api.post("/upload", upload, (req, res) => {
    const uploaded = (req as { files?: Express.Multer.File[] }).files;
    if (!req.is("multipart/form-data")) fail(ErrorCode.BadRequest, 'send the files as multipart/form-data, in the field "files"');
    if (!uploaded?.length) fail(ErrorCode.BadRequest, 'no files: send them in the multipart field "files"');
    res.json(uploaded.map((f) => files.put(f.buffer, f.originalname)));
  });

  api.get(FILE_ROUTE, async (req, res) => {
    let path: string;
    try {
      path = decodeURIComponent(FILE_ROUTE.exec(req.path)![1]);
    } catch {
      fail(ErrorCode.BadRequest, "bad file path");
    }
    const result = /^result\/([0-9a-f]{32})\/caption\.png$/.exec(path);
    if (result) {
      const stored = await results.get(result[1])?.catch(() => undefined);
      if (!stored) fail(ErrorCode.NotFound, "no such file: result pictures are kept for recent captions only");
      const png = await renderPicture(stored);
      res.type("png").set({ "Content-Disposition": 'inline; filename="caption.png"', "Cache-Control": "private, max-age=600" }).send(png);
      return;
    }
    const file = files.get(path);
    if (!file) fail(ErrorCode.NotFound, "no such file: uploads are kept for a short while only");
    const format = sniffImageType(file.bytes);
    // Only images are shown inline; anything else is a download (an upload could be HTML).
    res.type(format ? `image/${format}` : "application/octet-stream")
      .set({ "Content-Disposition": `${format ? "inline" : "attachment"}; filename="${file.name}"`, "Cache-Control": "private, max-age=600" })
      .send(Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength));
  });

  // The queue protocol of @gradio/client and gradio_client (sse_v3).
  api.post("/queue/join", json, (req, res) => {
    const { data, fn_index: fnIndex, session_hash: sessionHash } = body(req);
    if (typeof sessionHash !== "string" || !SESSION_HASH.test(sessionHash)) {
      fail(ErrorCode.BadRequest, "Session hash not found: send session_hash, a short string of letters, digits, '_', '-' or '.'");
    }
    // Only a number (or its digits) is an index; anything else, a nested array say, is refused as it is
    // (turning one into a number or a string recurses as deep as it nests).
    if (fnIndex !== undefined && fnIndex !== null && typeof fnIndex !== "number" && !(typeof fnIndex === "string" && /^\d{1,6}$/.test(fnIndex))) {
      fail(ErrorCode.BadRequest, `fn_index must be a number; this app has one function, ${FN_INDEX} (/${API_NAME})`);
    }
    if (fnIndex !== undefined && fnIndex !== null && Number(fnIndex) !== FN_INDEX) {
      fail(ErrorCode.NotFound, `no such function: fn_index ${JSON.stringify(fnIndex)}; this app has one, ${FN_INDEX} (/${API_NAME})`);
    }
    const value = onlyInput(data);
    res.json({ event_id: start(req, sessionHash, newEventId(), value) });
  });

  api.get("/queue/data", (req, res) => {
    const hash = typeof req.query.session_hash === "string" ? req.query.session_hash : "";
    sessions.attach(hash, req, res, "queue");
  });

  // The curl protocol: POST the inputs, then GET the event's stream. Each event is its own session.
  const callSession = (eventId: string) => `call:${eventId}`;
  const call = (read: (b: Record<string, unknown>) => unknown) => (req: Request, res: Response) => {
    checkApiName(req.params.api_name as string);
    const value = read(body(req));
    const eventId = newEventId();
    res.json({ event_id: start(req, callSession(eventId), eventId, value) });
  };
  api.post("/call/v2/:api_name", json, call((b) => {
    // oauth_token: Gradio drops it for endpoints that take none.
    const extra = Object.keys(b).filter((k) => k !== "image" && k !== "oauth_token");
    if (extra.length) fail(ErrorCode.BadRequest, `unknown argument ${JSON.stringify(extra[0])}: /${API_NAME} takes "image"`);
    return b.image;
  }));
  api.post("/call/:api_name", json, call((b) => onlyInput(b.data)));

  const stream = (format: StreamFormat) => (req: Request, res: Response) => {
    checkApiName(req.params.api_name as string);
    const hash = callSession(req.params.event_id as string);
    if (!sessions.has(hash)) fail(ErrorCode.NotFound, "no such event: it finished and was read already, expired, or never existed");
    sessions.attach(hash, req, res, format);
  };
  api.get("/call/v2/:api_name/:event_id", stream("call"));
  api.get("/call/:api_name/:event_id", stream("call"));

  // Gradio's JS client cancels with /cancel then /reset; gradio_client with /reset.
  const cancel = (req: Request, res: Response) => {
    const { event_id: eventId } = body(req);
    if (typeof eventId === "string") sessions.cancel(eventId);
    res.json({ success: true });
  };
  api.post("/cancel", json, cancel);
  api.post("/reset", json, cancel);

  // gradio_client keeps one of these open per client; the studio keeps no per-session state.
  api.get("/heartbeat/:session_hash", (req, res) => {
    res.status(200).set({ "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no" });
    res.flushHeaders();
    const beat = () => res.write("data: ALIVE\n\n");
    beat();
    const timer = setInterval(beat, limits.heartbeatMs);
    timer.unref();
    res.on("close", () => clearInterval(timer));
  });

  api.use((req, res) => {
    res.status(404).json({ detail: `no such endpoint: ${req.method} ${req.baseUrl}${req.path}`, error: ErrorCode.NotFound });
  });

  const onError = jsonErrorHandler(config.uploadLimit, `send files in the multipart field "files" (at most ${MAX_FILES_PER_UPLOAD})`, (res, e) => {
    // Gradio answers a full queue with 503: its clients say "busy" for that status.
    res.status(e.code === ErrorCode.Busy ? 503 : e.status).json({ detail: e.message, error: e.code });
  });
  api.use(onError);
  router.use(onError);
  return router;
}
