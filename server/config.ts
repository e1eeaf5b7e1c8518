/**
 * The server's settings: read once from flags and the environment, checked, frozen, and passed
 * in. No other server file reads `process.env` or `process.argv`.
 *
 * Each setting is one row of SETTINGS (flag, environment variable, default, bounds, help), so
 * `--help`, parsing and the README table cannot drift apart. Flags beat environment variables,
 * which beat defaults. An unknown flag, a value of the wrong type or one out of bounds is an
 * error that names the setting and what it accepts.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
// Directly, not through model/index.ts: the settings must load without the model's runtimes.
import { PACKAGE_ROOT } from "../model/package-root.ts";

export interface ServerConfig {
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  readonly host: string;
  /** When the port is taken: true fails, false tries the next ports. */
  readonly strictPort: boolean;
  /** Captions decoded at the same time. tfjs runs on one thread, so more only interleaves steps. */
  readonly concurrency: number;
  /** Jobs allowed to wait behind the running ones; one more is refused (HTTP 429 / `failed`). */
  readonly maxQueue: number;
  /** Largest upload, bytes. */
  readonly uploadLimit: number;
  /** Decompression-bomb guard: most pixels (width x height) an upload may declare. */
  readonly pixelLimit: number;
  /** Beam size used when a request gives none; 1 = greedy. */
  readonly beam: number;
  /** Largest beam a request may ask for. */
  readonly maxBeam: number;
  /** Maximum caption length used when a request gives none. */
  readonly maxLen: number;
  /** Largest maxLen a request may ask for. */
  readonly maxLenLimit: number;
  /** A job running longer than this is aborted, so nothing hangs. */
  readonly jobTimeoutMs: number;
  /** On SIGTERM, how long in-flight and queued jobs get to finish. */
  readonly shutdownGraceMs: number;
  /** Folder of example photos for the gallery; null hides the gallery. */
  readonly examplesDir: string | null;
  /** Where the model's weights are; undefined lets model/ use its default. */
  readonly modelDir: string | undefined;
  /** Open a public share link (a tunnel) once the server listens. */
  readonly share: boolean;
  /** Which tunnel provider `share` uses. */
  readonly shareProvider: ShareProviderName;
  /** The provider's server: localtunnel's URL, or ngrok's server_addr (host:port); null = the provider's default. */
  readonly shareHost: string | null;
  /** The share link is closed after this long, ms. */
  readonly shareTtlMs: number;
  /** When sharing, require credentials (a generated token unless --token or --auth is given). */
  readonly shareAuth: boolean;
  /** ngrok's authtoken (NGROK_AUTHTOKEN); only the ngrok provider uses it. */
  readonly ngrokAuthtoken: string | null;
  /** "user:pass" for HTTP Basic access control; null = off. */
  readonly auth: string | null;
  /** Access token (in the link as ?token=, or `Authorization: Bearer`); null = off. Generated when sharing without credentials. */
  readonly token: string | null;
  /**
   * Addresses of reverse proxies in front of the studio whose X-Forwarded-For names the client.
   * Anyone else's is ignored: a loopback peer may be any local process. (Connections from the
   * studio's own share tunnel are trusted without being listed: app.ts tunnelEntry.)
   */
  readonly trustProxy: readonly string[];
  /** Requests per minute per client address (HTTP requests, Socket.IO connections and captions together); 0 = no limit. */
  readonly rateLimit: number;
  /** Origins (scheme://host[:port]) allowed to call the studio from other sites; empty = CORS closed. */
  readonly corsOrigins: readonly string[];
}

export const SHARE_PROVIDERS = ["localtunnel", "ngrok"] as const;
export type ShareProviderName = (typeof SHARE_PROVIDERS)[number];

type Kind = "int" | "bool" | "string" | "optional" | "path" | "megabytes" | "duration" | "choice" | "list" | "secret";

interface Setting {
  key: keyof ServerConfig;
  flag: string;
  env: string[];
  kind: Kind;
  min?: number;
  max?: number;
  /** For kind "choice": the accepted values. */
  choices?: readonly string[];
  /** For --help, where the default is not a plain value (or is a secret). */
  shown?: string;
  help: string;
}

