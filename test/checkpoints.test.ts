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
import { ancestry, hasCheckpointState, readCheckpointState, shippedAncestry, type State } from "../notebooks-port/lib/trainer.ts";

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

test("a shipped member's runs are rebuilt from its model card, each member's own chain, oldest first", () => {
  const dir = path.join(work, "shipped");
  mkdirSync(dir, { recursive: true });
  const run = (name: string, init: string, scst: number) => ({ run: name, init, epochs: 2, bestEpoch: 1, bestDevCiderGreedy: 0.4, seconds: 60, tokensPerSec: 100, hyperParameters: { lr: 1e-3, scst }, changes: [], history: [{ epoch: 1, trainXent: 3, devXent: 3, bleu4: 0.1, cider: 0.4, lr: 1e-3, seconds: 60, tokensPerSec: 100 }] });
  writeFileSync(path.join(dir, "model-card.json"), JSON.stringify({
    architecture: { hiddenDim: 512, members: ["decoder", "decoder-2"] }, data: { augmentation: "mirrored images (left/right swapped in captions)" },
    weights: { from: "checkpoints/a-ft/best,checkpoints/b-ft/epoch-1" },
    training: [run("a", "auto", 0), run("a-ft", "checkpoints/a/best", 5), run("b", "auto", 0), run("b-ft", "checkpoints/b/best", 5)],
  }));
  const names = (member: string) => shippedAncestry(path.join(dir, member)).map((s) => s.config.name);
  assert.deepEqual(names("decoder"), ["a", "a-ft"]);
  assert.deepEqual(names("decoder-2"), ["b", "b-ft"]);
  assert.deepEqual(names("decoder-3"), [], "no such member");
  assert.deepEqual(names("vocab"), [], "not a member");
  const [xent, ft] = shippedAncestry(path.join(dir, "decoder"));
  assert.equal(xent.config.flip, true, "cross-entropy runs trained on mirrored images");
  assert.equal(ft.config.flip, false);
  assert.equal(ft.best.cider, 0.4);
  assert.equal((ft.decoder as { members?: unknown }).members, undefined, "the architecture of one member");
  assert.deepEqual(shippedAncestry(path.join(work, "nowhere", "decoder")), [], "no card, no ancestry");
});
