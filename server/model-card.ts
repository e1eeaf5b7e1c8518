/**
 * What the page shows of the model card (model/weights/model-card.json, written by
 * notebooks-port/export.ts and evaluate.ts): the test-split scores per decoding (`scores.test`),
 * or, before the model has been evaluated, the dev scores of its last training epoch; plus a few
 * facts about the architecture, data and weights. Missing fields are simply left out.
 */

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

type Json = Record<string, unknown>;
const isObj = (x: unknown): x is Json => typeof x === "object" && x !== null && !Array.isArray(x);
const num = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null);

const COLUMNS: readonly { key: string; label: string; hint: string; fmt: (v: number) => string }[] = [
  { key: "bleu1", label: "BLEU-1", hint: "unigram precision with brevity penalty", fmt: (v) => v.toFixed(3) },
  { key: "bleu2", label: "BLEU-2", hint: "n-grams up to 2", fmt: (v) => v.toFixed(3) },
  { key: "bleu3", label: "BLEU-3", hint: "n-grams up to 3", fmt: (v) => v.toFixed(3) },
  { key: "bleu4", label: "BLEU-4", hint: "n-grams up to 4: the usual headline", fmt: (v) => v.toFixed(3) },
  { key: "rougeL", label: "ROUGE-L", hint: "longest common subsequence F-score", fmt: (v) => v.toFixed(3) },
  { key: "cider", label: "CIDEr-D", hint: "consensus with the 5 references, TF-IDF weighted", fmt: (v) => v.toFixed(3) },
  { key: "meanLength", label: "Length", hint: "mean words per caption", fmt: (v) => v.toFixed(1) },
  { key: "distinct", label: "Distinct", hint: "share of images with a caption no other image got", fmt: (v) => `${(v * 100).toFixed(0)}%` },
  { key: "medianMs", label: "ms / image", hint: "median model time per image when evaluated", fmt: (v) => v.toFixed(0) },
];

function decodingName(key: string): string {
  const m = /^beam(\d+)$/.exec(key);
  if (!m) return key;
  return m[1] === "1" ? "greedy" : `beam ${m[1]}`;
}

export function cardView(card: Record<string, unknown> | null): CardView {
  const empty: CardView = { columns: [], rows: [], scoresOn: null, facts: [] };
  if (!card) return empty;

  let sources: [string, Json][] = [];
  let scoresOn: string | null = null;
  const test = isObj(card.scores) && isObj(card.scores.test) ? card.scores.test : null;
  if (test) {
    sources = Object.entries(test).filter((e): e is [string, Json] => isObj(e[1])).map(([k, v]) => [decodingName(k), v]);
    const n = num(sources[0]?.[1].images);
    scoresOn = `Flickr8k test split${n ? `, ${n.toLocaleString("en-US")} images` : ""}`;
  } else {
    // Not evaluated yet: the dev scores of the last epoch trained.
    const runs = Array.isArray(card.training) ? card.training.filter(isObj) : [];
    const last = runs.at(-1);
    const history = last && Array.isArray(last.history) ? last.history.filter(isObj) : [];
    const h = history.at(-1);
    if (h) {
      sources = [[`dev, epoch ${h.epoch ?? history.length} (greedy)`, h]];
      scoresOn = "Flickr8k dev split, during training (no test scores in the card yet)";
    }
  }
  const columns = COLUMNS.filter((c) => sources.some(([, s]) => num(s[c.key]) !== null));
  const rows = sources.map(([decoding, s]) => ({
    decoding,
    cells: columns.map((c) => ({ value: num(s[c.key]) === null ? "–" : c.fmt(num(s[c.key])!), headline: c.key === "bleu4" || c.key === "cider" })),
  }));

  const facts: CardView["facts"] = [];
  const a = isObj(card.architecture) ? card.architecture : {};
  const d = isObj(card.data) ? card.data : {};
  const w = isObj(card.weights) ? card.weights : {};
  if (typeof a.encoder === "string") facts.push({ label: "Encoder (frozen)", value: `${a.encoder}${Array.isArray(a.grid) ? `, ${a.grid.join("×")} regions` : ""}` });
  if (num(a.hiddenDim)) facts.push({ label: "Decoder", value: `LSTM ${a.hiddenDim} units, soft attention` });
  if (typeof d.dataset === "string") facts.push({ label: "Trained on", value: `${d.dataset}${num(d.train) ? `, ${num(d.train)!.toLocaleString("en-US")} images` : ""}` });
  if (num(d.vocabulary) ?? num(a.vocabSize)) facts.push({ label: "Vocabulary", value: `${(num(d.vocabulary) ?? num(a.vocabSize))!.toLocaleString("en-US")} words` });
  const runs = Array.isArray(card.training) ? card.training.filter(isObj) : [];
  const epochs = runs.reduce((s, r) => s + (num(r.epochs) ?? 0), 0);
  const seconds = runs.reduce((s, r) => s + (num(r.seconds) ?? 0), 0);
  if (epochs) facts.push({ label: "Training", value: `${epochs} epoch${epochs === 1 ? "" : "s"}${seconds ? `, ${Math.round(seconds / 60)} min on CPU` : ""}` });
  if (num(w.bytes)) facts.push({ label: "Weights", value: `${typeof w.dtype === "string" ? `${w.dtype}, ` : ""}${(num(w.bytes)! / 1e6).toFixed(1)} MB` });

  return { columns: columns.map(({ label, hint }) => ({ label, hint })), rows, scoresOn, facts };
}
