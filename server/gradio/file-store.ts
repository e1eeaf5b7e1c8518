/**
 * Files uploaded through `POST /gradio_api/upload`, kept in memory only (nothing touches the
 * disk) and bounded three ways: by count, by total bytes and by age; the oldest go first. A file
 * is named by the path handed back to the client, `upload/<random id>/<name>`: the random id is
 * the key, so a path cannot reach anything but an upload (no `..`, no disk).
 */
import { randomUUID } from "node:crypto";

export interface StoredFile {
  bytes: Uint8Array;
  /** Sanitised original name, for display and downloads. */
  name: string;
  at: number;
}

export interface FileStoreLimits {
  /** Most files kept. */
  maxFiles: number;
  /** Most bytes kept, all files together. */
  maxBytes: number;
  /** A file older than this is dropped, ms. */
  ttlMs: number;
}

const UPLOAD_PATH = /^\/*upload\/([0-9a-f]{32})(?:\/[^/]*)?$/;

/** A file name safe to put in a path and a header: letters, digits, `._-` only. */
export function safeName(name: string | undefined, fallback = "image"): string {
  const base = (name ?? "").split(/[\\/]/).pop() ?? "";
  const clean = base.replace(/[^\w.-]+/g, "_").replace(/^[._]+/, "").slice(-100);
  return clean || fallback;
}

export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private total = 0;

  constructor(private readonly limits: FileStoreLimits) {}

  get stats(): { files: number; bytes: number } {
    return { files: this.files.size, bytes: this.total };
  }

  /** Keeps a copy of `bytes`; returns the path clients use to refer to it. */
  put(bytes: Uint8Array, name?: string): string {
    if (bytes.length > this.limits.maxBytes) throw new Error(`file-store: ${bytes.length} bytes is over the store's ${this.limits.maxBytes}`);
    const id = randomUUID().replace(/-/g, "");
    const file = { bytes, name: safeName(name), at: Date.now() };
    this.files.set(id, file);
    this.total += file.bytes.length;
    this.prune();
    return `upload/${id}/${file.name}`;
  }

  /** The file a path names, or undefined (unknown, expired, or not an upload path at all). */
  get(path: string): StoredFile | undefined {
    this.prune();
    const m = UPLOAD_PATH.exec(path);
    return m ? this.files.get(m[1]) : undefined;
  }

  private prune(): void {
    const oldest = Date.now() - this.limits.ttlMs;
    for (const [id, file] of this.files) {
      const over = this.files.size > this.limits.maxFiles || this.total > this.limits.maxBytes;
      if (!over && file.at >= oldest) break; // Map keeps insertion order: the rest are newer.
      this.files.delete(id);
      this.total -= file.bytes.length;
    }
  }
}
