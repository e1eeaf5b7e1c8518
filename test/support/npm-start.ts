/**
 * The server as `npm start` runs it: bundled by bin/build-server.js into .build/server.mjs and run
 * by plain node (no tsx), with the same V8 flag and malloc arenas. Built once per test process.
 */
import { execFileSync, spawn, type SpawnOptions } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
let bundle: string | null = null;

export function spawnNpmStart(args: string[], opts: SpawnOptions = {}) {
  if (!bundle) {
    execFileSync(process.execPath, [path.join(ROOT, "bin", "build-server.js")], { stdio: "inherit" });
    bundle = path.join(ROOT, ".build", "server.mjs");
  }
  const env = { ...(opts.env ?? process.env) };
  env.MALLOC_ARENA_MAX ??= "2";
  return spawn(process.execPath, ["--max-semi-space-size=2", bundle, ...args], { stdio: ["ignore", "pipe", "pipe"], ...opts, env });
}
