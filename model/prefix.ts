/**
 * Prefixes for "what if" decoding: the words a person wants the caption to start with, checked
 * against the vocabulary before any decoding, so a bad one is refused with a message that says why.
 */
import { tokenize } from "./text.ts";
import type { Vocabulary } from "./vocab.ts";

/** A prefix that cannot be forced: not words, a word the model does not know, or too long. */
export class PrefixError extends RangeError {
  override name = "PrefixError";
}

/** Longest raw prefix text looked at (a caption is at most 50 words). */
const MAX_CHARS = 1000;

/**
 * The prefix as vocabulary ids: a string or a list of strings, each split into words the way
 * captions are (lower case, punctuation dropped), so "A dog," is ["a", "dog"].
 */
export function prefixIds(prefix: unknown, vocab: Vocabulary, maxLen: number): number[] {
  const parts = typeof prefix === "string" ? [prefix] : prefix;
  if (!Array.isArray(parts) || parts.some((p) => typeof p !== "string")) throw new PrefixError("prefix must be a string of words or a list of words");
  if (parts.reduce((n, p: string) => n + p.length + 1, 0) > MAX_CHARS) throw new PrefixError(`prefix is too long: at most ${MAX_CHARS} characters`);
  const words = parts.flatMap((p: string) => tokenize(p));
  if (words.length > maxLen) throw new PrefixError(`prefix has ${words.length} words, but captions here are at most ${maxLen}`);
  return words.map((w) => {
    if (/^<.*>$/.test(w)) throw new PrefixError(`"${w}" is a marker, not a word: a prefix holds only words (the model decides where the caption ends)`);
    if (!vocab.has(w)) throw new PrefixError(`"${w.slice(0, 40)}" is not in the model's vocabulary of ${vocab.size - 4} words`);
    return vocab.id(w);
  });
}
