/**
 * Captioning as jobs: the one path both the HTTP route and the socket handler use. A job checks
 * the upload's header (cheap, so bad files and a full queue are refused before waiting), waits
 * for a queue slot, decodes the image, and streams the model's steps to the caller's hooks.
 * Every job has a timeout and honours its caller's AbortSignal; whatever ends it, the model's
 * generator is closed so its tensors are freed.
 */
import { ImageError, imageError, type Captioner, type CaptionResult, type CaptionStart, type CaptionStep, type CaptionWord, type DetectedObject, type WordChoice } from "../model/index.ts";
import type { ServerConfig } from "./config.ts";
import { inspectUpload } from "./decode-upload.ts";
import { admit, StudioError } from "./errors.ts";
import { ErrorCode, type ObjectResult, type WordResult } from "./events.ts";
import { JobQueue, QueueClosedError, QueueFullError } from "./queue.ts";

export interface JobOptions {
  beam: number;
  maxLen: number;
  /** Detect objects (and ground the caption in them); false = the Flickr8k-only captioner. */
  objects: boolean;
  /** Words the caption must start with (checked by the model's vocabulary); empty = none. */
  prefix: string[];
}

export interface JobHooks {
  signal?: AbortSignal;
  /** The job waits; 1 = next. */
  onQueued?: (position: number) => void;
  /** The job got a slot; the image is about to be decoded and encoded. */
  onStarted?: (grid: [number, number]) => void;
  /**
   * The image is encoded and its objects detected: called once per job, before the first
   * onStep (and before the job resolves, even for a caption of no words).
   */
  onDecoding?: (start: { grid: [number, number]; objects: ObjectResult[] }) => void;
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
  /**
   * Checks beam/maxLen (numbers or numeric strings), objects (a boolean, or "true"/"false"/"1"/"0")
   * and prefix (words, checked by the model) from a request; throws StudioError(bad_request), or the
   * model's PrefixError (also a bad_request to clients, server/errors.ts).
   */
  options(input: { beam?: unknown; maxLen?: unknown; objects?: unknown; prefix?: unknown }): JobOptions;
  run(bytes: Uint8Array, opts: JobOptions, hooks?: JobHooks): Promise<JobOutcome>;
  /** Counts a request's whole handling as in flight, for a graceful shutdown. */
  track<T>(p: Promise<T>): Promise<T>;
  /** `full`: a new job would be refused busy now (JobQueue.full). */
  readonly stats: { running: number; waiting: number; concurrency: number; maxQueue: number; inFlight: number; closing: boolean; full: boolean };
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

function boolOption(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined || v === null || v === "") return fallback;
  if (typeof v === "boolean") return v;
  if (typeof v === "string") {
    const t = v.trim().toLowerCase();
    if (t === "true" || t === "1") return true;
    if (t === "false" || t === "0") return false;
  }
  throw new StudioError(ErrorCode.BadRequest, `${name} must be true or false (or 1 / 0), got ${JSON.stringify(typeof v === "string" ? v.slice(0, 20) : v) ?? typeof v}`);
}

/** The model's detections as the API sends them (a copy: only the documented fields). */
export function toObjectResults(objects: readonly DetectedObject[]): ObjectResult[] {
  return objects.map((o) => ({ label: o.label, score: o.score, box: [o.box[0], o.box[1], o.box[2], o.box[3]] }));
}

/** A word's or step's `object` index, kept only when it points into `count` objects. */
export function objectIndex(object: number | undefined, count: number): number | undefined {
  return Number.isInteger(object) && object! >= 0 && object! < count ? object : undefined;
}

/** The model's words as the API sends them: `object` only where the word names a detection. */
export function toWordResults(words: readonly CaptionWord[], objectCount: number): WordResult[] {
  return words.map((w) => {
    const object = objectIndex(w.object, objectCount);
    const top = toChoices(w.top);
    return object === undefined ? { word: w.word, prob: w.prob, alpha: w.alpha, top } : { word: w.word, prob: w.prob, alpha: w.alpha, object, top };
  });
}

