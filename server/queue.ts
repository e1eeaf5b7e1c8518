/**
 * A bounded job queue: at most `concurrency` jobs run, at most `maxQueue` wait, and one more is
 * refused at once with QueueFullError (never left hanging). Waiting jobs hear their position
 * (1 = next) when they join and each time they move up. An AbortSignal removes a waiting job
 * and is handed to a running one, which must stop at its next step.
 */

export class QueueFullError extends Error {
  override name = "QueueFullError";
}

export class QueueClosedError extends Error {
  override name = "QueueClosedError";
}

export interface QueueOptions {
  concurrency: number;
  maxQueue: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Called with 1-based positions while the job waits (not called if it starts at once). */
  onPosition?: (position: number) => void;
}

interface Waiting {
  start: () => void;
  onPosition?: (position: number) => void;
}

export class JobQueue {
  private running = 0;
  private readonly waiting: Waiting[] = [];
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: QueueOptions) {
    if (!(opts.concurrency >= 1)) throw new Error(`queue: concurrency must be >= 1, got ${opts.concurrency}`);
    if (!(opts.maxQueue >= 0)) throw new Error(`queue: maxQueue must be >= 0, got ${opts.maxQueue}`);
  }

  get stats(): { running: number; waiting: number; concurrency: number; maxQueue: number } {
    return { running: this.running, waiting: this.waiting.length, ...this.opts };
  }

  /** True when another job would be refused right now. */
  get full(): boolean {
    return this.running >= this.opts.concurrency && this.waiting.length >= this.opts.maxQueue;
  }

  /** Runs `task` when a slot is free. Rejects with QueueFullError, QueueClosedError or the signal's reason. */
  async run<T>(task: (signal: AbortSignal | undefined) => Promise<T>, { signal, onPosition }: RunOptions = {}): Promise<T> {
    if (this.closed) throw new QueueClosedError("the server is shutting down");
    signal?.throwIfAborted();
    if (this.running >= this.opts.concurrency) {
      if (this.waiting.length >= this.opts.maxQueue) {
        throw new QueueFullError(`the server is busy (${this.running} running, ${this.waiting.length} waiting); try again shortly`);
      }
      await new Promise<void>((resolve, reject) => {
        const entry: Waiting = { start: resolve, onPosition };
        const onAbort = () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) {
            this.waiting.splice(i, 1);
            this.announce(i);
            reject(signal!.reason);
            this.checkIdle();
          }
        };
        entry.start = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiting.push(entry);
        onPosition?.(this.waiting.length);
      });
    } else {
      this.running++;
    }
    // A slot is ours now (next() counted it for us if we waited).
    try {
      signal?.throwIfAborted();
      return await task(signal);
    } finally {
      this.running--;
      this.next();
    }
  }

  /** Stops taking new jobs; jobs already accepted still run. */
  close(): void {
    this.closed = true;
  }

  /** Resolves when nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private next(): void {
    while (this.running < this.opts.concurrency && this.waiting.length > 0) {
      const entry = this.waiting.shift()!;
      this.running++;
      entry.start();
      this.announce(0);
    }
    this.checkIdle();
  }

  /** Tells waiting jobs from index `from` on their new positions. */
  private announce(from: number): void {
    for (let i = from; i < this.waiting.length; i++) {
      try {
        this.waiting[i].onPosition?.(i + 1);
      } catch {
        // A listener's failure must not break the queue.
      }
    }
  }

  private checkIdle(): void {
    if (this.running === 0 && this.waiting.length === 0) {
      const ws = this.idleWaiters;
      this.idleWaiters = [];
      ws.forEach((w) => w());
    }
  }
}
