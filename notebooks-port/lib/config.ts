/**
 * Step configuration, nanoGPT style: each step declares a defaults object; a JSON config file
 * (--config=FILE) and then --key=value flags override it. Values must keep their default's
 * type and unknown keys fail, so a typo never silently trains the wrong model.
 */
import { readFileSync } from "node:fs";

export type Defaults = Record<string, string | number | boolean>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

function coerce(key: string, raw: unknown, like: string | number | boolean): string | number | boolean {
  if (typeof like === "number") {
    const n = typeof raw === "number" ? raw : Number(raw);
    if (!Number.isFinite(n)) throw new ConfigError(`--${key} must be a number, got "${raw}"`);
    return n;
  }
  if (typeof like === "boolean") {
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === "1" || raw === "") return true;
    if (raw === "false" || raw === "0") return false;
    throw new ConfigError(`--${key} must be true or false, got "${raw}"`);
  }
  return String(raw);
}

/** Returns defaults overridden by --config=FILE and --key=value (or --key value, or bare --flag for booleans). */
export function parseConfig<T extends Defaults>(defaults: T, argv = process.argv.slice(2)): T {
  const out: Defaults = { ...defaults };
  const set = (key: string, raw: unknown) => {
    if (!(key in defaults)) throw new ConfigError(`unknown option --${key}; known: ${Object.keys(defaults).map((k) => "--" + k).join(" ")}`);
    out[key] = coerce(key, raw, defaults[key]);
  };
  const args = [...argv];
  while (args.length) {
    const a = args.shift()!;
    if (!a.startsWith("--")) throw new ConfigError(`unexpected argument "${a}" (options look like --key=value)`);
    let [key, value] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (value === undefined) {
      if (key === "config" || typeof defaults[key] !== "boolean") value = args.shift();
      else value = "true";
      if (value === undefined) throw new ConfigError(`--${key} needs a value`);
    }
    if (key === "config") {
      const file = JSON.parse(readFileSync(value, "utf8")) as Record<string, unknown>;
      for (const [k, v] of Object.entries(file)) set(k, v);
    } else set(key, value);
  }
  return out as T;
}

/** Runs a step's main(), printing a one-line error (not a stack) for configuration and input errors. */
export function runStep(main: () => Promise<void>): void {
  main().catch((e: Error) => {
    const expected = e instanceof ConfigError || (e as NodeJS.ErrnoException).code === "ENOENT" || e.name === "DataError";
    console.error(expected ? `error: ${e.message}` : e);
    process.exit(1);
  });
}
