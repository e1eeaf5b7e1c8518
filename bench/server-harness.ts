/**
 * Shared by the server benchmarks (not a benchmark itself): starts the real server
 * (`server/index.ts`, the `npm start` entry point) as a child process on a free port, drives it
 * with socket.io-client, and summarises timings. Options use the pipeline's config helper
 * (`--key=value`, unknown keys fail).
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io, type Socket } from "socket.io-client";
import type { ClientEvents, DoneEvent, FailedEvent, ServerEvents } from "../server/events.ts";

import { flickr8kDir } from "../notebooks-port/lib/flickr8k.ts";
import { spawnNpmStart } from "../test/support/npm-start.ts";

export { parseConfig, runStep } from "../notebooks-port/lib/config.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DATA = flickr8kDir();

/** n Flickr8k photos (224 px JPEGs), in a fixed order. */
export function photos(n: number): Buffer[] {
  const dir = path.join(DATA, "images");
  return readdirSync(dir).filter((f) => f.endsWith(".jpg")).sort().slice(0, n).map((f) => readFileSync(path.join(dir, f)));
}

export interface Summary {
  n: number;
  median: number;
  p99: number;
  mean: number;
  max: number;
}

export function summarise(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { n: s.length, median: at(0.5), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), max: s.at(-1) ?? NaN };
}

export const fmt = (s: Summary, unit = "ms") => `median ${s.median.toFixed(1)} ${unit}, p99 ${s.p99.toFixed(1)} ${unit} (n=${s.n})`;

export interface Server {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<void>;
}

/** Starts `npm start`'s entry point with extra flags, on a free port (no rate limit: one address drives it all). */
export async function startServer(flags: string[] = []): Promise<Server> {
  // As `npm start` runs it (package.json): bundled, without tsx, a 2 MB young generation, two malloc arenas.
  const child = spawnNpmStart(["--port=0", "--host=127.0.0.1", "--rate-limit=0", ...flags], { cwd: ROOT });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /Running on local URL: +(http:\/\/\S+)/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve(m[1]);
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`server exited:\n${out}`));
      }
    }, 50);
  });
  return {
    url,
    child,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export type Client = Socket<ServerEvents, ClientEvents>;

export async function connect(url: string): Promise<Client> {
  const socket: Client = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

export interface Timing {
  ok: boolean;
  /** emit -> first `step`, ms (NaN if none). */
  firstMs: number;
  /** emit -> `done`/`failed`, ms. */
  totalMs: number;
  /** The server's own processing time (done.ms). */
  serverMs: number;
  words: number;
  code?: string;
}

/** One caption over the socket, timed from the client's side. */
export function captionOnce(socket: Client, image: Buffer, opts: { beam?: number; maxLen?: number } = {}): Promise<Timing> {
  return new Promise((resolve) => {
    let id: string | null | undefined;
    let first = NaN;
    const t0 = performance.now();
    const off = () => {
      socket.off("step", onStep);
      socket.off("done", onDone);
      socket.off("failed", onFailed);
    };
    const onStep = (e: { id: string }) => {
      if (e.id === id && Number.isNaN(first)) first = performance.now() - t0;
    };
    const onDone = (e: DoneEvent) => {
      if (e.id !== id) return;
      off();
      resolve({ ok: true, firstMs: first, totalMs: performance.now() - t0, serverMs: e.ms, words: e.words.length });
    };
    const onFailed = (e: FailedEvent) => {
      if (e.id !== id) return;
      off();
      resolve({ ok: false, firstMs: first, totalMs: performance.now() - t0, serverMs: NaN, words: 0, code: e.code });
    };
    socket.on("step", onStep);
    socket.on("done", onDone);
    socket.on("failed", onFailed);
    socket.emit("caption", { image, ...opts }, (ack) => {
      id = ack.ok ? ack.id : null;
    });
  });
}

export interface Health {
  memory: { rssMb: number; heapMb: number; tensors: number };
  queue: { running: number; waiting: number };
}

export async function health(url: string): Promise<Health> {
  const res = await fetch(new URL("/api/health", url));
  return (await res.json()) as Health;
}
