/**
 * The two pages: the studio (`/`) and the API guide (`/api`), plus the example photos. Each
 * route builds a plain view-model; the EJS templates only print it.
 */
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import express from "express";
import type { Captioner } from "../../model/index.ts";
import type { ServerConfig } from "../config.ts";
import { ErrorCode } from "../events.ts";
import { cardView } from "../model-card.ts";

const EXAMPLE_FILE = /\.(jpe?g|png|webp|gif)$/i;
const MAX_EXAMPLES = 12;

/**
 * Sorted example photo names, or none when the folder is unset, missing or empty. Only the
 * folder's own regular files count: no subfolders, and no symlinks (one named link.jpg could point
 * anywhere, /etc/passwd included).
 */
export async function listExamples(dir: string | null): Promise<string[]> {
  if (!dir) return [];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isFile() && EXAMPLE_FILE.test(e.name) && !e.name.startsWith(".")).map((e) => e.name).sort().slice(0, MAX_EXAMPLES);
  } catch {
    return [];
  }
}

/** JSON for a <script type="application/json"> block: `<` escaped so it cannot close the tag. */
const safeJson = (x: unknown) => JSON.stringify(x).replace(/</g, "\\u003c");

export function pagesRouter({ captioner, config }: { captioner: Captioner; config: ServerConfig }): express.Router {
  const router = express.Router();
  const card = cardView(captioner.card);

  if (config.examplesDir) {
    const dir = config.examplesDir;
    const missing = (res: express.Response) => void res.status(404).json({ error: ErrorCode.NotFound, message: "no such example photo" });
    // The gallery's own files and nothing else: a name must be one listExamples gives, and is
    // checked again (still a regular file, not a symlink) right before it is sent.
    router.get("/examples/:name", async (req, res) => {
      const name = req.params.name;
      const ok = (await listExamples(dir)).includes(name) && (await lstat(path.join(dir, name)).then((s) => s.isFile(), () => false));
      if (!ok) return missing(res);
      res.sendFile(name, { root: dir, dotfiles: "deny", maxAge: "1h" });
    });
    router.use("/examples", (_req, res) => missing(res));
  }

  router.get("/", async (_req, res) => {
    const examples = (await listExamples(config.examplesDir)).map((name) => ({
      url: `/examples/${encodeURIComponent(name)}`,
      name,
      label: path.parse(name).name.replace(/[_-]+/g, " "),
    }));
    const client = {
      beam: config.beam,
      maxBeam: config.maxBeam,
      maxLen: config.maxLen,
      maxLenLimit: config.maxLenLimit,
      uploadLimit: config.uploadLimit,
      grid: captioner.grid,
    };
    res.render("index", {
      title: "Caption Studio",
      card,
      examples,
      defaults: { ...client, greedy: config.beam === 1, beamInput: Math.max(2, config.beam) },
      uploadLimitMb: (config.uploadLimit / 1048576).toFixed(0),
      clientJson: safeJson(client),
    });
  });

  router.get("/api", (req, res) => {
    const base = `${req.protocol}://${req.get("host") ?? `${config.host}:${config.port}`}`;
    res.render("api", {
      title: "Use via API · Caption Studio",
      base,
      grid: captioner.grid,
      defaults: { beam: config.beam, maxBeam: config.maxBeam, maxLen: config.maxLen, maxLenLimit: config.maxLenLimit },
      uploadLimitMb: (config.uploadLimit / 1048576).toFixed(0),
      maxQueue: config.maxQueue,
      // Which credential this server wants, never the secret itself.
      access: config.auth !== null ? "basic" : config.token !== null ? "token" : "none",
    });
  });

  return router;
}
