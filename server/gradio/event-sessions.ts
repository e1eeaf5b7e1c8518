/**
 * Gradio's event streams. A client joins events to a session (its `session_hash`), then reads
 * the session's messages from one server-sent-event stream: `GET /gradio_api/queue/data` in the
 * JSON form `@gradio/client` and `gradio_client` read, or `GET /gradio_api/call/<api>/<id>` in
 * the named-event form curl users read (there the session is the event itself).
 *
 * Messages sent before the stream connects are buffered, so a client may join first and listen
 * second (both clients do). When the session's last event completes the stream is closed
 * (`close_stream`), as Gradio's sse_v3 protocol expects. A client that drops its stream cancels
 * the session's unfinished events. Idle streams get heartbeats; sessions nobody reads expire.
 */
import type { Request, Response } from "express";
import { StudioError } from "../errors.ts";
import { ErrorCode } from "../events.ts";

/** What a prediction produced so far (`data` has one value per output). */
export interface EventOutput {
  data: unknown[];
  is_generating: boolean;
  /** Seconds since the event started processing. */
  duration: number | null;
  /** Seconds a prediction takes on average (null until one has finished). */
  average_duration: number | null;
  render_config: null;
  changed_state_ids: never[];
}

/** A failed prediction's output; the fields Gradio's `gr.Error` sends. */
export interface ErrorOutput {
  error: string;
  title: string;
  visible: boolean;
  duration: number | null;
}

export type GradioMessage =
  | { msg: "estimation"; event_id: string; rank: number; queue_size: number; rank_eta: number | null }
  | { msg: "process_starts"; event_id: string; eta: number | null }
  | { msg: "process_generating"; event_id: string; output: EventOutput; success: true }
  | { msg: "process_completed"; event_id: string; output: EventOutput; success: true }
  | { msg: "process_completed"; event_id: string; output: ErrorOutput; success: false; title: string }
  | { msg: "heartbeat"; event_id: null }
  | { msg: "close_stream"; event_id: null }
  | { msg: "unexpected_error"; event_id: null; message: string; session_not_found: boolean; success: false };

/** `queue`: `data: {json}` lines for the clients; `call`: `event: <name>` + `data:` for curl. */
export type StreamFormat = "queue" | "call";

export interface SessionLimits {
  /** Interval of heartbeats on open streams, ms (Gradio: 15 s; gradio_client times out after 20 s). */
  heartbeatMs: number;
  /** A session with no stream and nothing running is dropped after this long, ms. */
  idleMs: number;
  /** Most sessions at once; more are refused as busy. */
  maxSessions: number;
  /** Most messages buffered for a session without a stream; the oldest progress messages go first. */
  maxBuffered: number;
}

interface Stream {
  res: Response;
  format: StreamFormat;
  write: (m: GradioMessage) => void;
  heartbeat: NodeJS.Timeout;
  /** Ended by us (completed or replaced), not by the client leaving. */
  ended: boolean;
}

interface Session {
  hash: string;
  pending: Set<string>;
  buffer: GradioMessage[];
  stream: Stream | null;
  touched: number;
}

/** One JSON-patch-like edit, as Gradio's clients apply them to the previous value. */
type Edit = ["replace" | "append", [], unknown];

/** The edits that turn `prev` into `next`: none, an append (the caption grew), or a replacement. */
export function diffValue(prev: unknown, next: unknown): Edit[] {
  if (prev === next) return [];
  if (typeof prev === "string" && typeof next === "string" && next.startsWith(prev)) return [["append", [], next.slice(prev.length)]];
  return [["replace", [], next]];
}

/** The queue form. From the second `process_generating` of an event on, outputs are sent as edits (sse_v2+). */
function queueWriter(): (m: GradioMessage) => string {
  const last = new Map<string, unknown[]>();
  return (m) => {
    let out: GradioMessage = m;
    if (m.msg === "process_generating") {
      const prev = last.get(m.event_id);
      last.set(m.event_id, m.output.data);
      if (prev) out = { ...m, output: { ...m.output, data: m.output.data.map((v, i) => diffValue(prev[i], v)) } };
    } else if (m.msg === "process_completed") {
      last.delete(m.event_id);
    }
    return `data: ${JSON.stringify(out)}\n\n`;
  };
}

/** The curl form: whole outputs each time, named events, nothing about the queue. */
function callWriter(): (m: GradioMessage) => string | null {
  const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  return (m) => {
    switch (m.msg) {
      case "process_generating":
        return event("generating", m.output.data);
      case "process_completed":
        return m.success ? event("complete", m.output.data) : event("error", m.output);
      case "heartbeat":
        return event("heartbeat", null);
      case "unexpected_error":
        return event("error", m.message);
      default:
        return null;
    }
  };
}

