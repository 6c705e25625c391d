/**
 * SQL injection: does a piece of request input change the token structure of the statement?
 *
 * Su & Wassermann (POPL 2006): input that reaches a query is harmless data when it stays inside one
 * syntactic leaf (a literal or an identifier); if it spans several tokens, or adds a comment, a statement
 * terminator, or a quote that ends a literal early, it is code. Without taint tracking we locate input by
 * substring search, so every occurrence of every request value in the statement is judged on its own.
 *
 * Cost: an input whose first two characters are no pair of the statement's is passed over with one bit test
 * (grammar/pairs.ts); any other is looked up with native `indexOf` (the usual answer is "not there", a few hundred ns);
 * the statement is tokenized at most once per call, and only when some input occurs; each occurrence is then
 * mapped to tokens by binary search. Helper tables (comment/terminator prefix counts, ORDER BY membership,
 * escape positions) are built lazily, once per call, in one pass each. No regular expressions.
 *
 * Decisions documented here:
 * - Matching is exact first; an input with no exact occurrence is then looked for case-insensitively (the
 *   statement is lower-cased once per call, only if needed). Apps lower-case usernames and emails before
 *   concatenating them, and a payload must not slip through because of that. Offsets stay aligned because
 *   the lower-cased text is used only when it has the same length as the original (else ASCII-only folding).
 * - Vulnerability noise: an input becomes a `vulnerability` finding only if it has at least
 *   `MIN_VULNERABILITY_LENGTH` (3) characters, and a number or word only when the occurrence is the *whole*
 *   token (so `?page=10` next to a hard-coded `LIMIT 10`, or `?q=user` inside the table name `users`, is
 *   not reported). A purely numeric input inside a string literal must be that literal's whole content
 *   (`'42'`), not a fragment (`'2042-01-01'`). Attacks are judged from 2 characters on.
 * - A lone keyword, placeholder or punctuation mark equal to the input is taken as a coincidence with the
 *   app's own SQL (a user searching for "select" against lower-case SQL), except a keyword inside an
 *   ORDER BY list (`?dir=desc`), which is reported as a vulnerability. So are exactly two whole keywords
 *   ("order by", "is null"); and the case-insensitive pass only runs for values with SQL punctuation.
 * - Benign structures that are reported as vulnerabilities, not attacks: an ORDER BY / GROUP BY /
 *   PARTITION BY list of columns with ASC/DESC/NULLS FIRST|LAST; a comma-separated list of whole literals
 *   (`1, 2, 3`, `'a','b'`); a signed number (`-5`).
 * - Per input: every attacking occurrence is reported (up to 8); if there is none, the first data occurrence
 *   is reported once as a vulnerability.
 */

import type { SinkEvent, SqlDialect, SqlEvent, UserInput } from '../events.js';
import { NO_FINDINGS, type Detector, type Finding, type FindingKind } from './types.js';
import { forEachOccurrence, isNumericText, lastAtOrBefore } from '../grammar/occurrences.js';
import { isCoincidence } from './coincidence.js';
import { pairsOf } from '../grammar/pairs.js';
import {
  commentContent,
  isExecutableComment,
  literalQuoting,
  tokenizeSql,
  type SqlToken,
  type SqlTokenType,
} from '../grammar/sql-tokenizer.js';

/** Attack reasons: the input changed the statement's structure. */
export type SqlAttackReason = 'spans-tokens' | 'breaks-literal' | 'comment' | 'terminator' | 'unterminated';
/** Vulnerability reasons: the input reached the statement verbatim but stayed one piece of data. */
export type SqlVulnerabilityReason =
  | 'literal'
  | 'number'
  | 'identifier'
  | 'order-by'
  | 'list'
  | 'operator'
  | 'in-comment';

const DETECTOR_ID = 'sql-injection';

/** Shorter inputs are never looked at (one character can match almost anywhere and cannot span tokens alone). */
const MIN_INPUT_LENGTH = 2;
/** See "Vulnerability noise" above. */
const MIN_VULNERABILITY_LENGTH = 3;
/** Enough to block and to show where; an input repeated hundreds of times adds nothing. */
const MAX_ATTACKS_PER_INPUT = 8;
/** Whitelisted structures (ORDER BY lists, literal lists) longer than this are judged as plain spans. */
const MAX_WHITELIST_TOKENS = 64;

