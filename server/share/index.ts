/**
 * The share link, like Gradio's `share=True`: a public URL for the studio through a tunnel
 * provider, with no account (localtunnel, the default), no binary download and no Python. Off
 * unless --share; server/index.ts starts it once the studio listens.
 *
 * startShare() works in the background and never throws. A provider that cannot work says why in
 * one line (a missing token, no network) and the studio keeps running locally; a network failure
 * is retried quietly. A tunnel that drops is reopened with exponential backoff (1 s doubling to
 * 1 min, with jitter), asking the provider for the same name so that the URL usually survives;
 * a changed URL is printed. The link is closed after --share-ttl (default 72 h).
 *
 * Providers are small objects with one `open()` (./localtunnel.ts, ./ngrok.ts); PROVIDERS maps
 * the names that --share-provider accepts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ServerConfig, ShareProviderName } from "../config.ts";
import { localtunnelProvider } from "./localtunnel.ts";
import { ngrokProvider } from "./ngrok.ts";
import { ShareUnavailable, type ShareProvider, type Tunnel } from "./provider.ts";

export { ShareUnavailable, type OpenOptions, type ShareProvider, type Tunnel } from "./provider.ts";

export const PROVIDERS: Readonly<Record<ShareProviderName, ShareProvider>> = Object.freeze({
  localtunnel: localtunnelProvider,
  ngrok: ngrokProvider,
});

export type ShareState = "connecting" | "open" | "reconnecting" | "failed" | "expired" | "closed";

export interface Share {
  /** The first public link (with the access query), or null if the share gave up or was closed first. */
  readonly ready: Promise<string | null>;
  /** The current public URL (no access query), or null while there is no tunnel. */
  readonly url: string | null;
  readonly state: ShareState;
  /** Closes the tunnel and stops reconnecting. */
  close(): Promise<void>;
}

export interface ShareOptions {
  config: ServerConfig;
  localPort: number;
  /** Where the tunnel dials the studio; default: where it listens (127.0.0.1 for 0.0.0.0). */
  localHost?: string;
  /** Appended to the printed public URL: the access token's query, or "". */
  linkQuery: string;
  log?: (line: string) => void;
  /** Defaults to PROVIDERS[config.shareProvider]; tests pass their own. */
  provider?: ShareProvider;
  /** Reconnect delays: the first, doubling up to the last. */
  backoff?: { firstMs: number; maxMs: number };
  /** An open() that takes longer fails (and is retried). */
  openTimeoutMs?: number;
}

/** A tunnel that lived this long resets the backoff when it drops. */
const STABLE_MS = 30_000;

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0].trim() || "unknown error";
const seconds = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

export function ttlText(ms: number): string {
  const h = ms / 3_600_000;
  if (h >= 1 && Number.isInteger(h)) return `${h} hour${h === 1 ? "" : "s"}`;
  const m = ms / 60_000;
  return m >= 1 && Number.isInteger(m) ? `${m} minute${m === 1 ? "" : "s"}` : seconds(ms);
}

