import { describe, expect, it } from 'vitest';
import { ASKED_BEFORE_PAIRING, MAX_PAIRED_TEXT, TextPairs, pairsOf } from '../../../src/grammar/pairs.js';

/** The text's pairs, already asked about often enough to be built. */
function paired(text: string): TextPairs {
  const pairs = new TextPairs(text);
  for (let i = 1; i < ASKED_BEFORE_PAIRING; i++) pairs.mayHold('');
  return pairs;
}

/** Every way the SQL detector looks for a value: as it is, and in the text's case fold (both foldings). */
function occurs(text: string, value: string): boolean {
  const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return text.includes(value) || text.toLowerCase().includes(value.toLowerCase()) || asciiLower(text).includes(asciiLower(value));
}

/** Seeded random draws, and words of `alphabet` made from them: the same cases on every run. */
function generator(seed: number, alphabet: readonly string[]): { next: () => number; word: (n: number) => string } {
  const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const word = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
  return { next, word };
}

describe('the pairs of a sink text', () => {
  it('turns away a value with two adjacent characters that are no pair of the text, and only such a value', () => {
    const text = 'SELECT id, name FROM users WHERE name = $1';
    const pairs = paired(text);
    for (const absent of ['alice', 'param', '127.0.0.1:3000', 'keep-alive', 'zz']) expect(pairs.mayHold(absent)).toBe(false);
    // Its first pairs are the text's (`na`, `am`, `me`), `e=` is not: turned away without a search.
    expect(pairs.mayHold('name=alice')).toBe(false);
    expect(pairs.mayHold('nax')).toBe(false);
    for (const present of ['name', 'NAME', 'Users', 'e = $', 'id, n', '$1']) expect(pairs.mayHold(present)).toBe(true);
    // Every pair the text's, in a value the text does not hold: let through (the search that follows says no).
    expect(pairs.mayHold('namers')).toBe(true);
    // Too short to pair, or no pair of two ASCII characters: never turned away.
    expect(pairs.mayHold('q')).toBe(true);
    expect(pairs.mayHold('ék')).toBe(true);
    expect(pairs.mayHold('naé')).toBe(true);
    // Only the first 33 characters are paired: a long value that goes wrong after them is let through.
    expect(pairs.mayHold(`${text.slice(0, 33)}zz`)).toBe(true);
    expect(pairs.mayHold(`${text.slice(0, 32)}zz`)).toBe(false);
  });

  it('a character that folds to an ASCII letter (KELVIN SIGN) pairs as its fold', () => {
    const pairs = paired("SELECT '\u212Aelvin'");
    expect(pairs.mayHold('kelvin')).toBe(true);
    expect(occurs("SELECT '\u212Aelvin'", 'kelvin')).toBe(true);
  });

  it('a text longer than the limit is never paired', () => {
    expect(paired(`SELECT '${'x'.repeat(MAX_PAIRED_TEXT)}'`).mayHold('zz')).toBe(true);
  });

  it('a text is searched, not paired, for its first few values', () => {
    const pairs = new TextPairs('SELECT 1 FROM t');
    for (let i = 1; i < ASKED_BEFORE_PAIRING; i++) expect(pairs.mayHold('zz')).toBe(true);
    expect(pairs.mayHold('zz')).toBe(false);
  });

  it('the last text asked about is paired once', () => {
    const text = 'SELECT 1 FROM t';
    expect(pairsOf(text)).toBe(pairsOf(text));
    expect(pairsOf('SELECT 2')).not.toBe(pairsOf(text));
  });

  it('never turns away a value that occurs, on 20,000 generated texts and values', () => {
    const { next, word } = generator(7, ['a', 'B', 'k', 'K', '\u212A', 'İ', 'i', 'ß', "'", ' ', '-', '1', 'é', 'É', '\uD83D\uDE00', 'Σ', 'ς', 'x', 'X', '=']);
    let turnedAway = 0;
    for (let round = 0; round < 20_000; round++) {
      const text = word(2 + Math.floor(next() * 30));
      const value = next() < 0.5 ? text.slice(Math.floor(next() * text.length)).slice(0, 2 + Math.floor(next() * 6)) : word(2 + Math.floor(next() * 4));
      const variants = [value, value.toUpperCase(), value.toLowerCase()];
      for (const v of variants) {
        const held = paired(text).mayHold(v);
        if (!held) turnedAway++;
        if (!held) expect({ text, v, occurs: occurs(text, v) }).toEqual({ text, v, occurs: false });
      }
    }
    expect(turnedAway).toBeGreaterThan(1000); // the screen does turn values away
  });

  it('never turns away a long value that occurs (as it is or case-changed), and turns away only values that do not', () => {
    const { next, word } = generator(11, ['a', 'B', 'k', '\u212A', 'İ', 'ß', "'", ' ', '1', 'é', 'Σ', 'x', 'X', '=']);
    let turnedAway = 0;
    for (let round = 0; round < 5_000; round++) {
      const text = word(40 + Math.floor(next() * 80));
      const pairs = paired(text);
      const start = Math.floor(next() * text.length);
      const held = text.slice(start, start + 20 + Math.floor(next() * 40));
      expect(pairs.mayHold(held), JSON.stringify({ text, held })).toBe(true);
      for (const v of [held.toUpperCase(), held.toLowerCase(), word(20 + Math.floor(next() * 40))]) {
        if (pairs.mayHold(v)) continue;
        turnedAway++;
        expect(occurs(text, v), JSON.stringify({ text, v })).toBe(false);
      }
    }
    expect(turnedAway).toBeGreaterThan(500);
  });
});
