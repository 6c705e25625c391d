/**
 * A small, dialect-aware SQL lexer for PostgreSQL and MySQL/MariaDB.
 *
 * It does not parse: the injection detector only needs to know where each token starts and ends and what
 * kind of token it is, so it can tell whether a piece of user input stayed inside one token. The lexer is
 * one forward pass over char codes (no regular expressions), so its cost is linear in the statement length
 * whatever the input looks like. Whitespace is not emitted: any gap between two tokens is whitespace.
 *
 * Where the two dialects' lexers differ, this one follows the server defaults:
 * - PostgreSQL: `standard_conforming_strings = on` (backslash is literal in '...', an escape in E'...'),
 *   `"..."` is an identifier, `--` always starts a comment, `/* *\/` nests, `$tag$...$tag$` is a string.
 * - MySQL/MariaDB: `sql_mode` without ANSI_QUOTES / NO_BACKSLASH_ESCAPES (backslash escapes in '...' and
 *   "...", `"..."` is a string), `` `...` `` is an identifier, `--` is a comment only when followed by
 *   whitespace, a control character or the end, `#` is a comment, `/* *\/` does not nest. `/*! ... *\/` and
 *   `/*M! ... *\/` (executable comments) are still one comment token: the caller decides what they mean.
 */

import type { SqlDialect } from '../events.js';
import { spendWork } from './work-budget.js';

export type { SqlDialect };

export type SqlTokenType =
  /** A complete string literal, quotes and prefix included: '..', E'..', X'..', B'..', N'..', $tag$..$tag$, MySQL "..". */
  | 'string'
  /** A complete quoted identifier: PostgreSQL "..", MySQL `..`. */
  | 'quoted-identifier'
  | 'number'
  /** A word in the keyword set below (case-insensitive). */
  | 'keyword'
  /** Any other word: table, column, function, alias... */
  | 'identifier'
  /** $1 (PostgreSQL), ? and ?? (MySQL), :name (both). */
  | 'placeholder'
  | 'operator'
  /** ( ) [ ] { } , . */
  | 'punctuation'
  /** ; */
  | 'terminator'
  /** A complete comment: -- .., # .., /* .. *\/. */
  | 'comment'
  /** A string or quoted identifier whose closing quote never comes: it runs to the end of the statement. */
  | 'unterminated-string'
  | 'unterminated-identifier'
  /** A block comment that is never closed. */
  | 'unterminated-comment'
  /** A character neither dialect gives a meaning to outside quotes (e.g. a stray backslash). */
  | 'unknown';

export interface SqlToken {
  readonly type: SqlTokenType;
  /** Offset of the first character (UTF-16 code units). */
  readonly start: number;
  /** Offset after the last character (half-open). */
  readonly end: number;
}

// Reserved and structural words of both dialects. Words that are only sometimes keywords (KEY, DATA, NAME,
// STATUS...) are left out on purpose: they are far more often column names, and the detector reports a
// request value equal to a whole identifier (a concatenated column name) but ignores one equal to a keyword.
const KEYWORDS: ReadonlySet<string> = new Set(
  (
    'ADD ALL ALTER ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC BEGIN BETWEEN BINARY BOTH BY CALL CASE CAST CHECK ' +
    'COLLATE COLUMN COMMIT CONFLICT CONSTRAINT COPY CREATE CROSS CURRENT_DATE CURRENT_ROLE CURRENT_TIME ' +
    'CURRENT_TIMESTAMP CURRENT_USER DATABASE DEALLOCATE DECLARE DEFAULT DELAYED DELETE DESC DESCRIBE DISTINCT ' +
    'DISTINCTROW DIV DO DROP DUAL DUMPFILE DUPLICATE ELSE END ESCAPE EXCEPT EXECUTE EXISTS EXPLAIN FALSE FETCH ' +
    'FIRST FOR FOREIGN FROM FULL FUNCTION GRANT GROUP HANDLER HAVING HIGH_PRIORITY IF IGNORE ILIKE IN INFILE ' +
    'INNER INSERT INTERSECT INTERVAL INTO IS ISNULL JOIN LAST LATERAL LEADING LEFT LIKE LIMIT LOAD LOCALTIME ' +
    'LOCALTIMESTAMP LOCK LOW_PRIORITY MINUS MOD NATURAL NOT NOTNULL NOWAIT NULL NULLS OF OFFSET ON ONLY OR ' +
    'ORDER OUTER OUTFILE OVER OVERLAPS PARTITION PREPARE PRIMARY PROCEDURE REFERENCES REGEXP RENAME REPLACE ' +
    'RETURNING REVOKE RIGHT RLIKE ROLLBACK SAVEPOINT SELECT SESSION_USER SET SHOW SIMILAR SOME ' +
    'SQL_CALC_FOUND_ROWS STRAIGHT_JOIN SYMMETRIC TABLE THEN TO TRAILING TRANSACTION TRIGGER TRUE TRUNCATE ' +
    'UNION UNIQUE UNKNOWN UPDATE USE USING VALUES VARIADIC VIEW WHEN WHERE WINDOW WITH XOR'
  ).split(' '),
);

