/**
 * Rate limiting per client address. One budget, --rate-limit a minute (fixed windows), covers
 * HTTP requests, Socket.IO connections and `caption` events together; over it, HTTP answers 429
 * `rate_limited` with Retry-After, a handshake fails with `connect_error` "rate_limited", and a
 * caption gets `failed` with that code. express-rate-limit does the HTTP side; the socket side
 * counts in the same store.
 *
 * Behind a share tunnel every request arrives from the tunnel client, and the provider's edge
 * appends the real address to X-Forwarded-For. That header is believed only on connections known
 * to come from the studio's own tunnel client (app.ts tunnelEntry marks them) or from a proxy
 * named by --trust-proxy: any local process can connect over loopback and write any header, so
 * being on loopback proves nothing. The client is then the rightmost forwarded address that is not
 * itself a trusted proxy; whatever a client wrote further left is ignored. (A provider that
 * forwards no address puts all public users in one bucket.)
 */
import type { RequestHandler } from "express";
import { ipKeyGenerator, MemoryStore, rateLimit, type Options } from "express-rate-limit";
import type { ServerConfig } from "./config.ts";
import { ErrorCode } from "./events.ts";

const WINDOW_MS = 60_000;

/** Connections that came in through the studio's own share tunnel (app.ts tunnelEntry). */
export const tunnelConnections = new WeakSet<object>();

/** "::ffff:127.0.0.1" and "127.0.0.1" are one address. */
const plain = (addr: string) => addr.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");

/** The connection a request came on: its peer address, and the socket object (for tunnelConnections). */
export type Peer = { remoteAddress?: string };

/** Whether a connection comes from the studio's own tunnel or from a proxy --trust-proxy names. */
export const trustedPeer = (peer: Peer, trustProxy: readonly string[]) =>
  tunnelConnections.has(peer) || trustProxy.some((a) => plain(a) === plain(peer.remoteAddress ?? ""));

/** The client's address: the peer's, or behind the studio's tunnel or a trusted proxy the nearest forwarded one. */
export function clientAddress(peer: Peer, forwardedFor: string | string[] | undefined, trustProxy: readonly string[] = []): string {
  const remote = peer.remoteAddress ?? "unknown";
  const proxies = new Set(trustProxy.map(plain));
  if (!trustedPeer(peer, trustProxy)) return remote;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : (forwardedFor ?? "")).split(",").map((h) => h.trim()).filter(Boolean);
  let addr = remote;
  do addr = hops.pop() ?? addr;
  while (hops.length > 0 && proxies.has(plain(addr)));
  return addr;
}

/** The key a client is counted under: its address, IPv6 addresses by /56 (one home or host). */
export const clientKey = (peer: Peer, forwardedFor: string | string[] | undefined, trustProxy: readonly string[] = []) => ipKeyGenerator(clientAddress(peer, forwardedFor, trustProxy));

export interface RateLimits {
  /** Express middleware, or null when --rate-limit is 0. */
  readonly http: RequestHandler | null;
  /** Counts one socket connection or caption from a client (its clientKey); `retryAfterS` > 0 means refused. */
  hit(key: string): Promise<{ ok: boolean; retryAfterS: number }>;
  close(): void;
}

export const rateLimitedMessage = (retryAfterS: number) => `too many requests from your address; try again in ${retryAfterS} s`;

export function createRateLimits(config: Pick<ServerConfig, "rateLimit" | "trustProxy">): RateLimits {
  const limit = config.rateLimit;
  if (limit === 0) return { http: null, hit: async () => ({ ok: true, retryAfterS: 0 }), close() {} };
  const store = new MemoryStore();
  const retryAfter = (reset: Date | undefined) => Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + WINDOW_MS) - Date.now()) / 1000));
  const http = rateLimit({
    windowMs: WINDOW_MS,
    limit,
    store,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    keyGenerator: (req) => clientKey(req.socket, req.headers["x-forwarded-for"], config.trustProxy),
    handler: (req, res, _next, options: Options) => {
      const info = (req as unknown as Record<string, { resetTime?: Date } | undefined>)[options.requestPropertyName];
      const wait = retryAfter(info?.resetTime);
      res.status(429).set("Retry-After", String(wait)).json({ error: ErrorCode.RateLimited, message: rateLimitedMessage(wait) });
    },
    // The address comes from clientAddress(), not req.ip, so the req.ip checks do not apply.
    validate: { xForwardedForHeader: false, trustProxy: false, ip: false },
  });
  return {
    http,
    async hit(key) {
      const { totalHits, resetTime } = await store.increment(key);
      return totalHits > limit ? { ok: false, retryAfterS: retryAfter(resetTime) } : { ok: true, retryAfterS: 0 };
    },
    close() {
      store.shutdown();
    },
  };
}
