/**
 * Socket handlers for one connection: `caption` starts a job whose progress is emitted to this
 * socket only (`queued`, `started`, one `step` per word, then `done` or `failed`); `cancel` and
 * disconnecting abort it. A client has at most one job: a new `caption` replaces the old one.
 */
import { randomUUID } from "node:crypto";
import type { Socket } from "socket.io";
import { objectIndex, toChoices, toObjectResults, toWordResults, type CaptionJobs } from "../caption-jobs.ts";
import type { ServerConfig } from "../config.ts";
import { admit, StudioError, toClientError, tooLargeMessage } from "../errors.ts";
import { ErrorCode, type CaptionAck, type CaptionRequest, type ClientEvents, type ServerEvents, type StepEvent } from "../events.ts";
import type { ResultStore } from "../result-store.ts";

export type StudioSocket = Socket<ClientEvents, ServerEvents>;

export interface CaptionSocketDeps {
  jobs: CaptionJobs;
  results: ResultStore;
  config: ServerConfig;
  pictureUrl: (id: string) => string;
}

function readRequest(req: unknown, config: ServerConfig, jobs: CaptionJobs) {
  if (typeof req !== "object" || req === null) throw new StudioError(ErrorCode.BadRequest, "caption expects an object { image, beam?, maxLen?, objects?, prefix? }");
  const { image, beam, maxLen, objects, prefix } = req as Partial<CaptionRequest>;
  let bytes: Uint8Array;
  if (image instanceof Uint8Array) bytes = image;
  else if (image instanceof ArrayBuffer) bytes = new Uint8Array(image);
  else throw new StudioError(ErrorCode.BadRequest, "image must be binary data (ArrayBuffer, Uint8Array or Buffer)");
  if (bytes.length > config.uploadLimit) {
    throw new StudioError(ErrorCode.TooLarge, tooLargeMessage(config.uploadLimit, bytes.length));
  }
  return { bytes, opts: jobs.options({ beam, maxLen, objects, prefix }) };
}

export function registerCaptionSocket(socket: StudioSocket, { jobs, results, config, pictureUrl }: CaptionSocketDeps): void {
  let current: { id: string; ctl: AbortController } | null = null;

  async function handle(req: unknown, ack: unknown): Promise<void> {
    const reply = typeof ack === "function" ? (ack as (res: CaptionAck) => void) : () => {};
    let id: string | null = null;
    try {
      const { bytes, opts } = readRequest(req, config, jobs);
      // Refused during shutdown without touching the job that is finishing. A full queue is left to
      // jobs.run: replacing this client's own waiting job may make room.
      admit({ closing: jobs.stats.closing, full: false });
      current?.ctl.abort(new StudioError(ErrorCode.Cancelled, "replaced by a newer caption"));
      const mine = { id: randomUUID(), ctl: new AbortController() };
      id = mine.id;
      current = mine;
      reply({ ok: true, id: mine.id });
      let startedObjects = 0;
      const out = await jobs.run(bytes, opts, {
        signal: mine.ctl.signal,
        onQueued: (position) => socket.emit("queued", { id: mine.id, position }),
        // `started` once the image is encoded, with what the detector found (before any step).
        onDecoding: ({ grid, objects }) => {
          startedObjects = objects.length;
          socket.emit("started", { id: mine.id, grid, objects });
        },
        onStep: (s) => {
          const step: StepEvent = { id: mine.id, index: s.index, word: s.word, prob: s.prob, alpha: s.alpha, hypothesis: s.hypothesis, probs: s.probs, top: toChoices(s.top) };
          const object = objectIndex(s.object, startedObjects);
          if (object !== undefined) step.object = object;
          if (s.beams) step.beams = s.beams.map((b) => ({ words: b.words, logProb: b.logProb, done: b.done, best: b.best }));
          socket.emit("step", step);
        },
      });
      if (current === mine) current = null;
      const { caption, grid } = out.result;
      const objects = toObjectResults(out.result.objects ?? []);
      const words = toWordResults(out.result.words, objects.length);
      results.put(mine.id, bytes, { caption, words, grid, objects });
      socket.emit("done", { id: mine.id, caption, words, grid, objects, logProb: out.result.logProb, prefix: opts.prefix, ms: Math.round(out.ms), waitMs: Math.round(out.waitMs), picture: pictureUrl(mine.id) });
    } catch (e) {
      if (current?.id === id) current = null;
      const err = toClientError(e);
      if (id === null) reply({ ok: false, code: err.code, message: err.message });
      if (socket.connected) socket.emit("failed", { id, code: err.code, message: err.message });
    }
  }

  socket.on("caption", (req, ack) => {
    void jobs.track(handle(req, ack));
  });
  socket.on("cancel", () => current?.ctl.abort(new StudioError(ErrorCode.Cancelled, "cancelled")));
  socket.on("disconnect", () => current?.ctl.abort(new StudioError(ErrorCode.Cancelled, "the client disconnected")));
}