interface Verdict {
  readonly kind: FindingKind;
  readonly reason: SqlAttackReason | SqlVulnerabilityReason;
}

interface Located {
  readonly kind: FindingKind;
  readonly reason: string;
  readonly start: number;
  readonly end: number;
}

// Verdicts are shared constants: classify() runs once per occurrence and should not allocate.
const ATTACK: Readonly<Record<SqlAttackReason, Verdict>> = {
  'spans-tokens': { kind: 'attack', reason: 'spans-tokens' },
  'breaks-literal': { kind: 'attack', reason: 'breaks-literal' },
  comment: { kind: 'attack', reason: 'comment' },
  terminator: { kind: 'attack', reason: 'terminator' },
  unterminated: { kind: 'attack', reason: 'unterminated' },
};
const DATA: Readonly<Record<SqlVulnerabilityReason, Verdict>> = {
  literal: { kind: 'vulnerability', reason: 'literal' },
  number: { kind: 'vulnerability', reason: 'number' },
  identifier: { kind: 'vulnerability', reason: 'identifier' },
  'order-by': { kind: 'vulnerability', reason: 'order-by' },
  list: { kind: 'vulnerability', reason: 'list' },
  operator: { kind: 'vulnerability', reason: 'operator' },
  'in-comment': { kind: 'vulnerability', reason: 'in-comment' },
};
const attack = (reason: SqlAttackReason): Verdict => ATTACK[reason];
const data = (reason: SqlVulnerabilityReason): Verdict => DATA[reason];

const QUOTED: ReadonlySet<SqlTokenType> = new Set(['string', 'quoted-identifier']);
const UNTERMINATED: ReadonlySet<SqlTokenType> = new Set([
  'unterminated-string',
  'unterminated-identifier',
  'unterminated-comment',
]);

export const sqlInjection: Detector<SqlEvent> = {
  id: DETECTOR_ID,
  kinds: ['sql'],
  detect(event: SqlEvent, inputs: readonly UserInput[]): readonly Finding[] {
    const sql = event.sql;
    let statement: Statement | undefined; // built on the first occurrence, shared by all inputs
    let folded: Folded | undefined; // lower-cased statement, built on the first exact miss
    let seen: Map<string, Located[]> | undefined; // the same value from several sources is judged once
    // Created at the first finding: most statements hold no input at all.
    let attacks: Finding[] | undefined;
    let vulnerabilities: Finding[] | undefined;

    const pairs = pairsOf(sql);
    for (const input of inputs) {
      const value = input.value;
      if (value.length < MIN_INPUT_LENGTH || value.length > sql.length || !pairs.mayHold(value)) continue;
      // A parameter name made of word characters cannot change a statement's structure, and a key that
      // equals a column (`?name=…` with `WHERE name = $1`) is not an unparameterised flow: nothing to judge.
      if (input.isKey === true && isWord(value)) continue;
      let located = seen?.get(value);
      if (located === undefined) {
        located = NONE;
        let text = sql;
        let needle = value;
        let first = sql.indexOf(value);
        if (first < 0 && searchedFolded(value)) {
          folded ??= foldCase(sql);
          text = folded.text;
          needle = foldedNeedle(value, folded);
          first = text.indexOf(needle);
        }
        if (first >= 0) {
          statement ??= new Statement(sql, event.dialect);
          located = judgeInput(statement, text, needle, first, value);
          (seen ??= new Map()).set(value, located);
        }
      }
      for (const l of located) {
        if (l.kind === 'vulnerability' && isCoincidence(input, l.reason === 'identifier')) continue;
        const finding: Finding = { detector: DETECTOR_ID, kind: l.kind, input, start: l.start, end: l.end, reason: l.reason, tokens: statement?.tokens };
        if (l.kind === 'attack') (attacks ??= []).push(finding);
        else (vulnerabilities ??= []).push(finding);
      }
    }
    return attacks === undefined ? (vulnerabilities ?? NO_FINDINGS) : vulnerabilities === undefined ? attacks : attacks.concat(vulnerabilities);
  },
  // The same tests `detect` puts a value to before judging it: a value they all turn away is never located.
  mayFind(event: SinkEvent, value: string, isKey: boolean): boolean {
    const sql = (event as SqlEvent).sql;
    if (value.length < MIN_INPUT_LENGTH || value.length > sql.length || (isKey && isWord(value))) return false;
    if (!pairsOf(sql).mayHold(value)) return false;
    if (sql.includes(value)) return true;
    if (!searchedFolded(value)) return false;
    const folded = foldCase(sql);
    return folded.text.includes(foldedNeedle(value, folded));
  },
};

