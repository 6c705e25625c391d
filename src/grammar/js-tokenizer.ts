/**
 * A small, linear JavaScript tokenizer: just enough of the lexical grammar to tell, for any span of source,
 * which tokens it touches. It never fails: text it cannot lex becomes an `invalid` token, and a literal or
 * comment without its closing delimiter becomes an `unterminated-*` token that runs to the end of input.
 *
 * Covered: strings with escapes and line continuations, template literals with `${ … }` nested to any
 * depth (a brace stack tells a `}` that resumes a template from one that closes a block), `//`, `/* *\/`,
 * hashbang and Annex B HTML-like comments (`<!--` anywhere, `-->` at the start of a line: `Function` bodies
 * and `vm` scripts are sloppy scripts, where V8 honours both), regular expressions (with classes and flags),
 * numbers (hex/octal/binary, separators, exponents, BigInt), identifiers with Unicode and `\u` escapes,
 * private names, keywords and every punctuator by longest match.
 *
 * Regex or division: a `/` starts a regular expression where an expression may begin — at the start, after
 * an operator or opening punctuator, after a keyword that takes an operand (`return`, `typeof`, `case`…) —
 * and is division after a value (identifier, literal, `)`, `]`, `}`). The known misreadings (`if (x) /re/`,
 * a regex after a block's `}`) only change how the app's own code is split, never whether an input that
 * spans several tokens does. A "regex" that does not close on its line is re-read as division, and no other
 * regex is then tried on that line (this keeps the scan linear).
 */

import { spendWork } from './work-budget.js';

export type JsTokenType =
  | 'string'
  | 'template'
  | 'regex'
  | 'comment'
  | 'number'
  | 'identifier'
  | 'keyword'
  | 'punctuator'
  | 'unterminated-string'
  | 'unterminated-template'
  | 'unterminated-regex'
  | 'unterminated-comment'
  | 'invalid';

export interface JsToken {
  readonly type: JsTokenType;
  readonly start: number;
  readonly end: number;
  /**
   * The part between the delimiters of a literal or comment (`'…'`, `` `…${ ``, `}…` ``, `/…/`, `/*…*\/`);
   * equal to [start, end) for other tokens. A regex's flags lie after `contentEnd`.
   */
  readonly contentStart: number;
  readonly contentEnd: number;
}

export interface JsScan {
  readonly tokens: JsToken[];
  /** 1 where a backslash inside a literal escapes the character after it. */
  readonly escapes: Uint8Array;
}

const KEYWORDS: ReadonlySet<string> = new Set([
  'await', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do',
  'else', 'enum', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in',
  'instanceof', 'let', 'new', 'null', 'of', 'return', 'static', 'super', 'switch', 'this', 'throw', 'true',
  'try', 'typeof', 'var', 'void', 'while', 'with', 'yield', 'async', 'get', 'set',
]);

/** Keywords after which an expression (and so a regex) may start. */
const OPERAND_KEYWORDS: ReadonlySet<string> = new Set([
  'await', 'case', 'delete', 'do', 'else', 'extends', 'in', 'instanceof', 'new', 'of', 'return', 'throw',
  'typeof', 'void', 'yield',
]);

/** Punctuators longer than one character, longest first within each length. */
const PUNCTUATORS_4 = ['>>>='];
const PUNCTUATORS_3 = ['...', '===', '!==', '**=', '<<=', '>>=', '>>>', '&&=', '||=', '??='];
const PUNCTUATORS_2 = [
  '=>', '==', '!=', '<=', '>=', '&&', '||', '??', '?.', '++', '--', '+=', '-=', '*=', '/=', '%=', '&=', '|=',
  '^=', '<<', '>>', '**',
];
const SINGLE_PUNCTUATORS = '{}()[];,<>+-*/%&|^!~?:=.@#';
/** Multi-character punctuators by their first char code, longest first: one lookup per token, not a scan of all 33. */
const MULTI_PUNCTUATORS_BY_FIRST: (string[] | undefined)[] = [];
for (const p of [...PUNCTUATORS_4, ...PUNCTUATORS_3, ...PUNCTUATORS_2]) (MULTI_PUNCTUATORS_BY_FIRST[p.charCodeAt(0)] ??= []).push(p);
const SINGLE_PUNCTUATOR = new Uint8Array(128);
for (const ch of SINGLE_PUNCTUATORS) SINGLE_PUNCTUATOR[ch.charCodeAt(0)] = 1;

const enum C {
  Tab = 9,
  LF = 10,
  VT = 11,
  FF = 12,
  CR = 13,
  Space = 32,
  Bang = 33,
  DQuote = 34,
  Hash = 35,
  Dollar = 36,
  SQuote = 39,
  Star = 42,
  Dash = 45,
  Dot = 46,
  Slash = 47,
  Zero = 48,
  Nine = 57,
  Less = 60,
  Greater = 62,
  Backslash = 92,
  LBracket = 91,
  RBracket = 93,
  Underscore = 95,
  Backtick = 96,
  LBrace = 123,
  RBrace = 125,
  LS = 0x2028,
  PS = 0x2029,
}

