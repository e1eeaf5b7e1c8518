/** The model card has one type and one list of score columns: the card's tables and the studio's panel show the same ones. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { DEFAULT_MODEL_DIR, SCORE_COLUMNS, type ModelCard } from "../model/index.ts";
import { writeModelCardMarkdown } from "../notebooks-port/lib/model-card.ts";
import { cardView } from "../server/model-card.ts";

const shipped = JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, "model-card.json"), "utf8")) as ModelCard;

test("the studio's card panel and MODEL_CARD.md show the same score columns, object recall included", () => {
  const view = cardView(shipped);
  const labels = view.columns.map((c) => c.label);
  assert.ok(labels.includes("Object recall"), labels.join(", "));
  assert.deepEqual(labels, SCORE_COLUMNS.map((c) => c.label), "every column the test scores have, in the shared order");
  const dir = mkdtempSync(path.join(tmpdir(), "card-"));
  try {
    const weights = path.join(dir, "weights");
    mkdirSync(weights);
    writeFileSync(path.join(weights, "model-card.json"), JSON.stringify(shipped));
    const md = writeModelCardMarkdown(weights);
    const header = md.split("\n").find((l) => l.startsWith("| decoding |"))!;
    assert.deepEqual(header.split("|").map((c) => c.trim()).filter(Boolean).slice(1), labels);
    // A cell of the panel is the same text as the card's cell for the same figure.
    const beam3 = shipped.scores!.test.beam3;
    const row = view.rows.find((r) => r.decoding === "beam 3")!;
    const i = labels.indexOf("CIDEr-D");
    assert.equal(row.cells[i].value, beam3.cider!.toFixed(3));
    assert.ok(row.cells[i].headline);
    assert.match(md, new RegExp(`\\| beam 3 \\|.*\\| ${beam3.cider!.toFixed(3)} \\|`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a card with no test scores shows the last training epoch's dev figures", () => {
  const { scores: _, ...untested } = shipped;
  const view = cardView(untested);
  assert.match(view.scoresOn ?? "", /dev split, during training/);
  assert.equal(view.rows.length, 1);
  assert.match(view.rows[0].decoding, /^dev, epoch [\d.]+ \(greedy\)$/);
});