/** Letters, digits and underscores only. */
function isWord(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95)) return false;
  }
  return true;
}

/** All occurrences of one input: its attacks, or else its first reportable data occurrence. */
function judgeInput(st: Statement, text: string, needle: string, first: number, value: string): Located[] {
  const attacks: Located[] = [];
  let vulnerability: Located | undefined;
  const numeric = isNumericText(value);
  forEachOccurrence(text, needle, first, (start) => {
    const end = start + needle.length;
    const v = st.classify(start, end, numeric);
    if (v !== undefined && v.kind === 'attack') {
      attacks.push({ kind: 'attack', reason: v.reason, start, end });
      return attacks.length < MAX_ATTACKS_PER_INPUT;
    }
    if (v !== undefined && vulnerability === undefined && value.length >= MIN_VULNERABILITY_LENGTH) {
      vulnerability = { kind: 'vulnerability', reason: v.reason, start, end };
    }
    // Overlapping occurrences of a repetitive value (256 KB of one letter in a 10 MB literal) that stay
    // inside the same token are judged the same: skip them instead of judging millions of them.
    return st.quietUntil(start, end);
  });
  if (attacks.length > 0) return attacks;
  return vulnerability === undefined ? [] : [vulnerability];
}

const NONE: Located[] = [];

interface Folded {
  readonly text: string;
  /** True when `text` is String#toLowerCase (Unicode); false when only ASCII letters were folded. */
  readonly unicode: boolean;
}

/**
 * The statement last folded, and its fold: an app runs the same statement text on every request of a route, and
 * a request value with punctuation and letters (its raw query string, a `keep-alive` header) asks for the fold at
 * each call. Statements longer than this are folded each time rather than kept alive between calls.
 */
const MAX_KEPT_FOLD = 4096;
let lastFoldedSql: string | undefined;
let lastFold: Folded | undefined;

function foldCase(sql: string): Folded {
  if (sql === lastFoldedSql) return lastFold!;
  const lower = sql.toLowerCase();
  // A few characters lower-case to two code units (U+0130): offsets would shift, so fold ASCII only then.
  const folded = lower.length === sql.length ? { text: lower, unicode: true } : { text: asciiLower(sql), unicode: false };
  if (sql.length <= MAX_KEPT_FOLD) {
    lastFoldedSql = sql;
    lastFold = folded;
  }
  return folded;
}

function asciiLower(s: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      out += s.slice(from, i) + String.fromCharCode(c + 32);
      from = i + 1;
    }
  }
  return from === 0 ? s : out + s.slice(from);
}

/** `s` has an ASCII character other than a letter, digit, underscore or whitespace (see shapeOf). */
const PUNCTUATION = 1;
/** `s` has an ASCII letter. */
const ASCII_LETTER = 2;
/** `s` has a character beyond ASCII (which may or may not have case). */
const NON_ASCII = 4;

/**
 * What a value is made of, in one pass. Only values with SQL punctuation are searched case-insensitively: a plain
 * phrase ("order by", "Select the best") found only after case folding is far more likely the app's own SQL than a
 * payload whose case the app changed; and only values with letters can have had their case changed.
 */
function shapeOf(s: string): number {
  let shape = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const lower = c | 0x20;
    if (c >= 0x80) shape |= NON_ASCII;
    else if (lower >= 97 && lower <= 122) shape |= ASCII_LETTER;
    else if (!(c === 95 || c === 32 || (c >= 9 && c <= 13) || (c >= 48 && c <= 57))) shape |= PUNCTUATION;
    // Enough to decide (the caller tells non-ASCII letters from uncased characters itself).
    if ((shape & PUNCTUATION) !== 0 && (shape & ASCII_LETTER) !== 0) break;
  }
  return shape;
}

/**
 * Whether a value missing from the statement as it is is looked for in the statement's case fold: a value with
 * punctuation and letters whose case the app may have changed before concatenating it. A value without letters
 * has no case to change, so the folding and its two copies are left out (see shapeOf for plain phrases).
 */
