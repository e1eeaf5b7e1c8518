/**
 * One error type for everything the server refuses on purpose, and one function that turns any
 * thrown value into what a client may see: known errors pass through with their code and
 * message; anything else becomes a generic "internal error" (the details go to the log).
 */
import { ImageError } from "../model/image.ts";
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
  if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError")) {
    const code = e.name === "TimeoutError" ? ErrorCode.Timeout : ErrorCode.Cancelled;
    return { code, message: code === ErrorCode.Timeout ? "the caption took too long and was stopped" : "cancelled", status: STATUS[code] };
  }
  log(`[caption-studio] unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return { code: ErrorCode.Internal, message: "internal error", status: 500 };
}
