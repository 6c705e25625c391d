/**
 * Text helpers every detector needs: finding each occurrence of a request value in a sink's text, in time
 * linear in the text, and recognising values that are just numbers.
 */

import { spendWork } from './work-budget.js';

/**
 * What `visit` returns: false stops; true or nothing goes on to the next occurrence; a number skips every
 * occurrence that starts before it (the caller knows they would all be judged the same as this one).
 */
export type OccurrenceStep = boolean | number | void;

/**
 * Calls `visit` for every occurrence of `needle` in `text`, overlapping ones included, starting with the one
 * at `first` (which the caller found with `indexOf`); stops when `visit` returns false. Native `indexOf` finds
 * the next match as long as matches do not overlap. Overlapping matches mean a periodic needle (`''''`,
 * `----`): from then on the next match cannot start before p + period(needle), and a match at exactly
 * p + period is confirmed by comparing only the `period` characters after the current match, which keeps
 * periodic needles over periodic text linear.
 */
export function forEachOccurrence(text: string, needle: string, first: number, visit: (start: number) => OccurrenceStep): void {
  const m = needle.length;
  const n = text.length;
  let period = 0; // computed on the first overlap
  let p = first;
  while (p >= 0) {
    spendWork();
    const step = visit(p);
    if (step === false) return;
    if (typeof step === 'number' && step > p + 1) {
      p = text.indexOf(needle, step);
      continue;
    }
    if (period === 0) {
      const q = text.indexOf(needle, p + 1);
      if (q >= 0 && q < p + m) period = smallestPeriod(needle);
      p = q;
      continue;
    }
    const q = p + period;
    if (q + m > n) return;
    if (period < m && continuesPeriod(text, p + m, period)) {
      p = q;
      continue;
    }
    p = text.indexOf(needle, period < m ? q + 1 : q);
  }
}

/** text[from, from + period) repeats the `period` characters just before it (so the match shifts by one period). */
function continuesPeriod(text: string, from: number, period: number): boolean {
  for (let k = 0; k < period; k++) {
    if (text.charCodeAt(from + k) !== text.charCodeAt(from + k - period)) return false;
  }
  return true;
}

/** Smallest p such that s[i] === s[i + p] for all valid i (KMP failure function). */
function smallestPeriod(s: string): number {
  const m = s.length;
  if (m < 2) return m;
  const fail = new Int32Array(m);
  let k = 0;
  for (let i = 1; i < m; i++) {
    const c = s.charCodeAt(i);
    while (k > 0 && s.charCodeAt(k) !== c) k = fail[k - 1] ?? 0;
    if (s.charCodeAt(k) === c) k++;
    fail[i] = k;
  }
  return m - (fail[m - 1] ?? 0);
}

/** Digits with an optional sign and decimal part: values that collide with hard-coded numbers. */
export function isNumericText(s: string): boolean {
  let i = s.charCodeAt(0) === 45 || s.charCodeAt(0) === 43 ? 1 : 0;
  let digits = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c !== 46) return false;
  }
  return digits > 0;
}

/** Index of the last entry of `starts` (ascending) that is ≤ `pos`, or -1: which token a text offset falls in. */
export function lastAtOrBefore(starts: Int32Array, pos: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! <= pos) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
