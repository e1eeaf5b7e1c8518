/** Renders model/weights/model-card.json as model/MODEL_CARD.md, so the two never disagree. */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SCORE_COLUMNS, type CardScores, type CardSection, type CardTable, type ModelCard } from "../../model/model-card.ts";

const f = (x: unknown, d = 3) => (typeof x === "number" ? x.toFixed(d) : "–");
/** Epochs are whole, except dev measurements taken within an epoch (--evalEvery). */
const ep = (e: number) => (Number.isInteger(e) ? String(e) : e.toFixed(2));
/** The highest peak RSS an epoch recorded (runs before it was recorded have none). */
const peak = (history: { peakRssMB?: number }[]) => {
  const mb = Math.max(0, ...history.map((h) => h.peakRssMB ?? 0));
  return mb ? `, peak RSS ${(mb / 1024).toFixed(1)} GiB` : ""; // maxRSS is recorded in MiB
};

/** A table cell: one line, and a "|" in the text must not end the cell. */
const cellText = (s: unknown) => String(s ?? "").replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");

/** A markdown table, its caption in italics on the line above; a row's empty or missing cells show "–", so every row has every column. */
function table(t: CardTable): string[] {
  const n = t.columns.length;
  const row = (cells: unknown[], blank: string) => `| ${Array.from({ length: n }, (_, i) => cellText(cells[i]) || blank).join(" | ")} |`;
  return [
    ...(t.caption ? [`*${t.caption.trim()}*`, ""] : []),
    row(t.columns, ""),
    `| ${t.columns.map(() => "---").join(" | ")} |`,
    ...t.rows.map((r) => row(r, "–")),
    "",
  ];
}

/** One section of the card's prose: heading, intro, bullets, tables, then its subsections a level down. */
function section(s: CardSection, depth = 2): string[] {
  const out = [`${"#".repeat(depth)} ${s.title}`, ""];
  if (s.intro) out.push(s.intro, "");
  if (s.items?.length) out.push(...s.items.map((i) => `- ${i}`), "");
  for (const t of s.tables ?? []) out.push(...table(t));
  for (const sub of s.subsections ?? []) out.push(...section(sub, Math.min(depth + 1, 6)));
  return out;
}

/** The evaluated sets, in the card's order: key in card.scores, heading, and the ablation's key. */
const SETS = [
  { key: "test", title: "Flickr8k test split, 1,000 images" },
  { key: "coco-dev", title: "coco-dev, 408 everyday COCO photos (never trained on)" },
] as const;

/**
 * One table per evaluated set: each decoding with and without objects (the ablation,
 * `evaluate --objects=false`), and the human row (caption 0 against the other captions, scored by
 * the same code) to read the model's figures against.
 */
function scoreTables(card: ModelCard): string[] {
  const out: string[] = [];
  const cell = (s: CardScores | undefined, key: keyof CardScores, format: (v: number) => string) => (typeof s?.[key] === "number" ? format(s[key]!) : "–");
  for (const { key, title } of SETS) {
    const rows: [string, CardScores][] = [
      ...Object.entries(card.scores?.[key] ?? {}).map(([k, s]) => [k.replace("beam", "beam "), s] as [string, CardScores]),
      ...Object.entries(card.scores?.[`${key}-no-objects`] ?? {}).map(([k, s]) => [`${k.replace("beam", "beam ")}, objects off`, s] as [string, CardScores]),
    ];
    if (!rows.length) continue;
    out.push(`## Scores (${title})`, "", `| decoding | ${SCORE_COLUMNS.map((c) => c.label).join(" | ")} |`, `| --- | ${SCORE_COLUMNS.map(() => "---").join(" | ")} |`);
    for (const [label, s] of rows) out.push(`| ${label} | ${SCORE_COLUMNS.map((c) => cell(s, c.key, c.format)).join(" | ")} |`);
    const h = card.human?.[key];
    // The human row: the caption metrics only (length, distinctness and time are the model's).
    if (h) out.push(`| human (caption 0 against the others) | ${SCORE_COLUMNS.map((c) => (["meanLength", "distinct", "medianMs"].includes(c.key) ? "–" : cell(h, c.key, c.format))).join(" | ")} |`);
    out.push("");
  }
  if (out.length) {
    out.push("Scored like pycocoevalcap (PTB-style tokens, corpus BLEU with closest reference length, CIDEr-D with idf from each set's references); the scorer reproduces the reference sanity figures in `test/metrics.test.ts`. " +
      "Object recall: of the objects at least 3 of a photo's reference captions name (model/objects.ts: COCO's 80 classes and a few of their parts, with plurals and aliases), the share the caption names too, over all photos. " +
      "\"objects off\" rows are the same model with object detection switched off (the Flickr8k-only captioner).", "");
  }
  return out;
}