// Longest keyword above is 19 chars (SQL_CALC_FOUND_ROWS): a longer word is an identifier without a lookup.
const MAX_KEYWORD_LENGTH = 19;

// MySQL operators of more than one character, longest first so the first hit is the longest match.
// (PostgreSQL lets users define operators, so there the lexer's own rule is used instead; see lexPgOperator.)
const MYSQL_MULTI_OPERATORS: readonly string[] = ['<=>', '->>', '<=', '>=', '<>', '!=', '<<', '>>', '&&', '||', ':=', '->'];
/** The same by first char code (one lookup per operator token, not twelve comparisons); order kept. */
const MYSQL_MULTI_OPERATORS_BY_FIRST: (string[] | undefined)[] = [];
for (const op of MYSQL_MULTI_OPERATORS) (MYSQL_MULTI_OPERATORS_BY_FIRST[op.charCodeAt(0)] ??= []).push(op);

const enum C {
  TAB = 9,
  LF = 10,
  CR = 13,
  SPACE = 32,
  BANG = 33,
  DQUOTE = 34,
  HASH = 35,
  DOLLAR = 36,
  PERCENT = 37,
  AMP = 38,
  SQUOTE = 39,
  LPAREN = 40,
  RPAREN = 41,
  STAR = 42,
  PLUS = 43,
  COMMA = 44,
  MINUS = 45,
  DOT = 46,
  SLASH = 47,
  D0 = 48,
  D1 = 49,
  D7 = 55,
  D9 = 57,
  COLON = 58,
  SEMI = 59,
  LT = 60,
  EQ = 61,
  GT = 62,
  QUESTION = 63,
  AT = 64,
  UPPER_B = 66,
  UPPER_E = 69,
  UPPER_N = 78,
  UPPER_O = 79,
  UPPER_U = 85,
  UPPER_X = 88,
  LBRACKET = 91,
  BACKSLASH = 92,
  RBRACKET = 93,
  CARET = 94,
  UNDERSCORE = 95,
  BACKTICK = 96,
  LOWER_A = 97,
  LOWER_Z = 122,
  LBRACE = 123,
  PIPE = 124,
  RBRACE = 125,
  TILDE = 126,
  DEL = 127,
}

function isSpace(c: number): boolean {
  return c === C.SPACE || (c >= C.TAB && c <= C.CR);
}

function isDigit(c: number): boolean {
  return c >= C.D0 && c <= C.D9;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || ((c | 0x20) >= C.LOWER_A && (c | 0x20) <= 102);
}

function isLetter(c: number): boolean {
  const l = c | 0x20;
  return l >= C.LOWER_A && l <= C.LOWER_Z;
}

/** Both servers accept any non-ASCII character in an unquoted identifier. */
function isIdentStart(c: number): boolean {
  return isLetter(c) || c === C.UNDERSCORE || c >= 0x80;
}

/** `$` is an identifier character in both dialects (`a$b`), but PostgreSQL does not let a word start with it. */
function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === C.DOLLAR;
}

/** Operator characters both dialects share. */
function isCommonOperatorChar(c: number): boolean {
  switch (c) {
    case C.PLUS:
    case C.MINUS:
    case C.STAR:
    case C.SLASH:
    case C.LT:
    case C.GT:
    case C.EQ:
    case C.TILDE:
    case C.BANG:
    case C.AT:
    case C.PERCENT:
    case C.CARET:
    case C.AMP:
    case C.PIPE:
      return true;
    default:
      return false;
  }
}

