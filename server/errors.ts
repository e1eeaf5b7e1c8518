/**
 * One error type for everything the server refuses on purpose, and one function that turns any
 * thrown value into what a client may see: known errors pass through with their code and
 * message; anything else becomes a generic "internal error" (the details go to the log).
 */
import type { ErrorRequestHandler, Response } from "express";
import multer from "multer";
import { ImageError } from "../model/index.ts";
import { ErrorCode } from "./events.ts";

const STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  [ErrorCode.BadImage]: 400,
  [ErrorCode.BadRequest]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.TooLarge]: 413,
  [ErrorCode.Busy]: 429,
  [ErrorCode.Cancelled]: 499,
  [ErrorCode.Timeout]: 504,
  [ErrorCode.ShuttingDown]: 503,
  [ErrorCode.Unauthorized]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.RateLimited]: 429,
  [ErrorCode.Internal]: 500,
});

export class StudioError extends Error {
  override name = "StudioError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
  get status(): number {
    return STATUS[this.code];
  }
}

export interface ClientError {
  code: ErrorCode;
  message: string;
  status: number;
}

/** Maps any thrown value to a safe client error; logs the unexpected ones. */
export function toClientError(e: unknown, log: (msg: string) => void = console.error): ClientError {
  if (e instanceof StudioError) return { code: e.code, message: e.message, status: e.status };
  if (e instanceof ImageError || (e instanceof Error && e.name === "ImageError")) {
    return { code: ErrorCode.BadImage, message: e.message, status: 400 };
  }
  // A "what if" prefix the model cannot force (CaptionJobs.options checks it before queueing).
  if (e instanceof Error && e.name === "PrefixError") return { code: ErrorCode.BadRequest, message: e.message, status: 400 };
  if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError")) {
    const code = e.name === "TimeoutError" ? ErrorCode.Timeout : ErrorCode.Cancelled;
    return { code, message: code === ErrorCode.Timeout ? "the caption took too long and was stopped" : "cancelled", status: STATUS[code] };
  }
  log(`[caption-studio] unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return { code: ErrorCode.Internal, message: "internal error", status: 500 };
}

/** The one message for an upload over --upload-limit (with its own size, when known). */
export const tooLargeMessage = (uploadLimit: number, size?: number) =>
  `file too large: the limit is ${(uploadLimit / 1048576).toFixed(1)} MB${size === undefined ? "" : ` (this one is ${(size / 1048576).toFixed(1)} MB)`}`;

/**
 * The one admission check, for every way work comes in: a queue that is shutting down or full
 * takes no more. Callers that answer before a job runs (Gradio's join) call it themselves; the
 * caption path (CaptionJobs.run) calls it for everyone else.
 */
export function admit(queue: { closing: boolean; full: boolean }): void {
  if (queue.closing) throw new StudioError(ErrorCode.ShuttingDown, "the server is shutting down; try again in a moment");
  if (queue.full) throw new StudioError(ErrorCode.Busy, "the server is busy: the queue is full; try again shortly");
}

/**
 * A malformed request as a client error, or null for anything else: body-parser and multer
 * failures, an upload its client cut off, a malformed %-escape in the path, and a body whose Content-Encoding (gzip, deflate,
 * br) does not decode (zlib's own errors, which carry no HTTP status). `fileHint` says where files
 * go, for a multipart request with a file in the wrong field.
 */
function requestError(err: unknown, uploadLimit: number, fileHint: string, log: (msg: string) => void = console.warn): ClientError | null {
  if (err instanceof StudioError) return null;
  const bad = (message: string): ClientError => ({ code: ErrorCode.BadRequest, status: 400, message });
  // The client went away mid-upload (multer's words; body-parser's say request.aborted): one line, no stack.
  if (err instanceof Error && (/^Request (aborted|closed|error)$/.test(err.message) || (err as { type?: string }).type === "request.aborted")) {
    log("[caption-studio] an upload was cut off by its client");
    return bad("the upload was cut off before it ended");
  }
  if (err instanceof URIError) return bad("bad file path: malformed %-escape");
  const tooLarge = { code: ErrorCode.TooLarge, status: 413, message: tooLargeMessage(uploadLimit) };
  if (err instanceof multer.MulterError) {
    if (err.code === "LIMIT_FILE_SIZE") return tooLarge;
    if (err.code === "LIMIT_UNEXPECTED_FILE") return bad(fileHint);
    return bad(`bad multipart request: ${err.message.toLowerCase()}`);
  }
  const e = err as { type?: string; status?: number; message?: string; code?: unknown };
  if (e?.type === "entity.too.large") return tooLarge;
  if (e?.type === "entity.parse.failed") return bad("the request body is not valid JSON");
  if (typeof e?.type === "string" && typeof e.status === "number" && e.status < 500) return bad(`bad request body: ${e.message ?? e.type}`);
  if (err instanceof Error && typeof e.code === "string" && /^(Z_|ERR__ERROR_|ERR_BROTLI)/.test(e.code)) {
    return bad("the request body does not decode as its Content-Encoding says");
  }
  if (err instanceof Error && /multipart|boundary|unexpected end of form|malformed part/i.test(err.message)) return bad(`bad multipart request: ${err.message}`);
  return null;
}

/**
 * The one Express error handler for JSON routes (/api and Gradio's): a malformed request
 * (requestError) or anything else thrown (toClientError), answered by `send` in the routes' own
 * JSON shape. A busy answer says when to try again.
 */
export function jsonErrorHandler(uploadLimit: number, fileHint: string, send: (res: Response, e: ClientError) => void): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    const e = requestError(err, uploadLimit, fileHint) ?? toClientError(err);
    if (res.headersSent || res.destroyed) return;
    if (e.code === ErrorCode.Busy) res.set("Retry-After", "2");
    send(res, e);
  };
}
