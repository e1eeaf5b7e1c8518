/**
 * `npm start`: the only file that listens. Reads the config, loads the captioner once, serves
 * the studio and prints its URL (as Gradio does). If the port is taken it tries the next ones,
 * or fails clearly with --strict-port. SIGTERM/SIGINT: refuse new work, finish what is in
 * flight (up to --shutdown-grace-ms), then exit.
 *
 * With --share it also opens a public link through a tunnel (server/share/), printed under the
 * local one, and access control is on: the links carry a generated token unless --token or
 * --auth says otherwise.
 */
import type { Server } from "node:http";
import { loadCaptioner } from "../model/index.ts";
import { createApp } from "./app.ts";
import { ConfigError, helpText, loadConfig, type ServerConfig } from "./config.ts";
import { startShare } from "./share/index.ts";

const PORT_TRIES = 20;

function listenOnce(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.off("listening", onListening);
      reject(e);
    };
    const onListening = () => {
      server.off("error", onError);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

/** Listens on config.port, or (unless strictPort) the next free port; returns the port used. */
async function listen(server: Server, config: ServerConfig): Promise<number> {
  const last = config.strictPort || config.port === 0 ? config.port : Math.min(65535, config.port + PORT_TRIES - 1);
  for (let port = config.port; ; port++) {
    try {
      const used = await listenOnce(server, port, config.host);
      if (used !== config.port && config.port !== 0) console.log(`Port ${config.port} is in use; using port ${used} instead.`);
      return used;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EADDRINUSE" || port >= last) {
        const why = code === "EADDRINUSE"
          ? config.strictPort
            ? `port ${port} is already in use (--strict-port is set). Free it, or pick another with --port or PORT.`
            : `ports ${config.port}-${last} are all in use. Pick another with --port or PORT.`
          : `cannot listen on ${config.host}:${port}: ${(e as Error).message}`;
        throw new Error(why);
      }
    }
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(helpText());
    return;
  }
  let config: ServerConfig;
  try {
    config = loadConfig(argv, process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`caption-studio: ${e.message}\n\n${helpText()}`);
    process.exitCode = 2;
    return;
  }

  const t0 = performance.now();
  const captioner = await loadCaptioner({ modelDir: config.modelDir });
  console.log(`Model loaded in ${Math.round(performance.now() - t0)} ms (attention grid ${captioner.grid.join("x")}, ${captioner.words.length} words).`);
  const studio = createApp({ captioner, config });
  const port = await listen(studio.httpServer, config);
  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const local = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}`;
  const { access } = studio;
  console.log(`* Running on local URL:  ${local}${access.linkQuery ? `/${access.linkQuery}` : ""}`);
  console.log(`* API guide:             ${local}/api${access.linkQuery}`);
  if (config.token !== null) console.log(`* Access token:          ${config.token} (the links carry it; API clients send Authorization: Bearer <token>)`);
  if (config.auth !== null) console.log(`* Access control:        HTTP Basic, user "${config.auth.slice(0, config.auth.indexOf(":"))}" (--auth)`);
  if (config.share && !access.enabled) console.log("* Access control:        OFF (--no-share-auth): anyone who has the public link can use the studio.");
  // The tunnel dials a private entry of its own, so that only its connections' forwarded addresses are believed.
  const entry = config.share ? await studio.tunnelEntry() : null;
  const share = entry ? startShare({ config, localPort: entry.port, localHost: entry.host, linkQuery: access.linkQuery }) : null;
  if (!config.share) console.log("\nTo create a public link, add --share (npm run share).");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      console.log(`${signal} again: exiting now.`);
      process.exit(1);
    }
    stopping = true;
    const { running, waiting } = studio.jobs.stats;
    console.log(`${signal}: finishing ${running + waiting} job(s), refusing new ones...`);
    // The tunnel stays up while accepted jobs finish, so public clients get their results too.
    await studio.close();
    await share?.close();
    captioner.dispose();
    console.log("Stopped.");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((e) => {
  console.error(`caption-studio: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