function isLineTerminator(c: number): boolean {
  return c === C.LF || c === C.CR || c === C.LS || c === C.PS;
}

function isWhitespace(c: number): boolean {
  if (c === C.Space || c === C.Tab || c === C.VT || c === C.FF) return true;
  if (c < 0x80) return false;
  return c === 0xa0 || c === 0xfeff || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x3000;
}

function isDigit(c: number): boolean {
  return c >= C.Zero && c <= C.Nine;
}

/** Identifier characters; every non-ASCII character that is not white space or a line terminator counts. */
function isIdentifierPart(c: number): boolean {
  if (c < 0x80) {
    const l = c | 0x20;
    return (l >= 97 && l <= 122) || isDigit(c) || c === C.Dollar || c === C.Underscore || c === C.Backslash;
  }
  return !isWhitespace(c) && !isLineTerminator(c);
}

function isIdentifierStart(c: number): boolean {
  return isIdentifierPart(c) && !isDigit(c);
}

export function tokenizeJs(source: string): JsScan {
  const n = source.length;
  const tokens: JsToken[] = [];
  const escapes = new Uint8Array(n);
  /** One entry per open `{` (0) or `${` (1): a `}` that pops a 1 resumes the enclosing template. */
  const braces: number[] = [];
  let regexAllowed = true;
  let lineStart = true; // only white space and comments since the last line terminator (for `-->`)
  let noRegexBefore = 0;
  let i = 0;

  const push = (type: JsTokenType, start: number, end: number, contentStart = start, contentEnd = end): void => {
    tokens.push({ type, start, end, contentStart, contentEnd });
  };

  /** Scans a template piece whose body starts at `from`; `open` is where its opening delimiter starts. */
  const template = (open: number, from: number): void => {
    let k = from;
    while (k < n) {
      const c = source.charCodeAt(k);
      if (c === C.Backslash) {
        escapes[k] = 1;
        k += 2;
        continue;
      }
      if (c === C.Backtick) {
        push('template', open, k + 1, from, k);
        i = k + 1;
        regexAllowed = false;
        return;
      }
      if (c === C.Dollar && source.charCodeAt(k + 1) === C.LBrace) {
        push('template', open, k + 2, from, k);
        braces.push(1);
        i = k + 2;
        regexAllowed = true;
        return;
      }
      k++;
    }
    push('unterminated-template', open, n, from, n);
    i = n;
  };

  while (i < n) {
    spendWork();
    const c = source.charCodeAt(i);
    if (isWhitespace(c)) {
      i++;
      continue;
    }
    if (isLineTerminator(c)) {
      lineStart = true;
      i++;
      continue;
    }
    const start = i;
    const next = source.charCodeAt(i + 1);

    // ---- comments ----
    if ((c === C.Slash && next === C.Slash) || (c === C.Hash && next === C.Bang && i === 0) || (c === C.Less && source.startsWith('<!--', i)) || (lineStart && c === C.Dash && source.startsWith('-->', i))) {
      const open = c === C.Less ? 4 : c === C.Dash ? 3 : 2;
      let k = i + open;
      while (k < n && !isLineTerminator(source.charCodeAt(k))) k++;
      push('comment', start, k, start + open, k);
      i = k;
      continue;
    }
    if (c === C.Slash && next === C.Star) {
      const close = source.indexOf('*/', i + 2);
      if (close < 0) {
        push('unterminated-comment', start, n, start + 2, n);
        i = n;
        continue;
      }
      for (let k = i + 2; k < close; k++) if (isLineTerminator(source.charCodeAt(k))) lineStart = true;
      push('comment', start, close + 2, start + 2, close);
      i = close + 2;
      continue;
    }
    lineStart = false;

    // ---- literals ----
    if (c === C.SQuote || c === C.DQuote) {
      let k = i + 1;
      let closed = false;
      while (k < n) {
        const d = source.charCodeAt(k);
        if (d === c) {
          closed = true;
          break;
        }
        if (d === C.Backslash) {
          escapes[k] = 1;
          k += source.charCodeAt(k + 1) === C.CR && source.charCodeAt(k + 2) === C.LF ? 3 : 2;
          continue;
        }
        if (d === C.LF || d === C.CR) break;
        k++;
      }
      if (closed) push('string', start, k + 1, start + 1, k);
      else push('unterminated-string', start, Math.min(k, n), start + 1, Math.min(k, n));
      i = closed ? k + 1 : Math.min(k, n);
      regexAllowed = false;
      continue;
    }
    if (c === C.Backtick) {
      template(start, i + 1);
      continue;
    }
    if (c === C.RBrace && braces.length > 0 && braces[braces.length - 1] === 1) {
      braces.pop();
      template(start, i + 1);
      continue;
    }
    if (c === C.Slash && regexAllowed && i >= noRegexBefore) {
      const end = regexEnd(source, i, escapes);
      if (end > 0) {
        let k = end;
        while (k < n && isIdentifierPart(source.charCodeAt(k))) k++;
        push('regex', start, k, start + 1, end - 1);
        i = k;
        regexAllowed = false;
        continue;
      }
      // Not closed on its line: division after all (escapes marked by the attempt are cleared). No other
      // regex is tried on this line, so a line of unclosed `/[` cannot make the scan quadratic.
      noRegexBefore = lineEndFrom(source, i);
      escapes.fill(0, i, noRegexBefore);
    }
    if (isDigit(c) || (c === C.Dot && isDigit(next))) {
      i = numberEnd(source, i);
      push('number', start, i);
      regexAllowed = false;
      continue;
    }
    if (isIdentifierStart(c) || (c === C.Hash && isIdentifierStart(next))) {
      let k = i + 1;
      while (k < n && isIdentifierPart(source.charCodeAt(k))) k += source.charCodeAt(k) === C.Backslash ? 2 : 1;
      if (c === C.Backslash) k = Math.max(k, i + 2);
      k = Math.min(k, n);
      const word = source.slice(i, k);
      const keyword = c !== C.Hash && KEYWORDS.has(word);
      push(keyword ? 'keyword' : 'identifier', start, k);
      regexAllowed = keyword && OPERAND_KEYWORDS.has(word);
      i = k;
      continue;
    }

    // ---- punctuators ----
    const length = punctuatorLength(source, i);
    if (length === 0) {
      push('invalid', start, i + 1);
      i++;
      regexAllowed = true;
      continue;
    }
    if (length === 1) {
      if (c === C.LBrace) braces.push(0);
      else if (c === C.RBrace) braces.pop();
    }
    push('punctuator', start, i + length);
    regexAllowed = !(length === 1 && (c === 41 || c === C.RBracket || c === C.RBrace)) && !(length === 2 && (source.startsWith('++', i) || source.startsWith('--', i)));
    i += length;
  }
  return { tokens, escapes };
}