/** parseArgs marks a secret given as a file this way (no secret value starts with it: they are single words). */
const FILE_PREFIX = "\0file:";
/** The gallery's default folder: used only if it exists (nothing ships there). */
export const DEFAULT_EXAMPLES_DIR = path.join(PACKAGE_ROOT, "static", "examples");

export const DEFAULTS: Readonly<Omit<ServerConfig, "examplesDir">> = Object.freeze({
  port: 7860, // Gradio's default, so muscle memory works
  host: "127.0.0.1", // local only unless asked; use 0.0.0.0 to share on a network
  strictPort: false,
  concurrency: 2, // 2 lets one job's image decode (sharp, thread pool) overlap another's inference
  maxQueue: 32,
  uploadLimit: 10 * 1024 * 1024,
  pixelLimit: 40_000_000, // ~ a 7300x5500 photo; the model decodes under this same limit (CaptionOptions.pixelLimit)
  beam: 3,
  maxBeam: 8,
  maxLen: 20,
  maxLenLimit: 40,
  jobTimeoutMs: 60_000,
  shutdownGraceMs: 30_000,
  modelDir: undefined,
  share: false,
  shareProvider: "localtunnel", // needs no account
  shareHost: null,
  shareTtlMs: 72 * 3_600_000, // Gradio's share links also last 72 hours
  shareAuth: true, // a public link is an open door
  ngrokAuthtoken: null,
  auth: null,
  token: null,
  rateLimit: 600, // 10 a second, sustained over a minute: far above one person, far below a flood
  corsOrigins: Object.freeze([]) as readonly string[],
  trustProxy: Object.freeze([]) as readonly string[],
});

const HOUR = 3_600_000;
const DURATION_UNITS: Readonly<Record<string, number>> = Object.freeze({ ms: 1, s: 1000, m: 60_000, h: HOUR, d: 24 * HOUR });
/** setTimeout's longest delay (~24.8 days). */
const MAX_TTL_MS = 2 ** 31 - 1;