/** PostgreSQL operators may also contain `#`, `` ` `` and `?` (e.g. `#>>`, `?|`). */
function isPgOperatorChar(c: number): boolean {
  return isCommonOperatorChar(c) || c === C.HASH || c === C.BACKTICK || c === C.QUESTION;
}

/** MySQL also treats `:` as an operator character (`:=`). */
function isMySqlOperatorChar(c: number): boolean {
  return isCommonOperatorChar(c) || c === C.COLON;
}

/** True when `word` (sql[start, end)) is in the keyword set, compared case-insensitively. */
export function isSqlKeyword(sql: string, start: number, end: number): boolean {
  if (end - start < 2 || end - start > MAX_KEYWORD_LENGTH) return false;
  return KEYWORDS.has(sql.slice(start, end).toUpperCase());
}

/**
 * Split `sql` into tokens. Never throws: text that a server would reject still gets tokens (an
 * unterminated quote becomes an `unterminated-*` token running to the end).
 */
export function tokenizeSql(sql: string, dialect: SqlDialect): SqlToken[] {
  const pg = dialect === 'postgres';
  const n = sql.length;
  const tokens: SqlToken[] = [];
  let i = 0;

  const push = (type: SqlTokenType, start: number, end: number): void => {
    tokens.push({ type, start, end });
  };
  // The PostgreSQL operator-character run last scanned (see pgOperatorEnd).
  const run = { start: 0, end: 0, lastSpecial: -1, lastOther: -1 };

  /**
   * Scan a quoted run opened at `open` (the opening quote). `quote` doubled is an escaped quote; with
   * `backslash`, a backslash escapes the next character. Returns the index after the closing quote, or -1.
   */
  const scanQuoted = (open: number, quote: number, backslash: boolean): number => {
    let j = open + 1;
    while (j < n) {
      const c = sql.charCodeAt(j);
      if (backslash && c === C.BACKSLASH) {
        j += 2;
        continue;
      }
      if (c === quote) {
        if (j + 1 < n && sql.charCodeAt(j + 1) === quote) {
          j += 2;
          continue;
        }
        return j + 1;
      }
      j++;
    }
    return -1;
  };

  const quoted = (start: number, open: number, quote: number, backslash: boolean, identifier: boolean): void => {
    const end = scanQuoted(open, quote, backslash);
    if (end < 0) push(identifier ? 'unterminated-identifier' : 'unterminated-string', start, n);
    else push(identifier ? 'quoted-identifier' : 'string', start, end);
    i = end < 0 ? n : end;
  };

  while (i < n) {
    spendWork();
    const c = sql.charCodeAt(i);
    const next = i + 1 < n ? sql.charCodeAt(i + 1) : -1;

    if (isSpace(c)) {
      i++;
      continue;
    }

    // ---- comments ----
    if (c === C.MINUS && next === C.MINUS) {
      // MySQL: `--` starts a comment only before whitespace, a control character or the end; `1--1` is 1 - -1.
      const after = i + 2 < n ? sql.charCodeAt(i + 2) : 0;
      if (pg || after <= C.SPACE || after === C.DEL) {
        i = lineComment(i);
        continue;
      }
    }
    if (c === C.HASH && !pg) {
      i = lineComment(i);
      continue;
    }
    if (c === C.SLASH && next === C.STAR) {
      blockComment(i);
      continue;
    }

    // ---- quoted things ----
    if (c === C.SQUOTE) {
      quoted(i, i, C.SQUOTE, !pg, false);
      continue;
    }
    if (c === C.DQUOTE) {
      // PostgreSQL: identifier (no backslash escapes). MySQL: a string like '...'.
      quoted(i, i, C.DQUOTE, !pg, pg);
      continue;
    }
    if (c === C.BACKTICK && !pg) {
      quoted(i, i, C.BACKTICK, false, true);
      continue;
    }

    // ---- prefixed strings: E'..' X'..' B'..' N'..' U&'..' (U&".." is an identifier) ----
    if (isLetter(c)) {
      const u = c & ~0x20;
      if (next === C.SQUOTE) {
        if (u === C.UPPER_E && pg) {
          quoted(i, i + 1, C.SQUOTE, true, false);
          continue;
        }
        if (u === C.UPPER_X || u === C.UPPER_B || u === C.UPPER_N) {
          quoted(i, i + 1, C.SQUOTE, !pg && u === C.UPPER_N, false);
          continue;
        }
      }
      if (pg && u === C.UPPER_U && next === C.AMP && i + 2 < n) {
        const q = sql.charCodeAt(i + 2);
        if (q === C.SQUOTE || q === C.DQUOTE) {
          quoted(i, i + 2, q, false, q === C.DQUOTE);
          continue;
        }
      }
    }

    // ---- PostgreSQL $1 and dollar quotes ----
    if (c === C.DOLLAR && pg) {
      if (isDigit(next)) {
        let j = i + 1;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        push('placeholder', i, j);
        i = j;
        continue;
      }
      // $tag$ where tag is empty or an identifier without `$`.
      let j = i + 1;
      if (j < n && isIdentStart(sql.charCodeAt(j))) {
        j++;
        while (j < n) {
          const t = sql.charCodeAt(j);
          if (!(isIdentStart(t) || isDigit(t))) break;
          j++;
        }
      }
      if (j < n && sql.charCodeAt(j) === C.DOLLAR) {
        const tag = sql.slice(i, j + 1);
        const close = sql.indexOf(tag, j + 1);
        if (close < 0) {
          push('unterminated-string', i, n);
          i = n;
        } else {
          push('string', i, close + tag.length);
          i = close + tag.length;
        }
        continue;
      }
      push('unknown', i, i + 1);
      i++;
      continue;
    }

    // ---- numbers ----
    if (isDigit(c) || (c === C.DOT && isDigit(next))) {
      i = number(i);
      continue;
    }

    // ---- words ----
    if (isIdentStart(c) || (c === C.DOLLAR && !pg)) {
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      push(isSqlKeyword(sql, i, j) ? 'keyword' : 'identifier', i, j);
      i = j;
      continue;
    }

    // ---- placeholders ----
    if (c === C.QUESTION && !pg) {
      // mysql2 formats `?` as a value and `??` as an identifier.
      const end = next === C.QUESTION ? i + 2 : i + 1;
      push('placeholder', i, end);
      i = end;
      continue;
    }
    if (c === C.COLON) {
      if (next === C.COLON) {
        push('operator', i, i + 2); // PostgreSQL cast
        i += 2;
        continue;
      }
      if (isIdentStart(next)) {
        let j = i + 2;
        while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
        push('placeholder', i, j);
        i = j;
        continue;
      }
    }

    // ---- single-character structure ----
    if (c === C.COLON) {
      // PostgreSQL array slice a[1:2]; MySQL := assignment.
      const end = pg ? i + 1 : mySqlOperatorEnd(i);
      push('operator', i, end);
      i = end;
      continue;
    }
    if (c === C.SEMI) {
      push('terminator', i, i + 1);
      i++;
      continue;
    }
    if (
      c === C.LPAREN ||
      c === C.RPAREN ||
      c === C.COMMA ||
      c === C.DOT ||
      c === C.LBRACKET ||
      c === C.RBRACKET ||
      c === C.LBRACE ||
      c === C.RBRACE
    ) {
      push('punctuation', i, i + 1);
      i++;
      continue;
    }

    // ---- operators ----
    if (pg ? isPgOperatorChar(c) : isMySqlOperatorChar(c)) {
      const end = pg ? pgOperatorEnd(i) : mySqlOperatorEnd(i);
      push('operator', i, end);
      i = end;
      continue;
    }

    push('unknown', i, i + 1);
    i++;
  }
  return tokens;

  // ---- helpers that move `i` (declared after the loop, hoisted) ----

  function lineComment(start: number): number {
    // PostgreSQL ends a line comment at \n or \r, MySQL only at \n; the newline itself is whitespace.
    let j = start;
    while (j < n) {
      const t = sql.charCodeAt(j);
      if (t === C.LF || (pg && t === C.CR)) break;
      j++;
    }
    push('comment', start, j);
    return j;
  }

  function blockComment(start: number): void {
    let depth = 1;
    let j = start + 2;
    while (j < n) {
      const t = sql.charCodeAt(j);
      if (t === C.STAR && j + 1 < n && sql.charCodeAt(j + 1) === C.SLASH) {
        j += 2;
        if (--depth === 0) {
          push('comment', start, j);
          i = j;
          return;
        }
        continue;
      }
      // Only PostgreSQL nests block comments.
      if (pg && t === C.SLASH && j + 1 < n && sql.charCodeAt(j + 1) === C.STAR) {
        depth++;
        j += 2;
        continue;
      }
      j++;
    }
    push('unterminated-comment', start, n);
    i = n;
  }

  function number(start: number): number {
    let j = start;
    const c0 = sql.charCodeAt(j);
    const c1 = j + 1 < n ? sql.charCodeAt(j + 1) & ~0x20 : -1;
    let radix = false;
    if (c0 === C.D0 && (c1 === C.UPPER_X || c1 === C.UPPER_B || (pg && c1 === C.UPPER_O))) {
      // 0x1F, 0b101, 0o17 (the last only in PostgreSQL). Needs at least one digit, else it is `0` + a word.
      const ok = c1 === C.UPPER_X ? isHexDigit : c1 === C.UPPER_B ? isBinDigit : isOctDigit;
      let k = j + 2;
      while (k < n && ok(sql.charCodeAt(k))) k++;
      if (k > j + 2) {
        j = k;
        radix = true;
      }
    }
    let plainInteger = !radix;
    if (!radix) {
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      if (j < n && sql.charCodeAt(j) === C.DOT) {
        // `1..2` is not a decimal (PostgreSQL uses `..` in ranges); `1.` and `1.5` are.
        if (!(j + 1 < n && sql.charCodeAt(j + 1) === C.DOT)) {
          plainInteger = false;
          j++;
          while (j < n && isDigit(sql.charCodeAt(j))) j++;
        }
      }
      if (j < n && (sql.charCodeAt(j) | 0x20) === 101 /* e */) {
        let k = j + 1;
        const s = k < n ? sql.charCodeAt(k) : -1;
        if (s === C.PLUS || s === C.MINUS) k++;
        if (k < n && isDigit(sql.charCodeAt(k))) {
          while (k < n && isDigit(sql.charCodeAt(k))) k++;
          j = k;
          plainInteger = false;
        }
      }
    }
    // MySQL identifiers may start with digits: `1abc` and `0xZZ` are one identifier there. PostgreSQL reads
    // the number and then rejects the word as "trailing junk" (older releases took it as an alias); either
    // way the next iteration emits the word as a token of its own.
    if (!pg && (plainInteger || radix) && j < n && isIdentPart(sql.charCodeAt(j))) {
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      push('identifier', start, j);
      return j;
    }
    push('number', start, j);
    return j;
  }

  /**
   * PostgreSQL's own rule: an operator is the longest run of operator characters, cut before `--` or `/*`;
   * a multi-character operator may not end in + or - unless it contains one of ~ ! @ # % ^ & | ` ?
   * (so `=-1` is `=` then `-1`).
   *
   * Trimming the trailing + and - means the next token starts inside the same run. To stay linear, the run
   * is scanned once (from its first character) and what the rule needs is kept: where it ends, the last
   * "special" character and the last character other than + or -. Any later start inside the run has the
   * same end (a cut at `--` or `/*` would have been taken as a comment by the main loop), so its operator
   * is found in O(1): 20,000 `+` are one scan, not 20,000.
   */
  function pgOperatorEnd(start: number): number {
    if (start < run.start || start >= run.end) scanPgOperatorRun(start);
    const end = run.end;
    if (end - start <= 1 || run.lastSpecial >= start) return end;
    // Drop trailing + and -, keeping at least one character.
    return Math.max(start + 1, run.lastOther + 1);
  }

  function scanPgOperatorRun(start: number): void {
    let j = start;
    let lastSpecial = -1;
    let lastOther = -1;
    while (j < n) {
      const t = sql.charCodeAt(j);
      if (!isPgOperatorChar(t)) break;
      if (j > start) {
        const nx = j + 1 < n ? sql.charCodeAt(j + 1) : -1;
        if ((t === C.MINUS && nx === C.MINUS) || (t === C.SLASH && nx === C.STAR)) break;
      }
      if (isPgSpecialOperatorChar(t)) lastSpecial = j;
      if (t !== C.PLUS && t !== C.MINUS) lastOther = j;
      j++;
    }
    run.start = start;
    run.end = j;
    run.lastSpecial = lastSpecial;
    run.lastOther = lastOther;
  }

  function mySqlOperatorEnd(start: number): number {
    const candidates = MYSQL_MULTI_OPERATORS_BY_FIRST[sql.charCodeAt(start)];
    if (candidates !== undefined) {
      for (const op of candidates) if (sql.startsWith(op, start)) return start + op.length;
    }
    return start + 1;
  }
}

