/**
 * Turns the image value of a Gradio request into bytes. Accepted, as Gradio's clients send them:
 *   - a FileData `{ path, url?, orig_name?, meta }` whose path came from POST /gradio_api/upload
 *     (`@gradio/client` and `gradio_client` upload first, then send this);
 *   - a URL of this server's own `/gradio_api/file=...`, in `url` or `path` (`handle_file(url)`);
 *   - a base64 data URL (`data:image/jpeg;base64,...`), in `url` or `path`, or as a bare string.
 * URLs are never fetched: a URL is only a name for a file already in memory here, so the server
 * cannot be made to call other hosts (SSRF). Paths are never opened on disk. Whether the bytes
 * are an image is decided later, by the caption job, from the bytes themselves.
 */
import { StudioError, tooLargeMessage } from "../errors.ts";
import { ErrorCode } from "../events.ts";
import type { FileStore } from "./file-store.ts";
import { API_PREFIX } from "./gradio-spec.ts";

export interface InputSources {
  files: FileStore;
  /** Largest image, bytes. */
  uploadLimit: number;
}

const FILE_ROUTE = `${API_PREFIX}/file=`;
/** A piece of client input, short enough to quote in a message. */
const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);

const badRequest = (message: string) => new StudioError(ErrorCode.BadRequest, message);

function fromDataUrl(s: string, uploadLimit: number): Uint8Array {
  const m = /^data:([\w.+-]+\/[\w.+-]+)?((?:;[\w.+-]+=[^;,]*)*);base64,/i.exec(s);
  if (!m) throw badRequest("data URLs must be base64: data:image/jpeg;base64,...");
  const payload = s.slice(m[0].length).replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) throw badRequest("the data URL is not valid base64");
  if (Math.floor((payload.length * 3) / 4) > uploadLimit + 2) {
    throw new StudioError(ErrorCode.TooLarge, tooLargeMessage(uploadLimit));
  }
  return Buffer.from(payload, payload.includes("-") || payload.includes("_") ? "base64url" : "base64");
}

function fromUpload(path: string, files: FileStore): Uint8Array {
  const file = files.get(path);
  if (!file) {
    throw new StudioError(ErrorCode.NotFound, `no such uploaded file: ${quote(path)}; upload the image with POST ${API_PREFIX}/upload first (uploads are kept for a short while) or send it as a base64 data URL`);
  }
  return file.bytes;
}

function fromUrl(s: string, files: FileStore): Uint8Array {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw badRequest(`not a valid URL: ${quote(s)}`);
  }
  if (url.pathname.startsWith(FILE_ROUTE)) {
    let path: string;
    try {
      path = decodeURIComponent(url.pathname.slice(FILE_ROUTE.length));
    } catch {
      throw badRequest(`not a valid URL: ${quote(s)}`);
    }
    return fromUpload(path, files);
  }
  throw badRequest(
    `the server does not download images from URLs (${quote(s)}): upload the image with POST ${API_PREFIX}/upload, or send it as a base64 data URL`,
  );
}

/** One reference: a data URL, a URL of this server, or an upload path. */
function fromReference(s: string, { files, uploadLimit }: InputSources): Uint8Array {
  if (/^data:/i.test(s)) return fromDataUrl(s, uploadLimit);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return fromUrl(s, files);
  return fromUpload(s, files);
}

/** The image bytes a Gradio input value refers to. Throws StudioError (bad_request, not_found, too_large). */
export function readInput(value: unknown, sources: InputSources): Uint8Array {
  if (value === null || value === undefined) {
    throw badRequest("no image: send a file from /gradio_api/upload as { path, meta: { _type: \"gradio.FileData\" } }, or a base64 data URL");
  }
  if (typeof value === "string") return fromReference(value, sources);
  if (typeof value !== "object" || Array.isArray(value)) {
    throw badRequest(`the image must be a FileData object or a data URL string, got ${Array.isArray(value) ? "an array" : typeof value}`);
  }
  const { path, url, data } = value as { path?: unknown; url?: unknown; data?: unknown };
  // `path` first, as Gradio does; `url` when the path is absent or not one of ours.
  const refs = [path, url, data].filter((r): r is string => typeof r === "string" && r !== "");
  if (refs.length === 0) {
    throw badRequest("the image has no path or url: send { path: <path from /gradio_api/upload>, meta: { _type: \"gradio.FileData\" } }");
  }
  let first: unknown;
  for (const ref of refs) {
    try {
      return fromReference(ref, sources);
    } catch (e) {
      first ??= e;
    }
  }
  throw first;
}
