/**
 * What a share provider is: one `open()` that gives a Tunnel (a public URL, a promise that
 * settles when it drops, and close()), or throws ShareUnavailable when trying again cannot help.
 */
import type { ServerConfig } from "../config.ts";

export interface Tunnel {
  /** The public URL (no access query). */
  readonly url: string;
  /** Settles once the tunnel is gone: with the reason if it dropped, null if it was closed. */
  readonly done: Promise<Error | null>;
  close(): Promise<void>;
}

export interface OpenOptions {
  localPort: number;
  /** Where the studio listens, as the tunnel should dial it (127.0.0.1 for 0.0.0.0). */
  localHost: string;
  /** --share-host, or null for the provider's default server. */
  server: string | null;
  /** The previous tunnel's URL when reconnecting, so the provider can try to keep it. */
  previousUrl: string | null;
  config: ServerConfig;
  /** Aborted when the share is closed or the attempt times out. */
  signal: AbortSignal;
}

export interface ShareProvider {
  readonly name: string;
  /** Opens one tunnel. Throws ShareUnavailable when trying again cannot help (no token, not installed). */
  open(opts: OpenOptions): Promise<Tunnel>;
}

/** The provider cannot work as configured; retrying will not help. */
export class ShareUnavailable extends Error {
  override name = "ShareUnavailable";
}
