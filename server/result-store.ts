/**
 * Recent socket results, kept so the page can download the result picture after `done`.
 * Bounded by count and age (oldest dropped first), so memory stays flat however many captions
 * are made. The upload is decoded once, in the background, to a small photo (the picture's
 * tiles are small), and the upload's bytes are let go.
 */
import type { RawImage } from "../model/index.ts";
import { decodeUpload, type DecodeLimits } from "./decode-upload.ts";
import type { ObjectResult, WordResult } from "./events.ts";

export interface StoredResult {
  photo: RawImage;
  caption: string;
  words: WordResult[];
  grid: [number, number];
  /** Detected objects; words[].object indexes into them. */
  objects: ObjectResult[];
}

/** Longest side of stored photos, px. */
export const STORED_SIDE = 256;

export class ResultStore {
  private readonly items = new Map<string, { at: number; value: Promise<StoredResult> }>();

  constructor(
    private readonly limits: DecodeLimits,
    private readonly maxItems = 64,
    private readonly ttlMs = 30 * 60_000,
  ) {}

  /** Stores a result; the upload is decoded in the background. */
  put(id: string, bytes: Uint8Array, result: Omit<StoredResult, "photo">): void {
    const value = decodeUpload(bytes, this.limits, STORED_SIDE).then(({ raw }) => ({ ...result, photo: raw }));
    value.catch(() => this.items.delete(id));
    this.items.set(id, { at: Date.now(), value });
    this.prune();
  }

  get(id: string): Promise<StoredResult> | undefined {
    this.prune();
    return this.items.get(id)?.value;
  }

  private prune(): void {
    const oldest = Date.now() - this.ttlMs;
    for (const [id, item] of this.items) {
      if (this.items.size > this.maxItems || item.at < oldest) this.items.delete(id);
      else break; // Map keeps insertion order: the rest are newer.
    }
  }
}
