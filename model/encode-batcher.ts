/**
 * Photos that concurrent captions want encoded at the same moment (a folder that the CLI captions 8
 * at a time) go through the encoder as one batch. The encoder's convolutions use
 * both cores better on several photos than on one: on this 2-core machine the ONNX encoder with
 * its detection head ran 43-45 photos/s one at a time and 55-62 at 4 to 8 (scratch timing, the
 * batch sizes taking turns). A lone photo waits for nothing but this turn of the event loop. A
 * photo in a shared pass gets its features later than alone, and onnxruntime keeps the larger
 * pass's buffers: worth it for a folder, not for a server (LoadOptions.encoderBatch).
 */
import { flushEachTurn } from "./each-turn.ts";
import type { Encoder, Head } from "./encoder.ts";
import { tf } from "./tf.ts";

export interface Encoded {
  /** [1, h*w, channels]; the caller disposes it. */
  feats: tf.Tensor3D;
  /** The photo's own slice of each head, [1, h, w, c]. */
  heads: Record<string, Head>;
}

interface Pending {
  pixels: Uint8Array;
  signal?: AbortSignal;
  resolve(r: Encoded): void;
  reject(e: unknown): void;
}

/** Photo i's slice of heads computed for a batch: a copy, so a photo does not keep the whole batch's buffers alive. */
function headsOf(heads: Record<string, Head>, i: number): Record<string, Head> {
  return Object.fromEntries(
    Object.entries(heads).map(([name, { data, shape }]) => {
      const per = shape[1] * shape[2] * shape[3];
      return [name, { data: data.slice(i * per, (i + 1) * per), shape: [1, shape[1], shape[2], shape[3]] }];
    }),
  );
}

export interface EncodeBatcher {
  /**
   * One photo's features and heads, from a pass shared with the photos asked for alongside it. A
   * photo whose signal has aborted by the time its pass starts is dropped from it (the promise rejects).
   */
  encode(pixels: Uint8Array, signal?: AbortSignal): Promise<Encoded>;
  /** Photos encoded so far, and the encoder passes that ran them (fewer when photos were batched). */
  counts(): { photos: number; calls: number };
}

/** Batches concurrent encode() calls, at most maxBatch photos a pass. */
export function encodeBatcher(encoder: Encoder, maxBatch = 8): EncodeBatcher {
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`the encoder's batch must be a positive integer, got ${maxBatch}`);
  let queue: Pending[] = [];
  let photos = 0, calls = 0;
  // Photos whose decoding finished in the same turn of the event loop share a pass.
  const schedule = flushEachTurn(flush, () => queue.length > 0);
  /** One encoder pass over `batch`; each caller gets its own photo's part. */
  async function pass(batch: Pending[]) {
    const { feats, heads } = await encoder.encodeWithHeads(batch.map((p) => p.pixels));
    photos += batch.length;
    calls++;
    if (batch.length === 1) return batch[0].resolve({ feats, heads });
    const parts = tf.split(feats, batch.length, 0) as tf.Tensor3D[];
    feats.dispose();
    batch.forEach((p, i) => p.resolve({ feats: parts[i], heads: headsOf(heads, i) }));
  }
  async function flush() {
    // Photos whose caller gave up while they waited take no place in the pass.
    for (const p of queue) if (p.signal?.aborted) p.reject(p.signal.reason);
    queue = queue.filter((p) => !p.signal?.aborted);
    const batch = queue.slice(0, maxBatch);
    queue = queue.slice(batch.length);
    try {
      if (batch.length) await pass(batch);
    } catch (e) {
      // One photo must not fail the others: a failed shared pass is run again photo by photo.
      if (batch.length === 1) batch[0].reject(e);
      else for (const p of batch) await pass([p]).catch((e1: unknown) => p.reject(e1));
    }
  }
  return {
    encode: (pixels, signal) =>
      new Promise<Encoded>((resolve, reject) => {
        queue.push({ pixels, signal, resolve, reject });
        schedule();
      }),
    counts: () => ({ photos, calls }),
  };
}