/** Characters that let a PostgreSQL operator end in + or - (`@-`, `|/-`). */
function isPgSpecialOperatorChar(c: number): boolean {
  switch (c) {
    case C.TILDE:
    case C.BANG:
    case C.AT:
    case C.HASH:
    case C.PERCENT:
    case C.CARET:
    case C.AMP:
    case C.PIPE:
    case C.BACKTICK:
    case C.QUESTION:
      return true;
    default:
      return false;
  }
}

function isBinDigit(c: number): boolean {
  return c === C.D0 || c === C.D1;
}

function isOctDigit(c: number): boolean {
  return c >= C.D0 && c <= C.D7;
}

/**
 * Offsets of a comment token's text without its delimiters (`--`, `#`, `/*`, `*\/`). For an unterminated
 * block comment the content runs to the end.
 */
export function commentContent(sql: string, token: SqlToken): { start: number; end: number } {
  const c = sql.charCodeAt(token.start);
  if (c === C.HASH) return { start: token.start + 1, end: token.end };
  if (c === C.MINUS) return { start: token.start + 2, end: token.end };
  const closed = token.type === 'comment' && token.end - token.start >= 4;
  return { start: token.start + 2, end: closed ? token.end - 2 : token.end };
}

/**
 * How the text of a `string` / `quoted-identifier` token is quoted: where its content starts and ends, the
 * quote character, and whether a backslash escapes the next character in it. Dollar-quoted strings have no
 * escapes at all (`quote` is -1).
 */
