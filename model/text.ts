/**
 * Caption text: one tokenizer for training, decoding and scoring. It follows the PTB-style
 * tokenisation that pycocoevalcap applies before scoring (lower-case, clitics split off,
 * hyphenated words kept whole, punctuation tokens dropped), so the words the model learns
 * are exactly the units the metrics count.
 */

// Tokens pycocoevalcap removes after tokenising.
const PUNCT = new Set(["''", "'", "``", "`", "-lrb-", "-rrb-", "-lcb-", "-rcb-", ".", "?", "!", ",", ":", "-", "--", "...", ";", '"']);
const CLITIC = /^(.+?)('s|'re|'ve|'ll|'d|'m|n't)$/;
const EDGE_PUNCT = /^([.,!?:;"`'()\[\]{}]+)|([.,!?:;"`'()\[\]{}]+)$/g;

/** "A dog's ball, (red)." -> ["a", "dog", "'s", "ball", "red"] */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.toLowerCase().replace(/[()\[\]{}]/g, " ").split(/\s+/)) {
    if (!raw) continue;
    // Peel punctuation off both ends; what is left in the middle (t-shirt, 3.5) stays whole.
    const core = raw.replace(EDGE_PUNCT, " ").trim();
    for (const piece of core.split(/\s+/)) {
      if (!piece || PUNCT.has(piece) || /^[-.,!?:;"`']+$/.test(piece)) continue;
      const m = CLITIC.exec(piece);
      if (m && m[1] !== "'") out.push(m[1], m[2]);
      else out.push(piece);
    }
  }
  return out;
}

/** Joins tokens back into display text ("dog 's" -> "dog's"). */
export function detokenize(words: readonly string[]): string {
  return words.join(" ").replace(/ ('s|'re|'ve|'ll|'d|'m|n't)\b/g, "$1");
}

// Words spelled with a vowel but said with a consonant ("a unicycle"), and the reverse ("an hour").
const CONSONANT_SOUND = /^(uni|use|usu|uti|eu|one|once|ufo)/;
const VOWEL_SOUND = /^(hour|honest|honou?r|heir)/;

/**
 * "a" / "an" agreeing with the next word ("an airplane"). The decoder learned articles for its own
 * words; a name put in by grounding (model/grounding.ts) may follow the wrong one.
 */
export function fixArticles(words: readonly string[]): string[] {
  return words.map((w, i) => {
    const next = words[i + 1];
    if ((w !== "a" && w !== "an") || !next) return w;
    const vowel = (/^[aeiou]/.test(next) && !CONSONANT_SOUND.test(next)) || VOWEL_SOUND.test(next);
    return vowel ? "an" : "a";
  });
}