function searchedFolded(value: string): boolean {
  const shape = shapeOf(value);
  if ((shape & PUNCTUATION) === 0 || (shape & (ASCII_LETTER | NON_ASCII)) === 0) return false;
  return (shape & ASCII_LETTER) !== 0 || value.toLowerCase() !== value.toUpperCase();
}

/** The value as it is looked for in `folded`, folded the same way. */
function foldedNeedle(value: string, folded: Folded): string {
  const lowerValue = value.toLowerCase();
  return folded.unicode && lowerValue.length === value.length ? lowerValue : asciiLower(value);
}

/** The statement, tokenized once, with the tables built lazily from the tokens. */
class Statement {
  /** Shared with the findings, so building their span does not tokenize the statement again. */
  readonly tokens: readonly SqlToken[];
  private readonly starts: Int32Array;
  private commentsBefore: Int32Array | undefined;
  private terminatorsBefore: Int32Array | undefined;
  private orderList: Uint8Array | undefined;
  private escapeSecond: Uint8Array | undefined;
  private readonly endsUnterminated: boolean;

  constructor(
    private readonly sql: string,
    private readonly dialect: SqlDialect,
  ) {
    this.tokens = tokenizeSql(sql, dialect);
    this.starts = new Int32Array(this.tokens.length);
    for (let k = 0; k < this.tokens.length; k++) this.starts[k] = this.tokens[k]!.start;
    const last = this.tokens[this.tokens.length - 1];
    this.endsUnterminated = last !== undefined && UNTERMINATED.has(last.type);
  }

  /** Judge the occurrence [s, e). `numeric`: the input is a plain number (see the noise rules at the top). */
  classify(s: number, e: number, numeric: boolean): Verdict | undefined {
    // First token that ends after s, and last token that starts before e.
    let i0 = this.lastStartingAtOrBefore(s);
    if (i0 < 0 || this.tokens[i0]!.end <= s) i0++;
    const i1 = this.lastStartingAtOrBefore(e - 1);
    if (i0 >= this.tokens.length || i1 < i0) return undefined; // only whitespace
    const first = this.tokens[i0]!;
    const last = this.tokens[i1]!;
    if (i0 === i1) return this.classifyOne(first, s, e, numeric);

    if (UNTERMINATED.has(last.type)) return attack('unterminated');
    if (this.countIn(this.comments(), i0, i1) > 0) return attack('comment');
    if (this.countIn(this.terminators(), i0, i1) > 0) return attack('terminator');
    if ((QUOTED.has(first.type) && s > first.start) || (QUOTED.has(last.type) && e < last.end)) {
      return attack('breaks-literal');
    }
    if (i1 - i0 < MAX_WHITELIST_TOKENS) {
      const whole = s <= first.start && e >= last.end;
      if (whole && this.isSignedNumber(i0, i1)) return data('number');
      if (whole && this.isLiteralList(i0, i1)) return data('list');
      if (this.isOrderByList(i0, i1)) return data('order-by');
      // Two whole keywords and nothing else ("order by", "is null", "left join"): a user typing a phrase
      // that lower-case ORMs (knex) also write. Two keywords cannot form a tautology, a UNION or a new clause.
      if (whole && i1 === i0 + 1 && first.type === 'keyword' && last.type === 'keyword') return undefined;
    }
    return attack('spans-tokens');
  }

  /**
   * After a verdict other than an attack for [s, e), which lies in one token: the offset before which every
   * later occurrence of the same length would also lie inside that token's content, and so be judged no
   * attack and nothing new to report (only whole tokens are reported for words, numbers and keywords;
   * literals and comments report their first occurrence only). Returns s + 1 when nothing can be skipped:
   * operators (a part of one is an attack) and quotes of a visibly broken statement (escape positions matter).
   */
  quietUntil(s: number, e: number): number {
    const k = this.lastStartingAtOrBefore(s);
    const t = k < 0 ? undefined : this.tokens[k];
    if (t === undefined || s < t.start || e > t.end) return s + 1;
    const m = e - s;
    let until = s + 1;
    switch (t.type) {
      case 'number':
      case 'identifier':
      case 'keyword':
      case 'placeholder':
      case 'punctuation':
      case 'unknown':
        until = t.end - m + 1;
        break;
      case 'comment': {
        const content = commentContent(this.sql, t);
        if (s >= content.start && e <= content.end && !isExecutableComment(this.sql, t, this.dialect)) until = content.end - m + 1;
        break;
      }
      case 'string':
      case 'quoted-identifier': {
        const q = literalQuoting(this.sql, t, this.dialect);
        if (s >= q.contentStart && e <= q.contentEnd && (q.quote < 0 || !this.endsUnterminated)) until = q.contentEnd - m + 1;
        break;
      }
      default:
        break;
    }
    return Math.max(until, s + 1);
  }

