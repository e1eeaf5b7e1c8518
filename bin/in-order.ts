/**
 * Runs `work` over `items` with up to `concurrency` in flight, yielding each outcome in input
 * order as soon as it and everything before it are done. The CLI captions folders with it: while
 * one photo is in the encoder, others are being decoded from disk or written word by word, and
 * their decoder steps share native calls (model/onnx-decoder.ts).
 */
export type Outcome<R> = { index: number; value: R; error?: undefined } | { index: number; value?: undefined; error: unknown };

export async function* inOrder<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): AsyncGenerator<Outcome<R>> {
  const done = new Map<number, Outcome<R>>();
  let next = 0; // the next item to start
  let wake: (() => void) | null = null;
  const start = () => {
    const index = next++;
    work(items[index], index).then(
      (value) => done.set(index, { index, value }),
      (error: unknown) => done.set(index, { index, error }),
    ).finally(() => wake?.());
  };
  while (next < Math.min(concurrency, items.length)) start();
  for (let i = 0; i < items.length; i++) {
    while (!done.has(i)) await new Promise<void>((r) => (wake = r));
    const outcome = done.get(i)!;
    done.delete(i);
    if (next < items.length) start();
    yield outcome;
  }
}