export class EventSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly events = new Map<string, { session: Session; ctl: AbortController }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly limits: SessionLimits) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(limits.idleMs, 60_000)));
    this.sweeper.unref();
  }

  has(hash: string): boolean {
    return this.sessions.has(hash);
  }

  /** Adds an event to a session (made if new); returns the signal that cancels the event. */
  join(hash: string, eventId: string): AbortSignal {
    let session = this.sessions.get(hash);
    if (!session) {
      if (this.sessions.size >= this.limits.maxSessions) this.sweep();
      if (this.sessions.size >= this.limits.maxSessions) {
        throw new StudioError(ErrorCode.Busy, "the server is busy: too many open sessions; try again shortly");
      }
      session = { hash, pending: new Set(), buffer: [], stream: null, touched: Date.now() };
      this.sessions.set(hash, session);
    }
    const ctl = new AbortController();
    session.pending.add(eventId);
    session.touched = Date.now();
    this.events.set(eventId, { session, ctl });
    return ctl.signal;
  }

  /** Sends an event's message to its session's stream, or buffers it. A completion ends the event. */
  send(eventId: string, m: GradioMessage): void {
    const ev = this.events.get(eventId);
    if (!ev) return;
    const { session } = ev;
    session.touched = Date.now();
    if (session.stream) session.stream.write(m);
    else this.buffer(session, m);
    if (m.msg === "process_completed") {
      this.events.delete(eventId);
      session.pending.delete(eventId);
      if (session.pending.size === 0 && session.stream) this.close(session);
    }
  }

  /** Stops an event (the client's cancel or reset); false if it is unknown or finished. */
  cancel(eventId: string, why = "cancelled"): boolean {
    const ev = this.events.get(eventId);
    if (!ev) return false;
    ev.ctl.abort(new StudioError(ErrorCode.Cancelled, why));
    return true;
  }

  /**
   * Streams a session's messages on `res`. An unknown session gets an `unexpected_error`
   * (queue form), as Gradio answers. A newer stream for the same session replaces the older one.
   */
  attach(hash: string, req: Request, res: Response, format: StreamFormat): void {
    res.status(200).set({
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache, no-transform",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no", // proxies: do not hold the stream back
    });
    res.flushHeaders();
    const encode = format === "queue" ? queueWriter() : callWriter();
    const put = (m: GradioMessage) => {
      const text = encode(m);
      if (text !== null && !res.writableEnded && !res.destroyed) res.write(text);
    };
    const session = this.sessions.get(hash);
    if (!session) {
      put({ msg: "unexpected_error", event_id: null, message: "Session not found.", session_not_found: true, success: false });
      res.end();
      return;
    }
    if (session.stream) this.close(session, false);
    const stream: Stream = {
      res,
      format,
      write: put,
      heartbeat: setInterval(() => put({ msg: "heartbeat", event_id: null }), this.limits.heartbeatMs),
      ended: false,
    };
    stream.heartbeat.unref();
    session.stream = stream;
    session.touched = Date.now();
    for (const m of session.buffer.splice(0)) put(m);
    if (session.pending.size === 0) {
      this.close(session);
      return;
    }
    req.socket.setNoDelay(true);
    res.on("close", () => {
      clearInterval(stream.heartbeat);
      if (stream.ended) return;
      // The client left while events were unfinished: cancel them, as Gradio does.
      if (session.stream === stream) session.stream = null;
      session.touched = Date.now();
      for (const id of [...session.pending]) this.cancel(id, "the client disconnected");
    });
  }

  /** Drops sessions that nobody reads and that have nothing left to run. */
  sweep(): void {
    const oldest = Date.now() - this.limits.idleMs;
    for (const [hash, s] of this.sessions) {
      if (!s.stream && s.pending.size === 0 && s.touched < oldest) this.sessions.delete(hash);
    }
  }

  /**
   * Ends the session's stream; with `finished`, tells the client so first (`close_stream`). A
   * call session (one event, read by curl) is then gone: its stream can be read once.
   */
  private close(session: Session, finished = true): void {
    const stream = session.stream;
    if (!stream) return;
    stream.ended = true;
    clearInterval(stream.heartbeat);
    if (finished) stream.write({ msg: "close_stream", event_id: null });
    stream.res.end();
    session.stream = null;
    session.touched = Date.now();
    if (finished && stream.format === "call") this.sessions.delete(session.hash);
  }

  private buffer(session: Session, m: GradioMessage): void {
    if (session.buffer.length >= this.limits.maxBuffered) {
      const i = session.buffer.findIndex((b) => b.msg === "process_generating" || b.msg === "estimation" || b.msg === "process_starts");
      session.buffer.splice(i >= 0 ? i : 0, 1);
    }
    session.buffer.push(m);
  }
}