  private classifyOne(t: SqlToken, s: number, e: number, numeric: boolean): Verdict | undefined {
    const whole = s <= t.start && e >= t.end;
    switch (t.type) {
      case 'unterminated-string':
      case 'unterminated-identifier':
      case 'unterminated-comment':
        return attack('unterminated');
      case 'terminator':
        return attack('terminator');
      case 'comment': {
        const content = commentContent(this.sql, t);
        if (s < content.start || e > content.end) return attack('comment'); // it opens or closes the comment
        return isExecutableComment(this.sql, t, this.dialect) ? attack('comment') : data('in-comment');
      }
      case 'string':
      case 'quoted-identifier': {
        if (this.shiftsQuotes(t, s, e)) return attack('breaks-literal');
        if (numeric && !whole) {
          const q = literalQuoting(this.sql, t, this.dialect);
          if (s > q.contentStart || e < q.contentEnd) return undefined;
        }
        return data(t.type === 'string' ? 'literal' : 'identifier');
      }
      case 'number':
        return whole ? data('number') : undefined;
      case 'identifier':
        return whole ? data('identifier') : undefined;
      case 'keyword':
        return whole && this.orderListFlags()[this.tokenIndex(t)] === 1 ? data('order-by') : undefined;
      case 'operator':
        // Part of an operator: the input's characters merged with the app's (`-` + app `-` = `--`, or
        // `*` + app `/` = `*/`), which changes what the app wrote.
        return whole ? data('operator') : attack('spans-tokens');
      case 'placeholder':
      case 'punctuation':
      case 'unknown':
        return undefined;
    }
  }

  // ---- token lookup ----

  private lastStartingAtOrBefore(pos: number): number {
    return lastAtOrBefore(this.starts, pos);
  }

  private tokenIndex(t: SqlToken): number {
    return this.lastStartingAtOrBefore(t.start);
  }

  private word(k: number): string {
    const t = this.tokens[k]!;
    return this.sql.slice(t.start, t.end).toUpperCase();
  }

  // ---- lazily built tables ----

  private comments(): Int32Array {
    return (this.commentsBefore ??= this.prefixCount('comment'));
  }

  private terminators(): Int32Array {
    return (this.terminatorsBefore ??= this.prefixCount('terminator'));
  }

  /** counts[k] = number of tokens of `type` among tokens[0, k). */
  private prefixCount(type: SqlTokenType): Int32Array {
    const counts = new Int32Array(this.tokens.length + 1);
    for (let k = 0; k < this.tokens.length; k++) counts[k + 1] = counts[k]! + (this.tokens[k]!.type === type ? 1 : 0);
    return counts;
  }

  private countIn(counts: Int32Array, i0: number, i1: number): number {
    return counts[i1 + 1]! - counts[i0]!;
  }

  /**
   * flags[k] = 1 when token k belongs to an ORDER BY / GROUP BY / PARTITION BY list made only of column
   * references, positions, commas, dots, ASC/DESC and NULLS FIRST/LAST. A user-chosen sort column and
   * direction is the most common identifier concatenation; it cannot add a subquery, function call,
   * expression or clause as long as it stays inside this grammar.
   */
  private orderListFlags(): Uint8Array {
    if (this.orderList !== undefined) return this.orderList;
    const flags = new Uint8Array(this.tokens.length);
    let inList = false;
    for (let k = 0; k < this.tokens.length; k++) {
      const t = this.tokens[k]!;
      if (inList && this.isOrderListToken(k)) {
        flags[k] = 1;
        continue;
      }
      inList = false;
      if (t.type === 'keyword' && k > 0 && this.tokens[k - 1]!.type === 'keyword' && this.word(k) === 'BY') {
        const before = this.word(k - 1);
        inList = before === 'ORDER' || before === 'GROUP' || before === 'PARTITION';
      }
    }
    return (this.orderList = flags);
  }

