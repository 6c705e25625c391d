import type { SqlDialect } from '../events.js';
import { tokenizeSql, type SqlToken } from '../grammar/sql-tokenizer.js';

/**
 * Raw user input never leaves the process: payloads are reduced to their shape (letters and digits
 * masked, punctuation kept — `' OR '1'='1` becomes `' ** '*'='*`), which is what an analyst needs to see
 * an injection, without the values (passwords, personal data) it may carry.
 */
const MAX_PAYLOAD = 256;
const MAX_TEXT = 4096;

export function maskPayload(value: string): string {
  let out = '';
  const limit = Math.min(value.length, MAX_PAYLOAD);
  for (let i = 0; i < limit; i++) {
    const c = value.charCodeAt(i);
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c > 127;
    out += alnum ? '*' : c < 32 ? ' ' : value[i];
  }
  if (value.length > limit) out += '…';
  // Runs of the mask say nothing useful and could reveal lengths of secrets: collapse them.
  return out.replace(/\*{2,}/g, '**');
}

/** Replaces the given ranges of `text` by `?`, keeping everything the app wrote itself. */
export function redactRanges(text: string, ranges: ReadonlyArray<{ start: number; end: number }>): string {
  if (ranges.length === 0) return truncate(text);
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  let out = '';
  let cursor = 0;
  for (const r of sorted) {
    if (r.end <= cursor) continue;
    // A range overlapping the previous one extends the same placeholder.
    if (r.start >= cursor || out === '') out += text.slice(cursor, Math.max(cursor, r.start)) + '?';
    cursor = r.end;
  }
  out += text.slice(cursor);
  return truncate(out);
}

function truncate(text: string): string {
  return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + '…' : text;
}

/** Stack frames of the app only: no node internals, dependencies or stepguard itself. */
export function appStack(stack: string | undefined, ownDir: string): string | undefined {
  if (!stack) return undefined;
  const frames = stack
    .split('\n')
    .slice(1)
    .filter((line) => !line.includes('node:') && !line.includes('node_modules') && !line.includes(ownDir) && !line.includes('(<anonymous>)'))
    .map((line) => line.trim())
    .slice(0, 10);
  return frames.length > 0 ? frames.join('\n') : undefined;
}

/**
 * `db.query.text` as semantic conventions recommend for non-parameterised statements: every literal
 * replaced by `?`, and every span of user input collapsed to one `?`. The statement's structure stays
 * visible (an injected `UNION SELECT` shows as such), values never do.
 */
export function sanitizeSql(
  sql: string,
  dialect: SqlDialect,
  ranges: ReadonlyArray<{ start: number; end: number }>,
  tokens: readonly SqlToken[] = tokenizeSql(sql.length > MAX_TEXT * 4 ? sql.slice(0, MAX_TEXT * 4) : sql, dialect),
): string {
  const limit = Math.min(sql.length, MAX_TEXT * 4);
  const text = sql.slice(0, limit);
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  let out = '';
  let cursor = 0;
  let r = 0;
  let inUserInput = false;
  for (const token of tokens) {
    // Tokens of the whole statement (the detector's) go past the cut: a token cut in half is kept as cut.
    if (token.start >= limit) break;
    const end = Math.min(token.end, limit);
    while (r < sorted.length && sorted[r]!.end <= token.start) r++;
    if (r < sorted.length && sorted[r]!.start < end) {
      // Every token the input touches becomes part of one `?`.
      if (!inUserInput) out += text.slice(cursor, token.start) + '?';
      inUserInput = true;
      cursor = end;
      continue;
    }
    inUserInput = false;
    out += text.slice(cursor, token.start);
    const literal = token.type === 'string' || token.type === 'number' || token.type === 'unterminated-string';
    out += literal ? '?' : text.slice(token.start, end);
    cursor = end;
  }
  out += text.slice(cursor);
  return truncate(out);
}

/**
 * `url.full` without credentials or query values (semantic conventions: they must not be recorded), and with
 * user input collapsed as elsewhere.
 */
export function sanitizeUrl(url: string, ranges: ReadonlyArray<{ start: number; end: number }>): string {
  const redacted = redactRanges(url, ranges);
  const withoutUserinfo = redacted.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/?#@]*@/, '$1REDACTED@');
  const q = withoutUserinfo.indexOf('?');
  if (q === -1) return withoutUserinfo;
  const hash = withoutUserinfo.indexOf('#', q);
  const query = redactQueryValues(withoutUserinfo.slice(q, hash === -1 ? undefined : hash));
  return withoutUserinfo.slice(0, q) + query;
}

/**
 * `?a=1&b=2` → `?a=REDACTED&b=REDACTED`: after each `?` or `&`, a name up to the first `=` and the value after
 * it up to the next `&`. One pass; the equivalent regular expression retried every `?` of a name and was
 * quadratic on `????…` (16 ms for a 4 KB URL).
 */
function redactQueryValues(query: string): string {
  const n = query.length;
  let out = '';
  let from = 0;
  let i = 0;
  while (i < n) {
    const c = query.charCodeAt(i);
    if (c !== 63 /* ? */ && c !== 38 /* & */) {
      i++;
      continue;
    }
    let k = i + 1;
    while (k < n && query.charCodeAt(k) !== 61 /* = */ && query.charCodeAt(k) !== 38) k++;
    if (k === n || query.charCodeAt(k) !== 61) {
      i = k; // no value: every `?` inside this name would end at the same place
      continue;
    }
    let v = k + 1;
    while (v < n && query.charCodeAt(v) !== 38) v++;
    out += query.slice(from, k + 1) + 'REDACTED';
    from = v;
    i = v;
  }
  return out + query.slice(from);
}
