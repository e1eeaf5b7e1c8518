/**
 * Captioning as jobs: the one path both the HTTP route and the socket handler use. A job checks
 * the upload's header (cheap, so bad files and a full queue are refused before waiting), waits
 * for a queue slot, decodes the image, and streams the model's steps to the caller's hooks.
 * Every job has a timeout and honours its caller's AbortSignal; whatever ends it, the model's
 * generator is closed so its tensors are freed.
 */
import { ImageError } from "../model/image.ts";
import type { Captioner, CaptionResult, CaptionStep } from "../model/types.ts";
import type { ServerConfig } from "./config.ts";
import { decodeMessage, inspectUpload } from "./decode-upload.ts";
import { StudioError } from "./errors.ts";
import { ErrorCode } from "./events.ts";
import { JobQueue, QueueClosedError, QueueFullError } from "./queue.ts";

export interface JobOptions {
  beam: number;
  maxLen: number;
}

export interface JobHooks {
  signal?: AbortSignal;
  /** The job waits; 1 = next. */
  onQueued?: (position: number) => void;
  /** The job got a slot; decoding starts. */
  onStarted?: (grid: [number, number]) => void;
  /** One decoded step (unchanged repeats are skipped); the next step waits for a returned promise. */
  onStep?: (step: CaptionStep) => void | Promise<void>;
}

export interface JobOutcome {
  result: CaptionResult;
  /** Image decode + model time, ms. */
  ms: number;
  /** Time waiting for a slot, ms. */
  waitMs: number;
}

export interface CaptionJobs {
  /** Checks beam/maxLen from a request (numbers or numeric strings); throws StudioError(bad_request). */
  options(input: { beam?: unknown; maxLen?: unknown }): JobOptions;
  run(bytes: Uint8Array, opts: JobOptions, hooks?: JobHooks): Promise<JobOutcome>;
  /** Counts a request's whole handling as in flight, for a graceful shutdown. */
  track<T>(p: Promise<T>): Promise<T>;
  readonly stats: { running: number; waiting: number; concurrency: number; maxQueue: number; inFlight: number; closing: boolean };
  /** Refuses new jobs, lets accepted ones finish for up to graceMs, then aborts the rest. */
  close(graceMs: number): Promise<void>;
}

function intOption(name: string, v: unknown, fallback: number, max: number): number {
  if (v === undefined || v === null || v === "") return fallback;
  const n = typeof v === "number" ? v : typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new StudioError(ErrorCode.BadRequest, `${name} must be a whole number from 1 to ${max}`);
  }
  return n;
}

/** One trip round the event loop (I/O callbacks and timers get to run). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Aborts `ctl` when any of `signals` aborts (with its reason); returns the unlinker. */
function link(ctl: AbortController, signals: (AbortSignal | undefined)[]): () => void {
  const offs: (() => void)[] = [];
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) {
      ctl.abort(s.reason);
      break;
    }
    const on = () => ctl.abort(s.reason);
    s.addEventListener("abort", on, { once: true });
    offs.push(() => s.removeEventListener("abort", on));
  }
  return () => offs.forEach((off) => off());
}

export function createCaptionJobs({ captioner, config }: { captioner: Captioner; config: ServerConfig }): CaptionJobs {
  const queue = new JobQueue({ concurrency: config.concurrency, maxQueue: config.maxQueue });
  const limits = { pixelLimit: config.pixelLimit };
  const inFlight = new Set<Promise<unknown>>();
  const shutdown = new AbortController();
  let closing = false;

  async function run(bytes: Uint8Array, opts: JobOptions, hooks: JobHooks = {}): Promise<JobOutcome> {
    if (closing) throw new StudioError(ErrorCode.ShuttingDown, "the server is shutting down; try again in a moment");
    if (queue.full) throw new StudioError(ErrorCode.Busy, "the server is busy: the queue is full; try again shortly");
    const info = await inspectUpload(bytes, limits);
    const enqueued = performance.now();
    // One controller per job, fed by the caller's signal, shutdown and the timeout. (Plain
    // listeners removed in `finally`, rather than AbortSignal.any, keep long-lived signals clean.)
    const ctl = new AbortController();
    const unlink = link(ctl, [hooks.signal, shutdown.signal]);
    const signal = ctl.signal;
    try {
      return await queue.run(
        async () => {
          const t0 = performance.now();
          const timer = setTimeout(() => ctl.abort(new StudioError(ErrorCode.Timeout, `the caption took longer than ${config.jobTimeoutMs} ms and was stopped`)), config.jobTimeoutMs);
          try {
            hooks.onStarted?.([...captioner.grid]);
            const gen = captioner.steps(bytes, { beam: opts.beam, maxLen: opts.maxLen, signal });
            let last = "";
            try {
              for (;;) {
                const r = await gen.next();
                if (r.done) return { result: r.value, ms: performance.now() - t0, waitMs: t0 - enqueued };
                signal.throwIfAborted();
                // The search yields only changes; this guard keeps the one-step-per-change contract
                // for clients even if a captioner does not.
                const key = `${r.value.index}\u0000${r.value.hypothesis.join(" ")}`;
                if (key === last) continue;
                last = key;
                await hooks.onStep?.(r.value);
                // tfjs resolves between steps without returning to the event loop; without this
                // turn, socket writes would batch up, and aborts (disconnects, timeouts) and other
                // requests would wait for the whole caption.
                await turn();
              }
            } finally {
              await gen.return(undefined as never).catch(() => undefined);
            }
          } catch (e) {
            // The model may throw its own error when aborted; report why we aborted instead.
            if (signal.aborted) throw signal.reason;
            // The header was fine but the pixels are not (truncated, corrupt): say so, naming the format.
            if (e instanceof ImageError) throw new StudioError(ErrorCode.BadImage, decodeMessage(info.format, e.message));
            throw e;
          } finally {
            clearTimeout(timer);
          }
        },
        { signal, onPosition: hooks.onQueued },
      );
    } catch (e) {
      if (e instanceof QueueFullError) throw new StudioError(ErrorCode.Busy, e.message);
      if (e instanceof QueueClosedError) throw new StudioError(ErrorCode.ShuttingDown, "the server is shutting down; try again in a moment");
      throw e;
    } finally {
      unlink();
    }
  }

  return {
    options(input) {
      return {
        beam: intOption("beam", input.beam, config.beam, config.maxBeam),
        maxLen: intOption("maxLen", input.maxLen, config.maxLen, config.maxLenLimit),
      };
    },
    run,
    track(p) {
      inFlight.add(p);
      const drop = () => inFlight.delete(p);
      p.then(drop, drop);
      return p;
    },
    get stats() {
      return { ...queue.stats, inFlight: inFlight.size, closing };
    },
    async close(graceMs) {
      closing = true;
      queue.close();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.allSettled([...inFlight]), late]);
      shutdown.abort(new StudioError(ErrorCode.ShuttingDown, "the server is shutting down"));
      await Promise.allSettled([...inFlight]);
      clearTimeout(timer);
    },
  };
}
