/**
 * The Socket.IO contract, both directions. These names and payloads are public (README,
 * "Socket.IO events"): change them only with a compatibility path.
 *
 * Every server event carries the job `id` that the `caption` acknowledgement returned, so a
 * client that starts a new caption can ignore late events from the one it replaced.
 */

/** Error codes: the only values `failed.code` and HTTP error bodies' `error` take. */
export const ErrorCode = Object.freeze({
  /** The upload is not a usable image (empty, corrupt, truncated, wrong type, too many pixels). */
  BadImage: "bad_image",
  /** The request itself is malformed (missing image, bad beam, maxLen or objects). */
  BadRequest: "bad_request",
  /** No such endpoint, or a result picture that has expired. */
  NotFound: "not_found",
  /** The upload is larger than the upload limit. */
  TooLarge: "too_large",
  /** The queue is full; try again shortly. */
  Busy: "busy",
  /** The job was cancelled (a newer caption from the same client, `cancel`, or disconnect). */
  Cancelled: "cancelled",
  /** The job ran past the server's job timeout. */
  Timeout: "timeout",
  /** The server is shutting down and takes no new work. */
  ShuttingDown: "shutting_down",
  /** Access control is on and the request carried no good credentials (HTTP 401, Socket.IO `connect_error`). */
  Unauthorized: "unauthorized",
  /** A cross-site request that the CORS settings do not allow. */
  Forbidden: "forbidden",
  /** Too many requests from one client address (or too many wrong credentials); try again later. */
  RateLimited: "rate_limited",
  /** Anything else; details go to the server log, not to the client. */
  Internal: "internal",
});
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Binary image data as a browser or Node client sends it. */
export type ImageBytes = ArrayBuffer | Uint8Array;

export interface CaptionRequest {
  /** The encoded image (JPEG, PNG, WebP, GIF, TIFF, AVIF). */
  image: ImageBytes;
  /** 1 = greedy; N > 1 = beam search. Default: the server's --beam. */
  beam?: number;
  /** Maximum words. Default: the server's --max-len. */
  maxLen?: number;
  /** Detect objects (default true); false = the Flickr8k-only captioner, `objects` comes back empty. */
  objects?: boolean;
  /**
   * "What if": words the caption must start with ("a dog" or ["a", "dog"]); the model decodes the
   * rest from them. Words outside the vocabulary, markers such as "<end>" or more than maxLen
   * words are refused (bad_request).
   */
  prefix?: string | string[];
}

export type CaptionAck = { ok: true; id: string } | { ok: false; code: ErrorCode; message: string };

export interface ClientEvents {
  /** Starts a caption; replaces (cancels) this client's previous one if it is still running. */
  caption: (req: CaptionRequest, ack?: (res: CaptionAck) => void) => void;
  /** Cancels this client's running or waiting caption, if any. */
  cancel: () => void;
}

export interface QueuedEvent {
  id: string;
  /** 1 = next to start. Sent again each time the job moves up. */
  position: number;
}

/**
 * One detected object (COCO class). `box` is [x, y, width, height] as fractions (0..1) of the
 * image's width and height, top-left origin.
 */
export interface ObjectResult {
  label: string;
  /** Detector confidence, 0..1. */
  score: number;
  box: [number, number, number, number];
}

export interface StartedEvent {
  id: string;
  /** [h, w] of every `alpha` grid that follows. */
  grid: [number, number];
  /** The detected objects, most confident first; `step.object` and `words[].object` index into it. */
  objects: ObjectResult[];
}

/** A word the model weighed at a step; `<end>` stands for ending the caption there. */
export interface WordChoice {
  word: string;
  /** Model probability, 0..1. */
  prob: number;
}

/** One beam-search hypothesis while decoding (no attention grids: kept light). */
export interface BeamResult {
  words: string[];
  /** The model's log-probability of these words (and of ending, once done). */
  logProb: number;
  /** It has ended. */
  done: boolean;
  /** It is the current best caption (the step's `hypothesis`). */
  best: boolean;
}

export interface StepEvent {
  id: string;
  /** 0-based position of `word`. */
  index: number;
  word: string;
  /** Model probability of `word`, 0..1. */
  prob: number;
  /** Row-major h*w attention grid for this word; sums to 1. */
  alpha: number[];
  /** The whole current best caption; with beam search earlier words may change. */
  hypothesis: string[];
  /** Model probability of each word of `hypothesis`. */
  probs: number[];
  /** Present when `word` names a detected object: its index in `started.objects`. */
  object?: number;
  /** The model's 5 most likely words at this step, most likely first. */
  top: WordChoice[];
  /**
   * Beam search only: the current best first, then every other hypothesis being decoded and the
   * best few that have ended (`done`). A step
   * is also sent when only these change (same `index` and `hypothesis`).
   */
  beams?: BeamResult[];
}

export interface WordResult {
  word: string;
  prob: number;
  alpha: number[];
  /** Present when the word names a detected object: its index in `objects`. */
  object?: number;
  /** The model's 5 most likely words at this position, most likely first. */
  top: WordChoice[];
}

export interface DoneEvent {
  id: string;
  caption: string;
  words: WordResult[];
  grid: [number, number];
  /** The detected objects (as in `started`), most confident first. */
  objects: ObjectResult[];
  /** The model's log-probability of the caption (its words and its end, natural log). */
  logProb: number;
  /** The words that were forced (the request's `prefix`), as the model read them. */
  prefix: string[];
  /** Processing time (image decode + model), milliseconds; excludes waiting in the queue. */
  ms: number;
  /** Time spent waiting in the queue, milliseconds. */
  waitMs: number;
  /** URL of the downloadable result picture (PNG), valid for a while after `done`. */
  picture: string;
}

export interface FailedEvent {
  /** null when the request was refused before it got an id (e.g. a malformed payload). */
  id: string | null;
  code: ErrorCode;
  /** Short, safe to show to users. */
  message: string;
}

export interface ServerEvents {
  queued: (e: QueuedEvent) => void;
  started: (e: StartedEvent) => void;
  step: (e: StepEvent) => void;
  done: (e: DoneEvent) => void;
  failed: (e: FailedEvent) => void;
}
