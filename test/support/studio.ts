/** What the server tests share: where the photos are, a real studio on a random loopback port, and the files' lifecycle (studioFixture). */
import type { AddressInfo } from "node:net";
import { io as connect, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import type { Captioner } from "../../model/types.ts";
import { flickr8kDir } from "../../notebooks-port/lib/flickr8k.ts";
import { createApp, type StudioApp } from "../../server/app.ts";
import { makeConfig, type ServerConfig } from "../../server/config.ts";
import type { ClientEvents, ServerEvents } from "../../server/events.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Flickr8k, where the pipeline finds it (FLICKR8K_DIR, else ../shared/data/flickr8k). */
export const DATA = flickr8kDir();
export const IMAGES = path.join(DATA, "images");
/** COCO's everyday photos (coco-dev), read in place too; COCO_DEV_DIR points elsewhere. */
export const COCO = process.env.COCO_DEV_DIR ?? path.resolve(ROOT, "..", "shared", "data", "coco-dev");

/** A studio with the real captioner, listening on 127.0.0.1 at a port the OS picks. The caller closes it. */
export async function startStudio(captioner: Captioner, overrides: Partial<ServerConfig> = {}): Promise<{ studio: StudioApp; config: ServerConfig; url: string; port: number }> {
  const config = makeConfig({ port: 0, ...overrides });
  const studio = createApp({ captioner, config });
  await new Promise<void>((resolve) => studio.httpServer.listen(0, "127.0.0.1", resolve));
  const { port } = studio.httpServer.address() as AddressInfo;
  return { studio, config, url: `http://127.0.0.1:${port}`, port };
}

/** What a test opens and the fixture closes after the file's tests: a Socket.IO client, a Gradio client, a share. */
export interface Closable {
  close(): unknown;
}

/**
 * The lifecycle the server test files share: one real captioner loaded before the file's tests,
 * and every studio and client they open closed after them (clients first, then studios, then the
 * captioner). Call it once at the top of a test file; `defaults` are that file's server settings,
 * under each serve()'s overrides. The file's own before/after hooks run after these.
 */
export function studioFixture(defaults: Partial<ServerConfig> = {}) {
  let captioner: Captioner | undefined;
  const studios: StudioApp[] = [];
  const opened: Closable[] = [];
  before(async () => {
    // Imported here so the files that share only the paths above don't load the model runtimes.
    const { loadCaptioner } = await import("../../model/index.ts");
    captioner = await loadCaptioner();
  });
  after(async () => {
    await Promise.all(opened.map((c) => c.close()));
    await Promise.all(studios.map((s) => s.close()));
    captioner?.dispose();
  });
  const loaded = (): Captioner => {
    if (!captioner) throw new Error("the captioner is loaded in the file's before hook");
    return captioner;
  };
  return {
    /** The file's captioner (from its before hook on). */
    get captioner(): Captioner {
      return loaded();
    },
    /** startStudio with the file's defaults and these overrides; closed after the file's tests. */
    async serve(overrides: Partial<ServerConfig> = {}) {
      const started = await startStudio(loaded(), { ...defaults, ...overrides });
      studios.push(started.studio);
      return started;
    },
    /** Closes `client` after the file's tests (before the studios); returns it. */
    track<C extends Closable>(client: C): C {
      opened.push(client);
      return client;
    },
  };
}

/** Polls until cond() holds (tests waiting for a server-side state change); throws after ms. */
export async function waitFor(cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A Socket.IO client of the studio's typed events. */
export type Client = Socket<ServerEvents, ClientEvents>;

/**
 * The one way tests open a Socket.IO client: websocket only, no reconnects, a fresh connection
 * each time; `opts` adds headers, a query or an agent. Not yet connected; the caller closes it.
 */
export function openClient(url: string, opts: Partial<ManagerOptions & SocketOptions> = {}): Client {
  return connect(url, { transports: ["websocket"], reconnection: false, forceNew: true, ...opts });
}

/** Resolves when `socket` connects; rejects with its `connect_error` (see handshakeStatus). */
export function connected(socket: Client): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
}

/** openClient, connected; the caller closes it. */
export async function connectClient(url: string, opts: Partial<ManagerOptions & SocketOptions> = {}): Promise<Client> {
  const socket = openClient(url, opts);
  await connected(socket);
  return socket;
}

/**
 * The HTTP status with which the server refused a Socket.IO handshake, from a `connect_error`: the
 * handshake is judged before any session exists, so the refusal is an HTTP answer (polling: the
 * error's description is the status; websocket: the upgrade's "Unexpected server response: 401").
 */
export function handshakeStatus(err: unknown): number | undefined {
  const d = (err as { description?: unknown })?.description;
  if (typeof d === "number") return d;
  const text = String((d as { message?: unknown })?.message ?? d ?? "");
  const m = /\b([45]\d\d)\b/.exec(text);
  return m ? Number(m[1]) : undefined;
}
