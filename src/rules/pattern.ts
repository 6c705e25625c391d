import type { Pattern } from './types.js';

/**
 * Rule patterns are globs, not regular expressions, so that no rule can backtrack catastrophically:
 * `*` matches any run of characters, `?` one character, everything else is literal; matching is
 * case-insensitive and any run of whitespace matches any other (`UPDATE  accounts\n SET` matches
 * `update accounts set*`). Cost is O(text × stars) at worst — linear for a fixed pattern.
 */
export function compilePattern(source: string): Pattern {
  // `**` can only ever mean `*`; collapsing runs keeps the matcher's single backtrack point.
  const pattern = normalizeText(source).replace(/\*{2,}/g, '*');
  return {
    source,
    test: (text: string) => globMatch(pattern, normalizeText(text)),
  };
}

/**
 * Lower-cases and collapses whitespace runs to one space (trimmed). The result is joined from slices that
 * are already normal — a slice ends only at a blank run other than one plain space — so a statement written
 * on one line is one slice, and a multi-line one a slice per line (appending character by character cost
 * 0.5 s on a 10 MB statement).
 */
export function normalizeText(text: string): string {
  const n = text.length;
  let i = 0;
  while (i < n && isBlank(text.charCodeAt(i))) i++;
  const parts: string[] = [];
  let from = i;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (!isBlank(c)) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && isBlank(text.charCodeAt(j))) j++;
    if (j === n) break; // trailing blanks: dropped
    if (c !== 32 || j > i + 1) {
      parts.push(text.slice(from, i));
      from = j;
    }
    i = j;
  }
  parts.push(text.slice(from, i));
  return (parts.length === 1 ? parts[0]! : parts.join(' ')).toLowerCase();
}

/** Space, tab, newline, vertical tab, form feed, carriage return. */
function isBlank(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** Iterative glob match: on mismatch, retry from the last `*` one character further. No recursion. */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === '*') {
      starP = p++;
      starT = t;
    } else if (pc !== undefined && (pc === '?' || pc === text[t])) {
      p++;
      t++;
    } else if (starP !== -1) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

export const MAX_PATTERN_LENGTH = 512;
export const MAX_PATTERN_WILDCARDS = 16;

/** Regular-expression syntax that means something else (or nothing) in a glob. */
const REGEX_TELLS = ['.*', '.+', '(?', '\\d', '\\w', '\\s', '\\b', '[^'];

/**
 * Why `source` cannot be a rule pattern, or undefined when it can. Checked at load time so a pattern that
 * would never match (a regex written by habit) or could cost too much is reported with the fix.
 */
export function patternProblem(source: string): string | undefined {
  if (source.trim() === '') return 'empty pattern; use * to match anything, or leave the condition out';
  if (source.length > MAX_PATTERN_LENGTH) return `pattern is ${source.length} characters; at most ${MAX_PATTERN_LENGTH}`;
  const tell = source.startsWith('^') ? '^' : REGEX_TELLS.find((t) => source.includes(t));
  if (tell) {
    return `looks like a regular expression ("${tell}"); rule patterns are globs: * matches any run of characters, ? one character (e.g. "UPDATE accounts *" rather than "^UPDATE accounts.*")`;
  }
  const wildcards = source.replace(/\*{2,}/g, '*').split('').filter((c) => c === '*' || c === '?').length;
  if (wildcards > MAX_PATTERN_WILDCARDS) return `${wildcards} wildcards; at most ${MAX_PATTERN_WILDCARDS} keep matching fast — make the pattern more literal`;
  return undefined;
}
