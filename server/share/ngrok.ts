/**
 * The ngrok share provider (--share-provider ngrok): needs a free account's authtoken
 * (NGROK_AUTHTOKEN) and the optional package @ngrok/ngrok, which embeds ngrok's agent as a native
 * module (no binary download, no separate process). --share-host sets ngrok's server_addr.
 *
 * ngrok's agent keeps its session to ngrok's edge alive on its own, reconnecting after network
 * loss, so the tunnel reports no drops of its own; startShare() still retries a failed open().
 */
import { ShareUnavailable, type ShareProvider, type Tunnel } from "./provider.ts";

/** The part of @ngrok/ngrok used here (typed locally: the package is optional). */
interface NgrokListener {
  url(): string | null;
  close(): Promise<void>;
}
interface NgrokModule {
  forward(config: { addr: string; authtoken: string; server_addr?: string }): Promise<NgrokListener>;
}

const PACKAGE = "@ngrok/ngrok";

export const ngrokProvider: ShareProvider = {
  name: "ngrok",
  async open({ localPort, localHost, server, config, signal }): Promise<Tunnel> {
    if (!config.ngrokAuthtoken) {
      throw new ShareUnavailable(
        "ngrok needs an authtoken: set NGROK_AUTHTOKEN (free at https://dashboard.ngrok.com/get-started/your-authtoken), or use --share-provider localtunnel, which needs no account",
      );
    }
    let ngrok: NgrokModule;
    try {
      const mod = (await import(PACKAGE)) as NgrokModule & { default?: NgrokModule };
      ngrok = mod.default ?? mod;
    } catch {
      throw new ShareUnavailable(`the ngrok provider needs the optional package ${PACKAGE}, which is not installed (npm install ${PACKAGE})`);
    }
    signal.throwIfAborted();
    const host = localHost.includes(":") ? `[${localHost}]` : localHost;
    const listener = await ngrok.forward({ addr: `${host}:${localPort}`, authtoken: config.ngrokAuthtoken, ...(server ? { server_addr: server } : {}) });
    const url = listener.url();
    if (!url) {
      await listener.close().catch(() => undefined);
      throw new Error("ngrok opened a tunnel without a URL");
    }
    let finish!: (why: Error | null) => void;
    const done = new Promise<Error | null>((resolve) => (finish = resolve));
    return {
      url,
      done,
      async close() {
        await listener.close().catch(() => undefined);
        finish(null);
      },
    };
  },
};
