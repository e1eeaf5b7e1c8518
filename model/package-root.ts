/**
 * The package's own folder (where its package.json is), found upward from this module. Paths to
 * shipped files (model/weights, views/, static/) start here rather than at each module's location,
 * because `npm start` runs the server as one bundled file (.build/server.mjs), where every module
 * has the bundle's location.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PACKAGE_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));
