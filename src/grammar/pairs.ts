/**
 * The pairs of adjacent characters a sink text holds, ASCII letters folded to lower case: a value that begins with
 * two ASCII characters making no such pair occurs nowhere in the text, neither as it is nor in the text's case
 * fold (String#toLowerCase, or ASCII-only folding). One bit test stands in for a substring search, and most of a
 * request's values are turned away by it: a statement holds few of the 16,384 pairs.
 *
 * Only ASCII pairs are kept; a value whose first two characters are not both ASCII is never turned away. A text
 * with characters beyond ASCII adds the pairs of its toLowerCase too, where such a character can fold to an ASCII
 * letter (U+212A KELVIN SIGN to `k`).
 */

/** Texts longer than this are not paired (a search through them is cheaper than pairing each new one). */
export const MAX_PAIRED_TEXT = 4096;

export class TextPairs {
  private readonly bits: Uint32Array | undefined;

  constructor(text: string) {
    if (text.length > MAX_PAIRED_TEXT) return;
    const bits = new Uint32Array(512);
    if (addPairs(bits, text)) addPairs(bits, text.toLowerCase());
    this.bits = bits;
  }

  /** False only when `value` occurs in the text neither as it is nor case-folded. */
  mayHold(value: string): boolean {
    const bits = this.bits;
    if (bits === undefined || value.length < 2) return true;
    const a = value.charCodeAt(0);
    const b = value.charCodeAt(1);
    if ((a | b) >= 128) return true;
    const pair = (foldAscii(a) << 7) | foldAscii(b);
    return (bits[pair >>> 5]! & (1 << (pair & 31))) !== 0;
  }
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
      const pair = (foldAscii(previous) << 7) | foldAscii(c);
      bits[pair >>> 5] = bits[pair >>> 5]! | (1 << (pair & 31));
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
