/**
 * The server's settings: read once from flags and the environment, checked, frozen, and passed
 * in. No other server file reads `process.env` or `process.argv`.
 *
 * Each setting is one row of SETTINGS (flag, environment variable, default, bounds, help), so
 * `--help`, parsing and the README table cannot drift apart. Flags beat environment variables,
 * which beat defaults. An unknown flag, a value of the wrong type or one out of bounds is an
 * error that names the setting and what it accepts.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

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
}

type Kind = "int" | "bool" | "string" | "path" | "megabytes";

interface Setting {
  key: keyof ServerConfig;
  flag: string;
  env: string[];
  kind: Kind;
  min?: number;
  max?: number;
  help: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** The gallery's default folder: used only if it exists (nothing ships there). */
export const DEFAULT_EXAMPLES_DIR = path.resolve(here, "..", "static", "examples");

export const DEFAULTS: Readonly<Omit<ServerConfig, "examplesDir">> = Object.freeze({
  port: 7860, // Gradio's default, so muscle memory works
  host: "127.0.0.1", // local only unless asked; use 0.0.0.0 to share on a network
  strictPort: false,
  concurrency: 2, // 2 lets one job's image decode (sharp, thread pool) overlap another's inference
  maxQueue: 32,
  uploadLimit: 10 * 1024 * 1024,
  pixelLimit: 40_000_000, // ~ a 7300x5500 photo; model/image.ts uses the same bound
  beam: 3,
  maxBeam: 8,
  maxLen: 20,
  maxLenLimit: 40,
  jobTimeoutMs: 60_000,
  shutdownGraceMs: 30_000,
  modelDir: undefined,
});

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
  { key: "modelDir", flag: "model-dir", env: ["CAPTION_MODEL_DIR"], kind: "path", help: "folder of the trained model (default: model/weights)" },
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
    case "path":
      return raw === "" ? null : path.resolve(raw);
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

/** `--key=value`, `--key value`, and `--flag` / `--no-flag` for booleans. */
function parseArgs(argv: readonly string[]): Map<Setting, string> {
  const out = new Map<Setting, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--(no-)?([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    const s = m && SETTINGS.find((x) => x.flag === m[2]);
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
    if (fromFlag !== undefined) cfg[s.key] = parseValue(s, fromFlag, `--${s.flag}`);
    else if (envName) cfg[s.key] = parseValue(s, env[envName]!, envName);
  }
  return checkConfig(cfg as unknown as ServerConfig);
}

/** Cross-field checks, then freeze. Also used for configs built in code (tests). */
export function checkConfig(c: ServerConfig): ServerConfig {
  if (c.beam > c.maxBeam) throw new ConfigError(`beam (${c.beam}) must not exceed maxBeam (${c.maxBeam})`);
  if (c.maxLen > c.maxLenLimit) throw new ConfigError(`maxLen (${c.maxLen}) must not exceed maxLenLimit (${c.maxLenLimit})`);
  if (c.examplesDir !== null && !existsSync(c.examplesDir)) {
    throw new ConfigError(`examples: folder not found: ${c.examplesDir} (set --examples or CAPTION_EXAMPLES, or '' to hide the gallery)`);
  }
  return Object.freeze({ ...c });
}

/** A config for code and tests: defaults plus overrides, checked and frozen. */
export function makeConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return checkConfig({ ...DEFAULTS, examplesDir: null, ...overrides });
}

export function helpText(): string {
  const rows = SETTINGS.map((s) => {
    const def = s.key === "examplesDir" ? "static/examples if present" : s.key === "uploadLimit" ? `${DEFAULTS.uploadLimit / 1024 / 1024}` : String(DEFAULTS[s.key as keyof typeof DEFAULTS] ?? "model/weights");
    return `  --${(s.flag + (s.kind === "bool" ? "" : "=…")).padEnd(22)} ${s.env.join(", ").padEnd(28)} ${s.help} [${def}]`;
  });
  return ["Usage: npm start -- [flags]", "", "  flag                    environment                  meaning [default]", ...rows, ""].join("\n");
}
