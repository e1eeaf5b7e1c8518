/**
 * One Gradio prediction is one caption job on the studio's own queue (server/caption-jobs.ts),
 * told to the client in Gradio's messages: `estimation` while it waits (its rank and an ETA),
 * `process_starts`, one `process_generating` each time the caption changes (the words so far;
 * no picture yet), then `process_completed` with the caption and the result picture, or with an
 * error. The picture is drawn when it is fetched (server/picture.ts, from a ResultStore), so
 * clients that want only the text pay nothing for it.
 */
import { toObjectResults, toWordResults, type CaptionJobs } from "../caption-jobs.ts";
import { toClientError } from "../errors.ts";
import type { ResultStore } from "../result-store.ts";
import type { EventOutput, EventSessions } from "./event-sessions.ts";
import { API_PREFIX } from "./gradio-spec.ts";

export interface PredictorDeps {
  jobs: CaptionJobs;
  sessions: EventSessions;
  results: ResultStore;
}

export interface PredictRequest {
  eventId: string;
  bytes: Uint8Array;
  /** Public URL of this server as the client sees it; output file URLs start with it. */
  root: string;
  signal: AbortSignal;
}

export interface Predictor {
  /** Runs the prediction; reports everything, including failure, as messages. Never throws. */
  run(req: PredictRequest): Promise<void>;
}

/** Path of an event's result picture under /gradio_api/file=. */
export const picturePath = (eventId: string) => `result/${eventId}/caption.png`;

/** A Gradio FileData for the result picture. */
function pictureFile(root: string, eventId: string) {
  const path = picturePath(eventId);
  return {
    path,
    url: `${root}${API_PREFIX}/file=${path}`,
    size: null,
    orig_name: "caption.png",
    mime_type: "image/png",
    is_stream: false,
    meta: { _type: "gradio.FileData" },
  };
}

/** Weight of the newest job in the running mean of job times. */
const SMOOTHING = 0.2;

export function createPredictor({ jobs, sessions, results }: PredictorDeps): Predictor {
  let meanMs: number | null = null;
  const mean = () => (meanMs === null ? null : Math.round(meanMs) / 1000);
  /** Rough seconds until a job at 0-based `rank` is done: the jobs ahead share the slots, then its own run. */
  const eta = (rank: number) => {
    const s = mean();
    return s === null ? null : Math.round(s * ((rank + 1) / jobs.stats.concurrency + 1) * 1000) / 1000;
  };

  async function run({ eventId, bytes, root, signal }: PredictRequest): Promise<void> {
    let started = 0;
    const output = (data: unknown[], generating: boolean): EventOutput => ({
      data,
      is_generating: generating,
      duration: started ? Math.round(performance.now() - started) / 1000 : null,
      average_duration: mean(),
      render_config: null,
      changed_state_ids: [],
    });
    let shown = "";
    try {
      const out = await jobs.run(bytes, jobs.options({}), {
        signal,
        onQueued: (position) => {
          sessions.send(eventId, { msg: "estimation", event_id: eventId, rank: position - 1, queue_size: jobs.stats.waiting, rank_eta: eta(position - 1) });
        },
        onStarted: () => {
          started = performance.now();
          sessions.send(eventId, { msg: "process_starts", event_id: eventId, eta: mean() });
        },
        onStep: (step) => {
          if (step.text === shown) return;
          shown = step.text;
          sessions.send(eventId, { msg: "process_generating", event_id: eventId, output: output([step.text, null], true), success: true });
        },
      });
      meanMs = meanMs === null ? out.ms : meanMs + SMOOTHING * (out.ms - meanMs);
      const { caption, grid } = out.result;
      // The outputs stay [caption, picture]; the objects appear only in the picture.
      const objects = toObjectResults(out.result.objects ?? []);
      results.put(eventId, bytes, { caption, words: toWordResults(out.result.words, objects.length), grid, objects });
      sessions.send(eventId, { msg: "process_completed", event_id: eventId, output: output([caption, pictureFile(root, eventId)], false), success: true });
    } catch (e) {
      const err = toClientError(e);
      sessions.send(eventId, {
        msg: "process_completed",
        event_id: eventId,
        output: { error: err.message, title: "Error", visible: true, duration: null },
        success: false,
        title: "Error",
      });
    }
  }

  return { run };
}
