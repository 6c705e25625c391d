/**
 * The pairs of adjacent characters a sink text holds, ASCII letters folded to lower case: a value with two adjacent
 * ASCII characters making no such pair occurs nowhere in the text, neither as it is nor in the text's case fold
 * (String#toLowerCase, or ASCII-only folding: both map each character on its own, so two adjacent ASCII characters
 * of the value stay adjacent, folded, wherever the folded value occurs). A few bit tests stand in for a substring
 * search, and most of a request's values are turned away by them: a statement of a few dozen characters sets a few
 * dozen of the table's 512 bits.
 *
 * The pairs are hashed into the table, so two pairs may share a bit: a value may then be let through that the text
 * does not hold (the search that follows says no), never the other way round. Only ASCII pairs are kept and tested:
 * a pair with a character beyond ASCII in it never turns a value away. A text with characters beyond ASCII adds the
 * pairs of its toLowerCase too, where such a character can fold to an ASCII letter (U+212A KELVIN SIGN to `k`).
 *
 * The table is built at the text's ASKED_BEFORE_PAIRING-th question, not its first: a statement the app builds anew
 * on each request, asked about for a few values, is searched for them rather than paired; a statement the app runs
 * again and again (a parameterised one) is paired once.
 */

/** Texts longer than this are not paired (a search through them is cheaper than pairing each new one). */
export const MAX_PAIRED_TEXT = 4096;
export const ASKED_BEFORE_PAIRING = 4;
/**
 * Pairs of a value tested at most: those of its first 33 characters. A value the text does not hold nearly always
 * shows it in a few pairs, and a long value is then searched for rather than walked to its end.
 */
const PAIRS_TESTED = 32;
const TABLE_WORDS = 16; // 512 bits: a typed array this small lives on V8's heap, without a backing store of its own

export class TextPairs {
  private bits: Uint32Array | undefined;
  private asked = 0;

  constructor(private readonly text: string) {}

  /** False only when `value` occurs in the text neither as it is nor case-folded. */
  mayHold(value: string): boolean {
    let bits = this.bits;
    if (bits === undefined) {
      if (++this.asked < ASKED_BEFORE_PAIRING || this.text.length > MAX_PAIRED_TEXT) return true;
      bits = this.bits = pairTable(this.text);
    }
    // Every pair of the value, not only its first: a value that begins like a word of the statement (`name=alice` in
    // `… WHERE name = $1`) is turned away here instead of by two searches of the text (as it is and case-folded).
    const end = Math.min(value.length, PAIRS_TESTED + 1);
    let a = value.charCodeAt(0);
    for (let i = 1; i < end; i++) {
      const b = value.charCodeAt(i);
      if ((a | b) < 128) {
        const bit = hashPair(a, b);
        if ((bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
      }
      a = b;
    }
    return true;
  }
}

function pairTable(text: string): Uint32Array {
  const bits = new Uint32Array(TABLE_WORDS);
  if (addPairs(bits, text)) addPairs(bits, text.toLowerCase());
  return bits;
}

function hashPair(a: number, b: number): number {
  return (foldAscii(a) * 37 + foldAscii(b)) & (TABLE_WORDS * 32 - 1);
}

function foldAscii(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/** Adds the text's ASCII pairs; true when it has characters beyond ASCII. */
function addPairs(bits: Uint32Array, text: string): boolean {
  let beyond = false;
  let previous = text.length === 0 ? 128 : text.charCodeAt(0);
  if (previous >= 128) beyond = true;
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128) beyond = true;
    else if (previous < 128) {
      const bit = hashPair(previous, c);
      bits[bit >>> 5] = bits[bit >>> 5]! | (1 << (bit & 31));
    }
    previous = c;
  }
  return beyond;
}

/**
 * The pairs of the text asked about last: a request's screen asks for the same statement with each of its values,
 * and an app runs the same statement text on every request of a route.
 */
let lastText: string | undefined;
let lastPairs: TextPairs | undefined;

export function pairsOf(text: string): TextPairs {
  if (text === lastText) return lastPairs!;
  lastPairs = new TextPairs(text);
  lastText = text;
  return lastPairs;
}