export function writeModelCardMarkdown(modelDir: string): string {
  const card = JSON.parse(readFileSync(path.join(modelDir, "model-card.json"), "utf8")) as ModelCard;
  const a = card.architecture ?? {};
  const lines: string[] = [
    "# Model card: Show, Attend and Tell on Flickr8k",
    "",
    "_Generated from `model/weights/model-card.json` by the pipeline's export and evaluate steps; edit the JSON's `sections`, not this file._",
    "",
    "## Model",
    `- Encoder (frozen): \`${a.encoder}\`, a ${a.grid?.join("×")}×${a.featureDim} grid of regions for attention.`,
    `- Decoder: LSTM (${a.hiddenDim} units) with soft additive attention (${a.attnDim}-d), a gating scalar on the context, deep output (${a.outDim}-d), ` +
      `${a.embedDim}-d word vectors initialised from GloVe, vocabulary of ${a.vocabSize} words, captions up to ${a.maxLen} words.`,
    ...(a.members ? [`- An ensemble of ${a.members.length} such decoders, trained apart (${a.members.join(", ")}): each word is scored by the normalised geometric mean of their distributions, and the attention shown is the mean of their grids.`] : []),
    `- Weights: ${card.weights?.dtype}, ${((card.weights?.bytes ?? 0) / 1e6).toFixed(1)} MB.`,
    "",
  ];
  for (const s of card.sections ?? []) lines.push(...section(s));
  // Cards written before `sections` keep their free paragraphs.
  if (card.notes?.length) lines.push("## Notes", "", ...card.notes.map((n: string) => `- ${n}`), "");
  const curves: string[] = [card.curves ?? []].flat();
  if (curves.length) lines.push("## Training curves", "", curves.map((c) => `[${c}](${c})`).join(", ") + ".", "");
  const d = card.data;
  if (d) lines.push("## Data", "", `${d.dataset}: ${d.train} training, ${d.dev} dev, ${d.test} test images${d.dataset === "Flickr8k" ? " (the standard splits), 5 captions each" : ""}. Vocabulary: words seen at least ${d.minCount} times in training captions (${d.vocabulary} with 4 special tokens). Augmentation: ${d.augmentation}.`, "");
  lines.push(...scoreTables(card));
  for (const t of card.training ?? []) {
    lines.push(`## Training run \`${t.run}\``, "", `Started from: ${["auto", "scratch"].includes(t.init) ? "scratch (word vectors from GloVe)" : t.init}. ${t.epochs} epoch${t.epochs === 1 ? "" : "s"}, best dev greedy CIDEr-D ${f(t.bestDevCiderGreedy)} at epoch ${ep(t.bestEpoch)}; ${(t.seconds / 60).toFixed(1)} min of training at ${t.tokensPerSec} tokens/s (2 CPU cores)${peak(t.history)}.`, "");
    lines.push("Hyper-parameters: " + Object.entries(t.hyperParameters).map(([k, v]) => `${k} ${v}`).join(", ") + ".", "");
    for (const c of t.changes ?? []) lines.push(`Changed from epoch ${c.atEpoch}: ` + Object.keys(c.to).map((k) => `${k} ${c.from[k]} → ${c.to[k]}`).join(", ") + ".", "");
    // Self-critical runs have no training cross-entropy: their training column is the mean CIDEr-D reward.
    const scst = t.history.some((h: any) => typeof h.trainReward === "number");
    lines.push(`| epoch | ${scst ? "train reward (CIDEr-D)" : "train xent"} | dev xent | dev BLEU-4 (greedy) | dev CIDEr-D (greedy) | lr |`, "| --- | --- | --- | --- | --- | --- |");
    for (const h of t.history) lines.push(`| ${ep(h.epoch)} | ${f(scst ? h.trainReward : h.trainXent)} | ${f(h.devXent)} | ${f(h.bleu4, 4)} | ${f(h.cider, 4)} | ${h.lr?.toExponential?.(2)} |`);
    lines.push("");
  }
  const md = lines.join("\n");
  writeFileSync(path.join(modelDir, "..", "MODEL_CARD.md"), md);
  return md;
}