export const SETTINGS: readonly Setting[] = Object.freeze([
  { key: "port", flag: "port", env: ["PORT", "CAPTION_PORT"], kind: "int", min: 0, max: 65535, help: "TCP port (0 = any free port)" },
  { key: "host", flag: "host", env: ["HOST", "CAPTION_HOST"], kind: "string", help: "interface to listen on" },
  { key: "strictPort", flag: "strict-port", env: ["CAPTION_STRICT_PORT"], kind: "bool", help: "fail instead of trying the next port when the port is taken" },
  { key: "concurrency", flag: "concurrency", env: ["CAPTION_CONCURRENCY"], kind: "int", min: 1, max: 64, help: "captions decoded at the same time" },
  { key: "maxQueue", flag: "max-queue", env: ["CAPTION_MAX_QUEUE"], kind: "int", min: 0, max: 10_000, help: "jobs that may wait; more are refused" },
  { key: "uploadLimit", flag: "upload-limit", env: ["CAPTION_UPLOAD_LIMIT_MB"], kind: "megabytes", min: 0.001, max: 200, help: "largest upload in MB" },
  { key: "pixelLimit", flag: "pixel-limit", env: ["CAPTION_PIXEL_LIMIT"], kind: "int", min: 1, max: 500_000_000, help: "most pixels an image may declare" },
  { key: "beam", flag: "beam", env: ["CAPTION_BEAM"], kind: "int", min: 1, max: 10, help: "default beam size (1 = greedy)" },
  { key: "maxBeam", flag: "max-beam", env: ["CAPTION_MAX_BEAM"], kind: "int", min: 1, max: 10, help: "largest beam a request may ask for (the model allows 10)" },
  { key: "maxLen", flag: "max-len", env: ["CAPTION_MAX_LEN"], kind: "int", min: 1, max: 50, help: "default maximum caption length in words" },
  { key: "maxLenLimit", flag: "max-len-limit", env: ["CAPTION_MAX_LEN_LIMIT"], kind: "int", min: 1, max: 50, help: "largest maxLen a request may ask for (the model allows 50)" },
  { key: "jobTimeoutMs", flag: "job-timeout-ms", env: ["CAPTION_JOB_TIMEOUT_MS"], kind: "int", min: 100, max: 3_600_000, help: "abort a caption that runs longer than this" },
  { key: "shutdownGraceMs", flag: "shutdown-grace-ms", env: ["CAPTION_SHUTDOWN_GRACE_MS"], kind: "int", min: 0, max: 600_000, help: "time given to in-flight jobs on SIGTERM" },
  { key: "examplesDir", flag: "examples", env: ["CAPTION_EXAMPLES"], kind: "path", help: "folder of example photos ('' hides the gallery)" },
  { key: "modelDir", flag: "model-dir", env: ["CAPTION_MODEL_DIR"], kind: "path", shown: "model/weights", help: "folder of the trained model (default: model/weights)" },
  { key: "share", flag: "share", env: ["CAPTION_SHARE"], kind: "bool", help: "open a public share link through a tunnel (access control on by default)" },
  { key: "shareProvider", flag: "share-provider", env: ["CAPTION_SHARE_PROVIDER"], kind: "choice", choices: SHARE_PROVIDERS, help: `tunnel provider: ${SHARE_PROVIDERS.join(" or ")}` },
  { key: "shareHost", flag: "share-host", env: ["CAPTION_SHARE_HOST"], kind: "optional", shown: "provider's own", help: "tunnel server: localtunnel URL, or ngrok server_addr host:port" },
  { key: "shareTtlMs", flag: "share-ttl", env: ["CAPTION_SHARE_TTL"], kind: "duration", min: 1000, max: MAX_TTL_MS, shown: "72h", help: "close the share link after this long (e.g. 72h, 30m; a bare number is hours)" },
  { key: "shareAuth", flag: "share-auth", env: ["CAPTION_SHARE_AUTH"], kind: "bool", help: "require credentials when sharing; --no-share-auth opens the link to anyone" },
  { key: "ngrokAuthtoken", flag: "ngrok-authtoken", env: ["NGROK_AUTHTOKEN"], kind: "secret", shown: "none", help: "ngrok authtoken (for --share-provider ngrok)" },
  { key: "auth", flag: "auth", env: ["CAPTION_AUTH"], kind: "secret", shown: "none", help: "require HTTP Basic credentials user:pass" },
  { key: "token", flag: "token", env: ["CAPTION_TOKEN"], kind: "secret", shown: "none; generated when sharing", help: "require this access token (link ?token=, or Authorization: Bearer)" },
  { key: "rateLimit", flag: "rate-limit", env: ["CAPTION_RATE_LIMIT"], kind: "int", min: 0, max: 1_000_000, help: "requests per minute per client address (0 = no limit)" },
  { key: "trustProxy", flag: "trust-proxy", env: ["CAPTION_TRUST_PROXY"], kind: "list", shown: "none", help: "comma-separated addresses of reverse proxies whose X-Forwarded-For is believed (the share tunnel needs none)" },
  { key: "corsOrigins", flag: "cors-origins", env: ["CAPTION_CORS_ORIGINS"], kind: "list", shown: "none (closed)", help: "comma-separated origins allowed cross-site (CORS)" },
]);

export class ConfigError extends Error {
  override name = "ConfigError";
}

