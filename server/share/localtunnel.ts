/**
 * The default share provider: localtunnel, which needs no account. Its protocol is small:
 *   1. GET <server>/?new (or /<name> to ask for a name) answers { id, url, port, max_conn_count }.
 *   2. The client keeps max_conn_count TCP connections open to <server host>:<port>. The server
 *      sends each public HTTP request (WebSocket upgrades included) down one of them, raw, and
 *      the client pipes it to a fresh connection to the studio.
 *
 * Step 2 is the localtunnel package's own TunnelCluster. Step 1 is done here rather than by the
 * package's `localtunnel()`, because that retries its first request forever, once a second and
 * silently (even on an HTTP error): it can neither say why it cannot connect nor be cancelled.
 *
 * The tunnel counts as dropped when the server refuses a connection (it has forgotten us or is
 * gone), or when no connection has been up for DEAD_AFTER_MS; startShare() then opens a new one.
 */
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import type { ShareProvider, Tunnel } from "./provider.ts";

export const DEFAULT_SERVER = "https://localtunnel.me";
/** With no connection to the tunnel server for this long, the tunnel is dropped. */
const DEAD_AFTER_MS = 15_000;
/** The names a localtunnel server hands out and accepts (its own check). */
const NAME = /^(?:[a-z0-9][a-z0-9-]{4,63}[a-z0-9]|[a-z0-9]{4,63})$/;

/** What the tunnel server answers to /?new. */
export interface TunnelInfo {
  id: string;
  url: string;
  port: number;
  max_conn_count?: number;
  ip?: string;
}

interface ClusterOptions {
  remote_host: string;
  remote_ip?: string;
  remote_port: number;
  local_port: number;
}
/** localtunnel/lib/TunnelCluster.js: open() adds one connection; emits open(socket), dead, error. */
type TunnelCluster = EventEmitter & { open(): void };
const require = createRequire(import.meta.url);
const TunnelCluster = require("localtunnel/lib/TunnelCluster.js") as new (opts: ClusterOptions) => TunnelCluster;

function reason(e: unknown): string {
  const err = e as { cause?: { code?: string; message?: string }; message?: string; name?: string };
  if (err?.name === "TimeoutError") return "no answer";
  return err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
}

/** Step 1: asks the server for a tunnel; errors say what went wrong in a few words. */
export async function requestTunnel(server: string, name: string | null, signal: AbortSignal): Promise<TunnelInfo> {
  const url = `${server.replace(/\/+$/, "")}/${name ?? "?new"}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)]), headers: { accept: "application/json" } });
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    throw new Error(`cannot reach ${server} (${reason(e)})`);
  }
  const body = (await res.json().catch(() => null)) as Partial<TunnelInfo> & { message?: unknown } | null;
  if (!res.ok) throw new Error(`${server} answered ${res.status}${typeof body?.message === "string" ? `: ${body.message}` : ""}`);
  const { id, url: publicUrl, port, max_conn_count: conns } = body ?? {};
  const valid = typeof id === "string" && typeof publicUrl === "string" && /^https?:\/\//.test(publicUrl) && Number.isInteger(port) && port! > 0 && port! < 65536 && (conns === undefined || (Number.isInteger(conns) && conns > 0));
  if (!valid) throw new Error(`${server} did not answer like a localtunnel server`);
  return body as TunnelInfo;
}

export const localtunnelProvider: ShareProvider = {
  name: "localtunnel",
  async open({ localPort, server, previousUrl, signal }): Promise<Tunnel> {
    const base = server ?? DEFAULT_SERVER;
    const previousName = previousUrl ? new URL(previousUrl).hostname.split(".")[0] : null;
    const info = await requestTunnel(base, previousName && NAME.test(previousName) ? previousName : null, signal);
    const conns = Math.min(info.max_conn_count ?? 1, 32);
    const cluster = new TunnelCluster({ remote_host: new URL(base).hostname, remote_ip: info.ip, remote_port: info.port, local_port: localPort });

    const sockets = new Set<Socket>();
    let closed = false;
    let lastUp = Date.now();
    let finish!: (why: Error | null) => void;
    const done = new Promise<Error | null>((resolve) => (finish = resolve));
    const end = (why: Error | null) => {
      if (closed) return;
      closed = true;
      clearInterval(watchdog);
      for (const s of sockets) s.destroy();
      finish(why);
    };

    // A connection that dies is replaced; many deaths in a row slow that down.
    let deaths: number[] = [];
    cluster.on("open", (remote: Socket) => {
      if (closed) return void remote.destroy();
      sockets.add(remote);
      lastUp = Date.now();
      remote.once("close", () => sockets.delete(remote));
    });
    cluster.on("dead", () => {
      if (closed) return;
      const now = Date.now();
      deaths = [...deaths.filter((t) => now - t < 2000), now];
      setTimeout(() => closed || cluster.open(), deaths.length > 4 * conns ? 1000 : 0);
    });
    cluster.on("error", (e: Error) => end(new Error(`${new URL(base).host} refused the tunnel connection (${reason(e).replace(/^connection refused: /, "")})`)));
    const watchdog = setInterval(() => {
      if (sockets.size > 0) lastUp = Date.now();
      else if (Date.now() - lastUp > DEAD_AFTER_MS) end(new Error(`no connection to ${new URL(base).host} for ${DEAD_AFTER_MS / 1000} s`));
    }, 1000);
    watchdog.unref();

    for (let i = 0; i < conns; i++) cluster.open();
    return {
      url: info.url,
      done,
      async close() {
        end(null);
      },
    };
  },
};