/** Opens the share link in the background; see the file comment. */
export function startShare(opts: ShareOptions): Share {
  const { config, localPort, linkQuery } = opts;
  const log = opts.log ?? ((line: string) => console.log(line));
  const provider = opts.provider ?? PROVIDERS[config.shareProvider];
  const { firstMs, maxMs } = opts.backoff ?? { firstMs: 1000, maxMs: 60_000 };
  const openTimeoutMs = opts.openTimeoutMs ?? 30_000;
  const localHost = opts.localHost ?? (config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host);
  const stop = new AbortController();
  let state: ShareState = "connecting";
  let current: Tunnel | null = null;
  let resolveReady!: (url: string | null) => void;
  const ready = new Promise<string | null>((resolve) => (resolveReady = resolve));

  const delay = (attempt: number) => Math.min(maxMs, firstMs * 2 ** attempt) * (0.8 + 0.4 * Math.random());

  /** One open() with a deadline; a tunnel that arrives after the deadline (or the stop) is closed. */
  async function openOnce(previousUrl: string | null): Promise<Tunnel> {
    const attempt = new AbortController();
    const onStop = () => attempt.abort(stop.signal.reason);
    stop.signal.addEventListener("abort", onStop, { once: true });
    const timer = setTimeout(() => attempt.abort(new Error(`no answer from the tunnel server in ${seconds(openTimeoutMs)}`)), openTimeoutMs);
    try {
      const opening = provider.open({ localPort, localHost, server: config.shareHost, previousUrl, config, signal: attempt.signal });
      const aborted = new Promise<never>((_, reject) => {
        if (attempt.signal.aborted) reject(attempt.signal.reason);
        attempt.signal.addEventListener("abort", () => reject(attempt.signal.reason), { once: true });
      });
      aborted.catch(() => undefined);
      try {
        return await Promise.race([opening, aborted]);
      } catch (e) {
        opening.then((late) => late.close(), () => undefined);
        throw e;
      }
    } finally {
      clearTimeout(timer);
      stop.signal.removeEventListener("abort", onStop);
    }
  }

  async function run(): Promise<void> {
    let attempt = 0;
    let outage = false; // said "cannot open" already for this outage
    let previousUrl: string | null = null;
    while (!stop.signal.aborted) {
      let tunnel: Tunnel;
      try {
        tunnel = await openOnce(previousUrl);
      } catch (e) {
        if (stop.signal.aborted) return;
        if (e instanceof ShareUnavailable) {
          state = "failed";
          log(`share: ${oneLine(e)}. The studio keeps running locally.`);
          resolveReady(null);
          return;
        }
        const wait = delay(attempt++);
        if (!outage) {
          log(`share: ${provider.name} could not ${previousUrl ? "reopen the" : "open a"} tunnel: ${oneLine(e)}. The studio keeps running locally; retrying in the background.`);
          outage = true;
        }
        await sleep(wait, undefined, { signal: stop.signal }).catch(() => undefined);
        continue;
      }
      if (stop.signal.aborted) {
        await tunnel.close();
        return;
      }
      current = tunnel;
      state = "open";
      const publicUrl = new URL(tunnel.url).href; // with its "/", for the access query
      const openedAt = Date.now();
      if (previousUrl === null) {
        log(`* Running on public URL: ${publicUrl}${linkQuery}`);
        log(`* This share link expires in ${ttlText(config.shareTtlMs)} (--share-ttl).`);
        resolveReady(publicUrl + linkQuery);
      } else if (tunnel.url !== previousUrl) {
        log(`share: reconnected; the public URL is now ${publicUrl}${linkQuery}`);
      } else {
        log(`share: reconnected (${publicUrl}).`);
      }
      outage = false;
      previousUrl = tunnel.url;
      const why = await tunnel.done;
      current = null;
      if (stop.signal.aborted) return;
      state = "reconnecting";
      if (Date.now() - openedAt > STABLE_MS) attempt = 0;
      const wait = delay(attempt++);
      log(`share: the tunnel dropped (${oneLine(why ?? "closed by the provider")}); reconnecting in ${seconds(wait)}.`);
      outage = true;
      await sleep(wait, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  }

  const expiry = setTimeout(() => {
    if (stop.signal.aborted) return;
    void close("expired").then(() => log(`share: the public link expired after ${ttlText(config.shareTtlMs)} (--share-ttl). The studio keeps running locally.`));
  }, config.shareTtlMs);
  expiry.unref();

  const running = run().catch((e) => {
    state = "failed";
    log(`share: stopped: ${oneLine(e)}. The studio keeps running locally.`);
  });

  async function close(final: ShareState = "closed"): Promise<void> {
    if (!stop.signal.aborted) {
      state = final;
      clearTimeout(expiry);
      stop.abort(new Error("the share was closed"));
      resolveReady(null);
    }
    await current?.close();
    await running;
  }

  return {
    ready,
    get url() {
      return current?.url ?? null;
    },
    get state() {
      return state;
    },
    close: () => close(),
  };
}