export interface LiteralQuoting {
  readonly contentStart: number;
  readonly contentEnd: number;
  readonly quote: number;
  readonly backslash: boolean;
}

export function literalQuoting(sql: string, token: SqlToken, dialect: SqlDialect): LiteralQuoting {
  const pg = dialect === 'postgres';
  const first = sql.charCodeAt(token.start);
  const closed = token.type === 'string' || token.type === 'quoted-identifier';
  if (first === C.DOLLAR) {
    const tagEnd = sql.indexOf('$', token.start + 1) + 1;
    const tagLength = tagEnd - token.start;
    return { contentStart: tagEnd, contentEnd: closed ? token.end - tagLength : token.end, quote: -1, backslash: false };
  }
  // Skip a prefix (E, X, B, N, U&) up to the opening quote.
  let open = token.start;
  while (open < token.end) {
    const c = sql.charCodeAt(open);
    if (c === C.SQUOTE || c === C.DQUOTE || c === C.BACKTICK) break;
    open++;
  }
  const quote = sql.charCodeAt(open);
  const backslash = pg
    ? quote === C.SQUOTE && (first | 0x20) === 101 /* E'..' */
    : quote !== C.BACKTICK && (first & ~0x20) !== C.UPPER_X && (first & ~0x20) !== C.UPPER_B;
  return { contentStart: open + 1, contentEnd: closed ? token.end - 1 : token.end, quote, backslash };
}

/** MySQL and MariaDB run the text of `/*! ... *\/` and `/*M! ... *\/` as SQL. */
export function isExecutableComment(sql: string, token: SqlToken, dialect: SqlDialect): boolean {
  if (dialect !== 'mysql' || sql.charCodeAt(token.start) !== C.SLASH) return false;
  const c = sql.charCodeAt(token.start + 2);
  return c === C.BANG || ((c === 77 || c === 109) /* M m */ && sql.charCodeAt(token.start + 3) === C.BANG);
}
