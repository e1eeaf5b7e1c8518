/**
 * What the page shows of the model card (model/model-card.ts's ModelCard, written by
 * notebooks-port/export.ts and evaluate.ts): the test-split scores per decoding (`scores.test`),
 * or, before the model has been evaluated, the dev scores of its last training epoch; plus a few
 * facts about the architecture, data and weights. Missing fields are simply left out.
 */

import { SCORE_COLUMNS, type CardScores, type ModelCard } from "../model/index.ts";

export interface ScoreRow {
  /** "greedy", "beam 3", or "dev, epoch 4 (greedy)". */
  decoding: string;
  /** `headline`: BLEU-4 and CIDEr-D, the figures papers lead with. */
  cells: { value: string; headline: boolean }[];
}

export interface CardView {
  /** Column headings of `rows`. */
  columns: { label: string; hint: string }[];
  rows: ScoreRow[];
  /** Where the scores come from, e.g. "Flickr8k test split, 1,000 images". */
  scoresOn: string | null;
  facts: { label: string; value: string }[];
}

const num = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null);

function decodingName(key: string): string {
  const m = /^beam(\d+)$/.exec(key);
  if (!m) return key;
  return m[1] === "1" ? "greedy" : `beam ${m[1]}`;
}

export function cardView(card: ModelCard | null): CardView {
  const empty: CardView = { columns: [], rows: [], scoresOn: null, facts: [] };
  if (!card) return empty;

  let sources: [string, CardScores][] = [];
  let scoresOn: string | null = null;
  const test = card.scores?.test;
  if (test) {
    sources = Object.entries(test).map(([k, v]) => [decodingName(k), v]);
    const n = num(sources[0]?.[1].images);
    scoresOn = `Flickr8k test split${n ? `, ${n.toLocaleString("en-US")} images` : ""}`;
  } else {
    // Not evaluated yet: the dev scores of the last epoch trained.
    const h = card.training?.at(-1)?.history?.at(-1);
    if (h) {
      sources = [[`dev, epoch ${h.epoch} (greedy)`, h]];
      scoresOn = "Flickr8k dev split, during training (no test scores in the card yet)";
    }
  }
  const columns = SCORE_COLUMNS.filter((c) => sources.some(([, s]) => num(s[c.key]) !== null));
  const rows = sources.map(([decoding, s]) => ({
    decoding,
    cells: columns.map((c) => {
      const v = num(s[c.key]);
      return { value: v === null ? "–" : c.format(v), headline: c.headline ?? false };
    }),
  }));

  const facts: CardView["facts"] = [];
  const a = card.architecture ?? {}, d = card.data ?? {}, w = card.weights ?? {};
  if (a.encoder) facts.push({ label: "Encoder (frozen)", value: `${a.encoder}${a.grid ? `, ${a.grid.join("×")} regions` : ""}` });
  if (num(a.hiddenDim)) facts.push({ label: "Decoder", value: `LSTM ${a.hiddenDim} units, soft attention${a.members && a.members.length > 1 ? `, ensemble of ${a.members.length}` : ""}` });
  if (d.dataset) facts.push({ label: "Trained on", value: `${d.dataset}${num(d.train) ? `, ${d.train!.toLocaleString("en-US")} images` : ""}` });
  const vocabulary = num(d.vocabulary) ?? num(a.vocabSize);
  if (vocabulary) facts.push({ label: "Vocabulary", value: `${vocabulary.toLocaleString("en-US")} words` });
  const runs = card.training ?? [];
  const epochs = runs.reduce((n, r) => n + (num(r.epochs) ?? 0), 0);
  const seconds = runs.reduce((n, r) => n + (num(r.seconds) ?? 0), 0);
  if (epochs) facts.push({ label: "Training", value: `${epochs} epoch${epochs === 1 ? "" : "s"}${seconds ? `, ${Math.round(seconds / 60)} min on CPU` : ""}` });
  if (num(w.bytes)) facts.push({ label: "Weights", value: `${w.dtype ? `${w.dtype}, ` : ""}${(w.bytes! / 1e6).toFixed(1)} MB` });

  return { columns: columns.map(({ label, hint }) => ({ label, hint })), rows, scoresOn, facts };
}