  private isOrderListToken(k: number): boolean {
    const t = this.tokens[k]!;
    switch (t.type) {
      case 'identifier':
      case 'quoted-identifier':
      case 'number':
        return true;
      case 'punctuation': {
        const c = this.sql.charCodeAt(t.start);
        return c === 44 /* , */ || c === 46 /* . */;
      }
      case 'keyword': {
        const w = this.word(k);
        return w === 'ASC' || w === 'DESC' || w === 'NULLS' || w === 'FIRST' || w === 'LAST';
      }
      default:
        return false;
    }
  }

  private isOrderByList(i0: number, i1: number): boolean {
    const flags = this.orderListFlags();
    for (let k = i0; k <= i1; k++) if (flags[k] !== 1) return false;
    return true;
  }

  /** `-5`, `+1.5`: a sign glued to a number. */
  private isSignedNumber(i0: number, i1: number): boolean {
    if (i1 !== i0 + 1) return false;
    const sign = this.tokens[i0]!;
    const num = this.tokens[i1]!;
    return this.isSign(sign) && num.type === 'number' && num.start === sign.end;
  }

  private isSign(t: SqlToken): boolean {
    if (t.type !== 'operator' || t.end - t.start !== 1) return false;
    const c = this.sql.charCodeAt(t.start);
    return c === 45 || c === 43;
  }

  /**
   * `1, 2, 3` or `'a', 'b'`: whole literals separated by commas (IN lists, ids chosen by the user). Commas
   * can only add values where the app already accepts a list; parentheses are not allowed, so no new row
   * or sub-expression can be opened.
   */
  private isLiteralList(i0: number, i1: number): boolean {
    let expectValue = true;
    let commas = 0;
    for (let k = i0; k <= i1; k++) {
      const t = this.tokens[k]!;
      if (expectValue) {
        if (this.isSign(t) && k < i1 && this.tokens[k + 1]!.type === 'number' && this.tokens[k + 1]!.start === t.end) k++;
        else if (t.type !== 'number' && t.type !== 'string') return false;
        expectValue = false;
      } else {
        if (t.type !== 'punctuation' || this.sql.charCodeAt(t.start) !== 44) return false;
        commas++;
        expectValue = true;
      }
    }
    return commas > 0 && !expectValue;
  }

  /**
   * For an occurrence inside the single quoted token `t`: did the input move the app's quotes?
   * - A dollar-quoted string has no escapes: an occurrence holding part of exactly one of its delimiters
   *   (`=$x` + the app's `$` closes `$x$...$x$` early) wrote that delimiter.
   * - Quotes are only judged when the statement ends unterminated, i.e. is visibly broken: then an input
   *   holding exactly one delimiter (`alice' ` closes the literal itself, so the app's closing quote opens a
   *   new one) or cutting an escape sequence in two (`alice'` + the app's `'` reads as an escaped quote,
   *   `alice\` escapes it in MySQL) made the literal run on over the app's SQL. In a well-formed statement
   *   the same shapes come from properly escaped values (`users'` inside '...users''...', or a value of
   *   only quotes), which stay data.
   */
  private shiftsQuotes(t: SqlToken, s: number, e: number): boolean {
    const q = literalQuoting(this.sql, t, this.dialect);
    const opening = s < q.contentStart;
    const closing = e > q.contentEnd;
    if (q.quote < 0) return opening !== closing;
    if (!this.endsUnterminated) return false;
    if (opening !== closing) return true;
    const second = (this.escapeSecond ??= this.buildEscapeTable());
    return second[s] === 1 || (e < second.length && second[e] === 1);
  }

  /** table[i] = 1 when sql[i] is the second character of an escape sequence inside a quoted literal. */
  private buildEscapeTable(): Uint8Array {
    const table = new Uint8Array(this.sql.length);
    for (const t of this.tokens) {
      if (!QUOTED.has(t.type) && t.type !== 'unterminated-string' && t.type !== 'unterminated-identifier') continue;
      const q = literalQuoting(this.sql, t, this.dialect);
      if (q.quote < 0) continue;
      for (let i = q.contentStart; i < q.contentEnd; i++) {
        const c = this.sql.charCodeAt(i);
        if ((q.backslash && c === 92) || (c === q.quote && i + 1 < q.contentEnd && this.sql.charCodeAt(i + 1) === q.quote)) {
          if (i + 1 < table.length) table[i + 1] = 1;
          i++;
        }
      }
    }
    return table;
  }
}