function parseValue(s: Setting, raw: string, source: string): unknown {
  const where = `${source}: ${s.key}`;
  switch (s.kind) {
    case "string":
      if (!raw) throw new ConfigError(`${where} must not be empty`);
      return raw;
    case "optional":
    case "secret":
      return raw === "" ? null : raw;
    case "path":
      return raw === "" ? null : path.resolve(raw);
    case "choice":
      if (!s.choices!.includes(raw)) throw new ConfigError(`${where} must be one of ${s.choices!.join(", ")}, got "${raw}"`);
      return raw;
    case "list":
      return Object.freeze(raw.split(",").map((x) => x.trim()).filter(Boolean));
    case "duration": {
      const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(raw);
      if (!m) throw new ConfigError(`${where} must be a duration such as 72h, 30m or 90s, got "${raw}"`);
      const n = Number(m[1]) * DURATION_UNITS[m[2] ?? "h"];
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
        throw new ConfigError(`${where} must be between ${s.min! / 1000} s and ${Math.floor(s.max! / (24 * HOUR))} days, got "${raw}"`);
      }
      return Math.round(n);
    }
    case "bool":
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${where} must be true or false, got "${raw}"`);
    case "int":
    case "megabytes": {
      const n = Number(raw);
      const ok = raw.trim() !== "" && Number.isFinite(n) && (s.kind === "megabytes" || Number.isInteger(n));
      if (!ok) throw new ConfigError(`${where} must be ${s.kind === "int" ? "an integer" : "a number"}, got "${raw}"`);
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
        throw new ConfigError(`${where} must be between ${s.min} and ${s.max}, got ${n}`);
      }
      return s.kind === "megabytes" ? Math.round(n * 1024 * 1024) : n;
    }
  }
}

/**
 * A secret setting's value read from a file (`--token-file`, `CAPTION_TOKEN_FILE`): its first line,
 * trimmed. Flags show in `ps` to every local user; a file or the environment does not.
 */
function readSecretFile(file: string, where: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${where}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const value = text.split(/\r?\n/)[0].trim();
  if (!value) throw new ConfigError(`${where}: ${file} is empty`);
  return value;
}

/** `--key=value`, `--key value`, and `--flag` / `--no-flag` for booleans; `--<secret>-file path` is kept as FILE_PREFIX + path. */
function parseArgs(argv: readonly string[]): Map<Setting, string> {
  const out = new Map<Setting, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--(no-)?([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    const fileOf = m && SETTINGS.find((x) => x.kind === "secret" && `${x.flag}-file` === m[2]);
    if (m && fileOf && !m[1]) {
      const value = m[3] ?? argv[++i];
      if (value === undefined) throw new ConfigError(`--${fileOf.flag}-file needs a path`);
      if (out.has(fileOf)) throw new ConfigError(`give --${fileOf.flag} or --${fileOf.flag}-file, not both`);
      out.set(fileOf, FILE_PREFIX + value);
      continue;
    }
    const s = m && SETTINGS.find((x) => x.flag === m[2]);
    if (s && out.get(s)?.startsWith(FILE_PREFIX)) throw new ConfigError(`give --${s.flag} or --${s.flag}-file, not both`);
    if (!m || !s) {
      throw new ConfigError(`unknown argument "${arg}"; known flags: ${SETTINGS.map((x) => "--" + x.flag).join(", ")}, --help`);
    }
    if (s.kind === "bool" && m[3] === undefined) {
      out.set(s, m[1] ? "false" : "true");
    } else if (m[1]) {
      throw new ConfigError(`--no-${s.flag} is only for true/false settings`);
    } else if (m[3] !== undefined) {
      out.set(s, m[3]);
    } else if (i + 1 < argv.length) {
      out.set(s, argv[++i]);
    } else {
      throw new ConfigError(`--${s.flag} needs a value`);
    }
  }
  return out;
}

/** Reads flags and environment once; returns a frozen, checked config. Throws ConfigError. */
export function loadConfig(argv: readonly string[] = [], env: Readonly<Record<string, string | undefined>> = {}): ServerConfig {
  const flags = parseArgs(argv);
  const cfg: Record<string, unknown> = {
    ...DEFAULTS,
    examplesDir: existsSync(DEFAULT_EXAMPLES_DIR) ? DEFAULT_EXAMPLES_DIR : null,
  };
  for (const s of SETTINGS) {
    const fromFlag = flags.get(s);
    const envName = s.env.find((e) => env[e] !== undefined);
    const fileEnv = s.kind === "secret" ? s.env.map((e) => `${e}_FILE`).find((e) => env[e] !== undefined) : undefined;
    if (fromFlag?.startsWith(FILE_PREFIX)) cfg[s.key] = readSecretFile(path.resolve(fromFlag.slice(FILE_PREFIX.length)), `--${s.flag}-file`);
    else if (fromFlag !== undefined) cfg[s.key] = parseValue(s, fromFlag, `--${s.flag}`);
    else if (envName) cfg[s.key] = parseValue(s, env[envName]!, envName);
    else if (fileEnv) cfg[s.key] = readSecretFile(path.resolve(env[fileEnv]!), fileEnv);
  }
  return checkConfig(cfg as unknown as ServerConfig);
}

/** Where a tunnel can reach the studio: it connects to localhost. */
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "0.0.0.0", "::"]);

/** A random access token: 144 bits, URL-safe. */
export const generateToken = () => randomBytes(18).toString("base64url");

/** Cross-field checks, then freeze. Also used for configs built in code (tests). */
export function checkConfig(c: ServerConfig): ServerConfig {
  if (c.beam > c.maxBeam) throw new ConfigError(`beam (${c.beam}) must not exceed maxBeam (${c.maxBeam})`);
  if (c.maxLen > c.maxLenLimit) throw new ConfigError(`maxLen (${c.maxLen}) must not exceed maxLenLimit (${c.maxLenLimit})`);
  if (c.examplesDir !== null && !existsSync(c.examplesDir)) {
    throw new ConfigError(`examples: folder not found: ${c.examplesDir} (set --examples or CAPTION_EXAMPLES, or '' to hide the gallery)`);
  }
  if (c.auth !== null && !/^[^:\s]+:\S.*$/.test(c.auth)) throw new ConfigError('auth must be "user:password" (set --auth or CAPTION_AUTH)');
  if (c.token !== null && !/^[A-Za-z0-9._~-]{8,256}$/.test(c.token)) {
    throw new ConfigError("token must be 8 to 256 letters, digits or . _ ~ - (set --token or CAPTION_TOKEN)");
  }
  for (const o of c.corsOrigins) {
    let ok = false;
    try {
      ok = new URL(o).origin === o;
    } catch {
      // not a URL
    }
    if (!ok) throw new ConfigError(`corsOrigins: "${o}" is not an origin such as https://example.com (set --cors-origins or CAPTION_CORS_ORIGINS)`);
  }
  for (const a of c.trustProxy) {
    if (isIP(a) === 0) throw new ConfigError(`trustProxy: "${a}" is not an IP address such as 127.0.0.1 or ::1 (set --trust-proxy or CAPTION_TRUST_PROXY)`);
  }
  if (!SHARE_PROVIDERS.includes(c.shareProvider)) throw new ConfigError(`shareProvider must be one of ${SHARE_PROVIDERS.join(", ")}`);
  if (c.shareHost !== null) {
    const ok = c.shareProvider === "localtunnel" ? /^https?:\/\/[^/?#\s]+\/?$/.test(c.shareHost) : /^[^/\s:]+:\d+$/.test(c.shareHost);
    if (!ok) {
      const want = c.shareProvider === "localtunnel" ? "a URL such as https://localtunnel.me" : "host:port (ngrok's server_addr)";
      throw new ConfigError(`shareHost must be ${want}, got "${c.shareHost}" (set --share-host or CAPTION_SHARE_HOST)`);
    }
  }
  if (c.share && !LOCAL_HOSTS.has(c.host)) {
    throw new ConfigError(`share: the tunnel reaches the studio on localhost, so host must be 127.0.0.1 (the default) or 0.0.0.0, got "${c.host}"`);
  }
  // Sharing opens a door to the internet: lock it unless told not to.
  const token = c.token ?? (c.share && c.shareAuth && c.auth === null ? generateToken() : null);
  return Object.freeze({ ...c, token, corsOrigins: Object.freeze([...c.corsOrigins]), trustProxy: Object.freeze([...c.trustProxy]) });
}

