/**
 * Checkpoint records (notebooks-port/lib/trainer.ts): a checkpoint folder's state.json, the older
 * layout that kept it one level up, and the ancestry a fine-tuned run's record carries (export puts
 * every run of it in the model card). The whole train -> fine-tune -> export path is test/train.slow.ts.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { ancestry, hasCheckpointState, readCheckpointState, type State } from "../notebooks-port/lib/trainer.ts";

const work = mkdtempSync(path.join(tmpdir(), "caption-ckpt-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A checkpoint folder with weights, its run's record either inside it (new layout) or beside it (old). */
function checkpoint(run: string, init: string, layout: "inside" | "beside" | "none", ancestors?: State[]): string {
  const dir = path.join(work, run, "best");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "params.json"), "{}");
  const record = JSON.stringify({ config: { name: run, init }, epoch: 1, history: [], ...(ancestors ? { ancestors } : {}) });
  if (layout !== "none") writeFileSync(path.join(layout === "inside" ? dir : path.dirname(dir), "state.json"), record);
  return dir;
}

test("old-layout checkpoints: the record is read from beside the folder, and the ancestry is followed through each --init", () => {
  const first = checkpoint("xent", "scratch", "beside");
  const ft = checkpoint("ft", first, "beside");
  const ft2 = checkpoint("ft2", ft, "beside");
  assert.equal(readCheckpointState(ft2).config.name, "ft2");
  assert.deepEqual(ancestry(readCheckpointState(ft2)).map((s) => s.config.name), ["xent", "ft"]);
});

test("a record that carries its ancestors is trusted as it is; a chain stops at a folder without a record", () => {
  const bare = checkpoint("bare", "scratch", "none");
  assert.equal(hasCheckpointState(bare), false);
  assert.throws(() => readCheckpointState(bare), /no state\.json/);
  const onBare = checkpoint("on-bare", bare, "inside");
  assert.deepEqual(ancestry(readCheckpointState(onBare)), []);
  const carried = [{ config: { name: "elsewhere" } } as State];
  const moved = checkpoint("moved", "/nowhere/best", "inside", carried);
  assert.deepEqual(ancestry(readCheckpointState(moved)).map((s) => s.config.name), ["elsewhere"]);
  // A new-layout run fine-tuned from an old-layout one: the old chain is found, then the new record's own.
  const old = checkpoint("old", "scratch", "beside");
  const mixed = checkpoint("mixed", old, "inside");
  assert.deepEqual(ancestry(readCheckpointState(mixed)).map((s) => s.config.name), ["old"]);
});
