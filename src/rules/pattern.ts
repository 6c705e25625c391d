import type { Pattern } from './types.js';

/**
 * Rule patterns are globs, not regular expressions, so that no rule can backtrack catastrophically:
 * `*` matches any run of characters, `?` one character, everything else is literal; matching is
 * case-insensitive and any run of whitespace matches any other (`UPDATE  accounts\n SET` matches
 * `update accounts set*`). Cost is O(text × stars) at worst — linear for a fixed pattern.
 */
export function compilePattern(source: string): Pattern {
  const pattern = normalizeText(source);
  return {
    source,
    test: (text: string) => globMatch(pattern, normalizeText(text)),
  };
}

/** Lower-cases and collapses whitespace runs to one space (trimmed). */
export function normalizeText(text: string): string {
  let out = '';
  let pendingSpace = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v') {
      pendingSpace = out.length > 0;
      continue;
    }
    if (pendingSpace) {
      out += ' ';
      pendingSpace = false;
    }
    out += ch;
  }
  return out.toLowerCase();
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