/** End (exclusive, after the closing `/`) of a regex body opened at `open`, or 0 when it does not close on its line. */
function regexEnd(source: string, open: number, escapes: Uint8Array): number {
  let inClass = false;
  for (let k = open + 1; k < source.length; k++) {
    const c = source.charCodeAt(k);
    if (isLineTerminator(c)) return 0;
    if (c === C.Backslash) {
      escapes[k] = 1;
      k++;
      if (k < source.length && isLineTerminator(source.charCodeAt(k))) return 0;
    } else if (c === C.LBracket) inClass = true;
    else if (c === C.RBracket) inClass = false;
    else if (c === C.Slash && !inClass) return k + 1;
  }
  return 0;
}

function lineEndFrom(source: string, from: number): number {
  let k = from;
  while (k < source.length && !isLineTerminator(source.charCodeAt(k))) k++;
  return k;
}

function numberEnd(source: string, from: number): number {
  const n = source.length;
  let k = from;
  const c = source.charCodeAt(k);
  const radix = c === C.Zero ? source.charCodeAt(k + 1) | 0x20 : 0;
  if (radix === 120 || radix === 111 || radix === 98) {
    // 0x… 0o… 0b…: letters and digits (hex digits include a-f)
    k += 2;
    while (k < n && isIdentifierPart(source.charCodeAt(k)) && source.charCodeAt(k) !== C.Backslash) k++;
    return k;
  }
  while (k < n && (isDigit(source.charCodeAt(k)) || source.charCodeAt(k) === C.Underscore)) k++;
  if (source.charCodeAt(k) === C.Dot) {
    k++;
    while (k < n && (isDigit(source.charCodeAt(k)) || source.charCodeAt(k) === C.Underscore)) k++;
  }
  if ((source.charCodeAt(k) | 0x20) === 101) {
    const sign = source.charCodeAt(k + 1);
    const digitAt = sign === 43 || sign === C.Dash ? k + 2 : k + 1;
    if (isDigit(source.charCodeAt(digitAt))) {
      k = digitAt;
      while (k < n && (isDigit(source.charCodeAt(k)) || source.charCodeAt(k) === C.Underscore)) k++;
    }
  }
  if (source.charCodeAt(k) === 110) k++; // BigInt suffix n
  return k;
}

function punctuatorLength(source: string, i: number): number {
  const candidates = MULTI_PUNCTUATORS_BY_FIRST[source.charCodeAt(i)];
  if (candidates !== undefined) {
    for (const p of candidates) {
      if (source.startsWith(p, i)) {
        // `?.5` is a conditional followed by a number, not optional chaining
        if (p === '?.' && isDigit(source.charCodeAt(i + 2))) return 1;
        return p.length;
      }
    }
  }
  return SINGLE_PUNCTUATOR[source.charCodeAt(i)] === 1 ? 1 : 0;
}
