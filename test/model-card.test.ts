/** The model card has one type and one list of score columns: the card's tables and the studio's panel show the same ones. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { DEFAULT_MODEL_DIR, SCORE_COLUMNS, type ModelCard } from "../model/index.ts";
import { writeModelCardMarkdown } from "../notebooks-port/lib/model-card.ts";
import type { CardSection } from "../model/model-card.ts";
import { cardView } from "../server/model-card.ts";

const shipped = JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, "model-card.json"), "utf8")) as ModelCard;

/** Writes `card` into a scratch model folder and returns the MODEL_CARD.md rendered from it. */
function render(card: ModelCard): string {
  const dir = mkdtempSync(path.join(tmpdir(), "card-"));
  try {
    const weights = path.join(dir, "weights");
    mkdirSync(weights);
    writeFileSync(path.join(weights, "model-card.json"), JSON.stringify(card));
    return writeModelCardMarkdown(weights);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the studio's card panel and MODEL_CARD.md show the same score columns, object recall included", () => {
  const view = cardView(shipped);
  const labels = view.columns.map((c) => c.label);
  assert.ok(labels.includes("Object recall"), labels.join(", "));
  assert.deepEqual(labels, SCORE_COLUMNS.map((c) => c.label), "every column the test scores have, in the shared order");
  const md = render(shipped);
  const header = md.split("\n").find((l) => l.startsWith("| decoding |"))!;
  assert.deepEqual(header.split("|").map((c) => c.trim()).filter(Boolean).slice(1), labels);
  // A cell of the panel is the same text as the card's cell for the same figure.
  const beam3 = shipped.scores!.test.beam3;
  const row = view.rows.find((r) => r.decoding === "beam 3")!;
  const i = labels.indexOf("CIDEr-D");
  assert.equal(row.cells[i].value, beam3.cider!.toFixed(3));
  assert.ok(row.cells[i].headline);
  assert.match(md, new RegExp(`\\| beam 3 \\|.*\\| ${beam3.cider!.toFixed(3)} \\|`));
});

test("a card with no test scores shows the last training epoch's dev figures", () => {
  const { scores: _, ...untested } = shipped;
  const view = cardView(untested);
  assert.match(view.scoresOn ?? "", /dev split, during training/);
  assert.equal(view.rows.length, 1);
  assert.match(view.rows[0].decoding, /^dev, epoch [\d.]+ \(greedy\)$/);
});

test("the shipped card's prose is in sections, rendered in order between the model and the scores", () => {
  const titles = ["What is shipped", "How it was chosen", "Tried, and did not help", "Against the objects issue's targets", "Speed", "Training", "Known failures"];
  assert.deepEqual(shipped.sections?.map((s) => s.title), titles);
  assert.equal(shipped.notes, undefined, "the old free paragraphs were replaced, not kept beside the sections");
  const md = render(shipped);
  const at = (heading: string) => md.split("\n").indexOf(heading);
  const order = ["## Model", ...titles.map((t) => `## ${t}`), "## Data", "## Scores (Flickr8k test split, 1,000 images)"].map(at);
  assert.ok(order.every((i) => i >= 0), `every heading is there: ${order}`);
  assert.deepEqual(order, [...order].sort((a, b) => a - b), "in the card's order");
  assert.match(md, /edit the JSON's `sections`/);
  // A sweep reads as a table: the trustOwn sweep's shipped row, cell by cell.
  assert.match(md, /^### Trusting the decoder when it is sure \(trustOwn\)$/m);
  assert.match(md, /^\| trustOwn \| Absent-class penalty \| coco-dev CIDEr-D \|.*\|$/m);
  assert.match(md, /^\| -0\.7 \(shipped[^|]*\| 0 \| 0\.507 \| 0\.526 \| 0\.445 \| 0\.621 \|$/m);
});

test("a section renders as heading, intro, bullets, captioned markdown tables and subsections; an older card's notes still render", () => {
  const section: CardSection = {
    title: "How it was chosen",
    intro: "Chosen on dev.",
    items: ["first point", "second point"],
    tables: [{ caption: "A sweep", columns: ["Setting", "CIDEr-D", "Recall"], rows: [["a | b", "0.5"], ["c", "0.6", "0.7"]] }],
    subsections: [{ title: "Detail", items: ["deeper"] }],
  };
  const md = render({ ...shipped, sections: [section], notes: ["an old paragraph"] });
  const lines = md.split("\n");
  const i = lines.indexOf("## How it was chosen");
  assert.ok(i > lines.indexOf("## Model") && i < lines.indexOf("## Data"), "between the model and the data");
  assert.deepEqual(lines.slice(i, i + 16), [
    "## How it was chosen", "",
    "Chosen on dev.", "",
    "- first point", "- second point", "",
    "*A sweep*", "",
    "| Setting | CIDEr-D | Recall |",
    "| --- | --- | --- |",
    "| a \\| b | 0.5 | – |", // a "|" in a cell does not end it; a missing cell shows "–"
    "| c | 0.6 | 0.7 |", "",
    "### Detail", "",
  ]);
  assert.ok(lines.includes("- deeper"));
  assert.ok(lines.indexOf("## Notes") > i && lines.includes("- an old paragraph"), "a card written before sections keeps its notes");
  assert.doesNotMatch(render({ ...shipped, sections: undefined, notes: [] }), /^## Notes$/m, "no empty Notes heading");
});
