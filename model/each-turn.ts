/**
 * Batching by event-loop turn, for the decoder's steps (model/onnx-decoder.ts) and the encoder's
 * photos (model/encode-batcher.ts): requests made during one turn are served by one flush, which
 * runs after that turn (setImmediate). Requests made while a flush is scheduled or running wait for
 * the next one, which follows as soon as it ends.
 */
export function flushEachTurn(flush: () => Promise<void>, pending: () => boolean): () => void {
  let busy = false;
  const schedule = () => {
    if (busy) return;
    busy = true;
    setImmediate(async () => {
      try {
        await flush();
      } finally {
        busy = false;
        if (pending()) schedule();
      }
    });
  };
  return schedule;
}
