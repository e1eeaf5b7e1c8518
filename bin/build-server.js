#!/usr/bin/env node
// `npm start` runs the server as one bundled JavaScript file, built here first (a fraction of a
// second). Running it without tsx's loader (a thread of its own, and every module's transform kept
// in memory) serves in about 60 MiB less (bench/server-soak.ts; the model card has the figures).
// Packages stay outside the bundle, in node_modules. Paths to shipped files start at the package's
// folder (model/package-root.ts), so they hold in the bundle too.
import { build } from "esbuild";
import { existsSync, mkdirSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SERVER_BUNDLE = path.join(ROOT, ".build", "server.mjs");

/**
 * Bundles server/index.ts (and what it imports from the repository) into .build/server.mjs.
 * Written to a temporary file and renamed, so a server starting meanwhile never reads half a file.
 */
export async function buildServer() {
  const { outputFiles } = await build({
    entryPoints: [path.join(ROOT, "server", "index.ts")],
    bundle: true,
    packages: "external",
    format: "esm",
    platform: "node",
    target: "node20",
    outfile: SERVER_BUNDLE,
    write: false,
    logLevel: "warning",
  });
  const tmp = `${SERVER_BUNDLE}.${process.pid}.tmp`;
  mkdirSync(path.dirname(SERVER_BUNDLE), { recursive: true });
  writeFileSync(tmp, outputFiles[0].contents);
  renameSync(tmp, SERVER_BUNDLE);
  return SERVER_BUNDLE;
}

if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  try {
    await buildServer();
  } catch (e) {
    // A checkout this user cannot write to (a shared install) still starts from the bundle already there.
    if (!["EACCES", "EPERM", "EROFS"].includes(e.code)) throw e;
    if (!existsSync(SERVER_BUNDLE)) {
      console.error(`error: cannot write ${SERVER_BUNDLE} (${e.code}); run \`node bin/build-server.js\` once as the checkout's owner, or start with \`node --import tsx server/index.ts\``);
      process.exit(1);
    }
    console.error(`note: cannot rebuild ${SERVER_BUNDLE} (${e.code}); starting the one already there`);
  }
}