/** A config for code and tests: defaults plus overrides, checked and frozen. */
export function makeConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return checkConfig({ ...DEFAULTS, examplesDir: null, ...overrides });
}

export function helpText(): string {
  const rows = SETTINGS.map((s) => {
    const def = s.shown ?? (s.key === "examplesDir" ? "static/examples if present" : s.key === "uploadLimit" ? `${DEFAULTS.uploadLimit / 1024 / 1024}` : String(DEFAULTS[s.key as keyof typeof DEFAULTS]));
    const row = `  --${(s.flag + (s.kind === "bool" ? "" : "=…")).padEnd(22)} ${s.env.join(", ").padEnd(28)} ${s.help} [${def}]`;
    if (s.kind !== "secret") return row;
    return `${row}\n  --${`${s.flag}-file=…`.padEnd(22)} ${s.env.map((e) => `${e}_FILE`).join(", ").padEnd(28)} the same, read from a file's first line`;
  });
  return [
    "Usage: npm start -- [flags]",
    "",
    "  flag                    environment                  meaning [default]",
    ...rows,
    "",
    "Secrets (--token, --auth, --ngrok-authtoken) given as flags are visible to other local users in `ps`:",
    "prefer their environment variable or a file (--token-file, CAPTION_TOKEN_FILE, ...).",
    "",
  ].join("\n");
}
