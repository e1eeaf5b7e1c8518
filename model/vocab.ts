/** The word list shipped with the weights: ids 0..3 are reserved for the special tokens. */
import { tokenize } from "./text.ts";

export const PAD = 0, START = 1, END = 2, UNK = 3;

/**
 * Words a caption may repeat ("a man in a red shirt sits on a bench"). Search lets every other
 * word, the content words, appear at most once, which stops loops such as "a man in a red shirt
 * and a black and white shirt is wearing a black shirt" that trigram blocking lets through.
 */
export const FUNCTION_WORDS: ReadonlySet<string> = new Set([
  "a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "with", "by", "for", "from", "into", "onto",
  "over", "under", "near", "through", "while", "as", "is", "are", "his", "her", "their", "its", "it", "he",
  "she", "they", "one", "two", "three", "another", "other", "some", "each", "up", "down", "out", "off",
  "who", "that", "this", "has", "have", "be", "being",
]);
const SPECIALS = ["<pad>", "<start>", "<end>", "<unk>"] as const;

export class Vocabulary {
  readonly words: readonly string[];
  private readonly ids: Map<string, number>;

  constructor(words: readonly string[]) {
    SPECIALS.forEach((s, i) => {
      if (words[i] !== s) throw new Error(`vocabulary: id ${i} must be ${s}, found ${words[i]}`);
    });
    this.words = words;
    this.ids = new Map(words.map((w, i) => [w, i]));
    if (this.ids.size !== words.length) throw new Error("vocabulary: duplicate words");
  }

  /** Words seen at least minCount times in the given token lists, most frequent first (ties alphabetical). */
  static build(captions: Iterable<readonly string[]>, minCount: number): Vocabulary {
    const counts = new Map<string, number>();
    for (const c of captions) for (const w of c) counts.set(w, (counts.get(w) ?? 0) + 1);
    const kept = [...counts].filter(([, n]) => n >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return new Vocabulary([...SPECIALS, ...kept.map(([w]) => w)]);
  }

  get size(): number {
    return this.words.length;
  }

  id(word: string): number {
    return this.ids.get(word) ?? UNK;
  }

  has(word: string): boolean {
    return this.ids.has(word);
  }

  /** Text or tokens -> ids, without start/end markers. */
  encode(text: string | readonly string[]): number[] {
    return (typeof text === "string" ? tokenize(text) : text).map((w) => this.id(w));
  }

  /** ids -> words, stopping at <end> and skipping the other special tokens. */
  decode(ids: readonly number[]): string[] {
    const out: string[] = [];
    for (const i of ids) {
      if (i === END) break;
      if (i > UNK) out.push(this.words[i]);
    }
    return out;
  }

  toJSON(): string[] {
    return [...this.words];
  }
}
