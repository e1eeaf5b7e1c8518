#!/usr/bin/env node
// `npm start` runs the server as one bundled JavaScript file, built here first (a fraction of a
// second). Running it without tsx's loader (a thread of its own, and every module's transform kept
// in memory) serves in about 60 MiB less (bench/server-soak.ts; the model card has the figures).
// Packages stay outside the bundle, in node_modules. Paths to shipped files start at the package's
// folder (model/package-root.ts), so they hold in the bundle too.
import { build } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SERVER_BUNDLE = path.join(ROOT, ".build", "server.mjs");

/** Bundles server/index.ts (and what it imports from the repository) into .build/server.mjs. */
export async function buildServer() {
  await build({
    entryPoints: [path.join(ROOT, "server", "index.ts")],
    bundle: true,
    packages: "external",
    format: "esm",
    platform: "node",
    target: "node20",
    outfile: SERVER_BUNDLE,
    logLevel: "warning",
  });
  return SERVER_BUNDLE;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await buildServer();