/** A word's alternatives as the API sends them (a copy: only the documented fields). */
export const toChoices = (top: readonly WordChoice[] | undefined): WordChoice[] => (top ?? []).map((c) => ({ word: c.word, prob: c.prob }));

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
  // Header checks run before a job queues (a bad file is refused without waiting its turn), so they
  // get a bound of their own: at most --concurrency at once, as many waiting as the queue holds.
  const checks = new JobQueue({ concurrency: config.concurrency, maxQueue: config.maxQueue });
  const limits = { pixelLimit: config.pixelLimit };
  const inFlight = new Set<Promise<unknown>>();
  const shutdown = new AbortController();
  let closing = false;

  async function run(bytes: Uint8Array, opts: JobOptions, hooks: JobHooks = {}): Promise<JobOutcome> {
    admit({ closing, full: queue.full });
    // One controller per job, fed by the caller's signal, shutdown and the timeout. (Plain
    // listeners removed in `finally`, rather than AbortSignal.any, keep long-lived signals clean.)
    const ctl = new AbortController();
    const unlink = link(ctl, [hooks.signal, shutdown.signal]);
    const signal = ctl.signal;
    try {
      const info = await checks.run(() => inspectUpload(bytes, limits), { signal });
      const enqueued = performance.now();
      return await queue.run(
        async () => {
          const t0 = performance.now();
          const timer = setTimeout(() => ctl.abort(new StudioError(ErrorCode.Timeout, `the caption took longer than ${config.jobTimeoutMs} ms and was stopped`)), config.jobTimeoutMs);
          try {
            hooks.onStarted?.([...captioner.grid]);
            // `onDecoding` comes from the model's onStart (after encoding, with the detections);
            // should a captioner not call it, the first step (or the result) stands in for it,
            // so clients can always rely on it coming first, exactly once.
            let begun = false;
            const begin = (s: CaptionStart) => {
              if (begun || signal.aborted) return;
              begun = true;
              hooks.onDecoding?.({ grid: [s.grid[0], s.grid[1]], objects: toObjectResults(s.objects) });
            };
            // The header passed --pixel-limit; the model decodes under the same limit (its own default is 40 MP).
            const gen = captioner.steps(bytes, { beam: opts.beam, maxLen: opts.maxLen, objects: opts.objects, prefix: opts.prefix, pixelLimit: config.pixelLimit, signal, onStart: begin });
            let last = "";
            try {
              for (;;) {
                const r = await gen.next();
                if (r.done) {
                  begin({ grid: r.value.grid, objects: r.value.objects ?? [] });
                  return { result: r.value, ms: performance.now() - t0, waitMs: t0 - enqueued };
                }
                signal.throwIfAborted();
                begin({ grid: [...captioner.grid], objects: [] });
                // The search yields only changes; this guard keeps the one-step-per-change contract
                // for clients even if a captioner does not.
                const key = `${r.value.index}\u0000${r.value.hypothesis.join(" ")}\u0000${r.value.beams?.map((b) => `${b.words.join(" ")}${b.done ? "." : ""}${b.best ? "*" : ""}`).join("|") ?? ""}`;
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
            if (e instanceof ImageError) throw imageError(e, { format: info.format });
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
      const beam = intOption("beam", input.beam, config.beam, config.maxBeam);
      const maxLen = intOption("maxLen", input.maxLen, config.maxLen, config.maxLenLimit);
      // checkPrefix's PrefixError becomes a 400 bad_request in toClientError, like every refusal.
      const prefix = input.prefix === undefined || input.prefix === null ? [] : captioner.checkPrefix(input.prefix as string | string[], maxLen);
      return {
        beam,
        maxLen,
        objects: boolOption("objects", input.objects, true),
        prefix,
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
      return { ...queue.stats, full: queue.full, inFlight: inFlight.size, closing };
    },
    async close(graceMs) {
      closing = true;
      queue.close();
      checks.close();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.allSettled([...inFlight]), late]);
      shutdown.abort(new StudioError(ErrorCode.ShuttingDown, "the server is shutting down"));
      await Promise.allSettled([...inFlight]);
      clearTimeout(timer);
    },
  };
}
