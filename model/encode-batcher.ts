/**
 * Photos that concurrent captions want encoded at the same moment (a folder that the CLI captions 8
 * at a time) go through the encoder as one batch. The encoder's convolutions use
 * both cores better on several photos than on one: on this 2-core machine the ONNX encoder with
 * its detection head ran 43-45 photos/s one at a time and 55-62 at 4 to 8 (scratch timing, the
 * batch sizes taking turns). A lone photo waits for nothing but this turn of the event loop. A
 * photo in a shared pass gets its features later than alone, and onnxruntime keeps the larger
 * pass's buffers: worth it for a folder, not for a server (LoadOptions.encoderBatch).
 */
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
  resolve(r: Encoded): void;
  reject(e: unknown): void;
}

/** Photo i's slice of heads computed for a batch. */
function headsOf(heads: Record<string, Head>, i: number): Record<string, Head> {
  return Object.fromEntries(
    Object.entries(heads).map(([name, { data, shape }]) => {
      const per = shape[1] * shape[2] * shape[3];
      return [name, { data: data.subarray(i * per, (i + 1) * per), shape: [1, shape[1], shape[2], shape[3]] }];
    }),
  );
}

export interface EncodeBatcher {
  /** One photo's features and heads, from a pass shared with the photos asked for alongside it. */
  encode(pixels: Uint8Array): Promise<Encoded>;
  /** Photos encoded so far, and the encoder passes that ran them (fewer when photos were batched). */
  counts(): { photos: number; calls: number };
}

/** Batches concurrent encode() calls, at most maxBatch photos a pass. */
export function encodeBatcher(encoder: Encoder, maxBatch = 8): EncodeBatcher {
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`the encoder's batch must be a positive integer, got ${maxBatch}`);
  let queue: Pending[] = [];
  let photos = 0, calls = 0;
  let busy = false; // a flush is scheduled or running: photos asked for meanwhile wait for the next one
  const schedule = () => {
    if (busy) return;
    busy = true;
    // Wait for this turn of the event loop: photos whose decoding finished in it join the batch.
    setImmediate(flush);
  };
  async function flush() {
    const batch = queue.slice(0, maxBatch);
    queue = queue.slice(batch.length);
    try {
      const { feats, heads } = await encoder.encodeWithHeads(batch.map((p) => p.pixels));
      photos += batch.length;
      calls++;
      if (batch.length === 1) {
        batch[0].resolve({ feats, heads });
      } else {
        const parts = tf.split(feats, batch.length, 0) as tf.Tensor3D[];
        feats.dispose();
        batch.forEach((p, i) => p.resolve({ feats: parts[i], heads: headsOf(heads, i) }));
      }
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      busy = false;
      if (queue.length) schedule();
    }
  }
  return {
    encode: (pixels) =>
      new Promise<Encoded>((resolve, reject) => {
        queue.push({ pixels, resolve, reject });
        schedule();
      }),
    counts: () => ({ photos, calls }),
  };
}
