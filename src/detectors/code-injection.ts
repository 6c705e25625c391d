/**
 * Code injection: does a piece of request input change the token structure of JavaScript source that the
 * app hands to a compiler (`new Function`, `vm.*`)?
 *
 * Same criterion as SQL (Su & Wassermann): an occurrence confined to one literal — inside a string, a
 * template literal's text, a regex, a comment, or a whole number/string literal — is data: the code
 * concatenates instead of passing data, a `vulnerability`. An occurrence that spans tokens, closes or
 * opens a literal, a template substitution (`${`) or a comment, escapes a closing delimiter, or merges
 * with the app's own operator is code: an `attack`.
 *
 * Decisions:
 * - A whole arithmetic expression over number literals (`1 + 2 * (3 - 4) / 5 % 6 ** 2`, also with comparisons,
 *   `&&`/`||`/`!`, ternaries and bit operations: `(7 & 3) << 2 > 10 ? 1 : 0`) is data (reason `arithmetic`): without a name it cannot reach any binding, call anything or build a string, so it
 *   cannot do more than compute a number or throw. Calculator routes built on `new Function` are then
 *   reported, not broken. Anything with a name (`Math.max(1, 2)`) is code: names reach `constructor`.
 * - An input that is one whole identifier or keyword (`name`, `true`, `return`) is not reported: in
 *   compiled templates (ejs, lodash `_.template`, pug) the app's own code is full of such words, and a
 *   single name can read a binding but not call it. A whole single operator (`>=`) is a vulnerability.
 * - Inputs shorter than 2 characters are never judged; vulnerabilities need 3 (so `>=` alone is not reported). A number input is reported
 *   inside a string only as the string's whole content (`'42'`), never as a fragment (`'2042-01-01'`).
 * - Per input: every attacking occurrence (up to 8), else its first data occurrence once.
 *
 * Cost: `indexOf` per distinct input value; the source is tokenized at most once per call, only when some
 * input occurs in it; occurrences are enumerated linearly (occurrences.ts) and mapped to tokens by binary search; tables of
 * comments are built lazily. Linear in source length plus total input length.
 */

import type { CodeEvent, UserInput } from '../events.js';
import type { Detector, Finding, FindingKind } from './types.js';
import { tokenizeJs, type JsScan, type JsToken, type JsTokenType } from '../grammar/js-tokenizer.js';
import { forEachOccurrence, isNumericText, lastAtOrBefore } from '../grammar/occurrences.js';
import { isCoincidence } from './coincidence.js';

export type CodeAttackReason = 'spans-tokens' | 'breaks-literal' | 'template-substitution' | 'comment' | 'unterminated' | 'escapes-delimiter' | 'source-in-input';
export type CodeVulnerabilityReason = 'literal' | 'number' | 'arithmetic' | 'regex' | 'operator' | 'in-comment';

const DETECTOR_ID = 'code-injection';
const MIN_INPUT_LENGTH = 2;
const MIN_VULNERABILITY_LENGTH = 3;
const MAX_ATTACKS_PER_INPUT = 8;
/** Arithmetic spans longer than this many tokens are judged as plain spans. */
const MAX_ARITHMETIC_TOKENS = 64;

interface Verdict {
  readonly kind: FindingKind;
  readonly reason: CodeAttackReason | CodeVulnerabilityReason;
}

// Verdicts are shared constants: classify() runs once per occurrence and should not allocate.
const ATTACK: Readonly<Record<CodeAttackReason, Verdict>> = {
  'spans-tokens': { kind: 'attack', reason: 'spans-tokens' },
  'breaks-literal': { kind: 'attack', reason: 'breaks-literal' },
  'template-substitution': { kind: 'attack', reason: 'template-substitution' },
  comment: { kind: 'attack', reason: 'comment' },
  unterminated: { kind: 'attack', reason: 'unterminated' },
  'escapes-delimiter': { kind: 'attack', reason: 'escapes-delimiter' },
  'source-in-input': { kind: 'attack', reason: 'source-in-input' },
};
const DATA: Readonly<Record<CodeVulnerabilityReason, Verdict>> = {
  literal: { kind: 'vulnerability', reason: 'literal' },
  number: { kind: 'vulnerability', reason: 'number' },
  arithmetic: { kind: 'vulnerability', reason: 'arithmetic' },
  regex: { kind: 'vulnerability', reason: 'regex' },
  operator: { kind: 'vulnerability', reason: 'operator' },
  'in-comment': { kind: 'vulnerability', reason: 'in-comment' },
};
const attack = (reason: CodeAttackReason): Verdict => ATTACK[reason];
const data = (reason: CodeVulnerabilityReason): Verdict => DATA[reason];

const LITERALS: ReadonlySet<JsTokenType> = new Set(['string', 'template', 'regex']);
const UNTERMINATED: ReadonlySet<JsTokenType> = new Set(['unterminated-string', 'unterminated-template', 'unterminated-regex', 'unterminated-comment']);
/** Operators a calculator's expression may use: arithmetic, comparisons, logic, ternaries, bit operations. */
const ARITHMETIC: ReadonlySet<string> = new Set([
  '+', '-', '*', '/', '%', '**', '(', ')',
  '<', '>', '<=', '>=', '==', '!=', '===', '!==', '&&', '||', '??', '!', '?', ':',
  '~', '&', '|', '^', '<<', '>>', '>>>',
]);

interface Located {
  readonly kind: FindingKind;
  readonly reason: string;
  readonly start: number;
  readonly end: number;
}

export const codeInjection: Detector<CodeEvent> = {
  id: DETECTOR_ID,
  kinds: ['code'],
  detect(event: CodeEvent, inputs: readonly UserInput[]): Finding[] {
    const source = event.source;
    let program: Program | undefined;
    const seen = new Map<string, Located[]>();
    const attacks: Finding[] = [];
    const vulnerabilities: Finding[] = [];
    for (const input of inputs) {
      const value = input.value;
      if (value.length < MIN_INPUT_LENGTH || value.length > source.length) continue;
      let located = seen.get(value);
      if (located === undefined) {
        located = NONE;
        const first = source.indexOf(value);
        if (first >= 0) {
          program ??= new Program(source);
          located = judgeInput(program, value, first);
        }
        seen.set(value, located);
      }
      for (const l of located) {
        if (l.kind === 'vulnerability' && isCoincidence(input, false)) continue;
        const finding: Finding = { detector: DETECTOR_ID, kind: l.kind, input, start: l.start, end: l.end, reason: l.reason };
        (l.kind === 'attack' ? attacks : vulnerabilities).push(finding);
      }
    }
    if (attacks.length === 0) {
      const carried = sourceCarriedByInput(source, inputs);
      if (carried) attacks.push(carried);
    }
    return attacks.length === 0 ? vulnerabilities : attacks.concat(vulnerabilities);
  },
};

/** `Function` sources as V8 builds them: the body between the parameter list and the closing brace. */
const FUNCTION_SOURCE = /^(?:async )?function\*? anonymous\([^]*?\n\) \{\n([^]*)\n\}$/;
const MIN_CARRIED_SOURCE = 6;

/**
 * The reverse flow: the compiled source was cut out of a request input by something between the request and
 * the compiler (an expression evaluator such as mathjs reaching `Function` through `cos.constructor('…')`, a
 * template or a config loader). Source that contains a name is code the client wrote; pure arithmetic is data.
 */
function sourceCarriedByInput(source: string, inputs: readonly UserInput[]): Finding | undefined {
  const body = (FUNCTION_SOURCE.exec(source)?.[1] ?? source).trim();
  if (body.length < MIN_CARRIED_SOURCE) return undefined;
  for (const input of inputs) {
    if (input.value.length <= body.length || !input.value.includes(body)) continue;
    const names = tokenizeJs(body).tokens.filter((t) => t.type === 'identifier' || t.type === 'keyword');
    if (names.length === 0 || (names.length === 1 && body.startsWith('return'))) return undefined;
    const start = source.indexOf(body);
    return { detector: DETECTOR_ID, kind: 'attack', input, start, end: start + body.length, reason: 'source-in-input' };
  }
  return undefined;
}

const NONE: Located[] = [];

function judgeInput(program: Program, value: string, first: number): Located[] {
  const attacks: Located[] = [];
  let vulnerability: Located | undefined;
  const numeric = isNumericText(value);
  forEachOccurrence(program.source, value, first, (start) => {
    const end = start + value.length;
    const v = program.classify(start, end, numeric);
    if (v === undefined) return true;
    if (v.kind === 'attack') {
      attacks.push({ kind: 'attack', reason: v.reason, start, end });
      return attacks.length < MAX_ATTACKS_PER_INPUT;
    }
    if (vulnerability === undefined && value.length >= MIN_VULNERABILITY_LENGTH) vulnerability = { kind: 'vulnerability', reason: v.reason, start, end };
    return true;
  });
  if (attacks.length > 0) return attacks;
  return vulnerability === undefined ? NONE : [vulnerability];
}

/** The source, tokenized once, with the comment table built on first need. */
class Program {
  private readonly tokens: JsToken[];
  private readonly escapes: Uint8Array;
  private readonly starts: Int32Array;
  private commentsBefore: Int32Array | undefined;

  constructor(readonly source: string) {
    const scan: JsScan = tokenizeJs(source);
    this.tokens = scan.tokens;
    this.escapes = scan.escapes;
    this.starts = new Int32Array(this.tokens.length);
    for (let k = 0; k < this.tokens.length; k++) this.starts[k] = this.tokens[k]!.start;
  }

  classify(s: number, e: number, numeric: boolean): Verdict | undefined {
    let i0 = this.lastStartingAtOrBefore(s);
    if (i0 < 0 || this.tokens[i0]!.end <= s) i0++;
    const i1 = this.lastStartingAtOrBefore(e - 1);
    if (i0 >= this.tokens.length || i1 < i0) return undefined; // white space only
    const first = this.tokens[i0]!;
    const last = this.tokens[i1]!;
    // A trailing backslash that escapes the character after the input (a closing quote or backtick).
    if (this.escapes[e - 1] === 1) return attack('escapes-delimiter');
    if (i0 === i1) return this.classifyOne(first, s, e, numeric);

    if (UNTERMINATED.has(last.type)) return attack('unterminated');
    if (this.commentCount(i0, i1) > 0) return attack('comment');
    if (first.type === 'template' && s > first.start && this.source.startsWith('${', first.contentEnd)) return attack('template-substitution');
    if ((LITERALS.has(first.type) && s > first.start) || (LITERALS.has(last.type) && e < last.end)) return attack('breaks-literal');
    if (s <= first.start && e >= last.end && i1 - i0 < MAX_ARITHMETIC_TOKENS && this.isArithmetic(i0, i1)) return data('arithmetic');
    return attack('spans-tokens');
  }

  private classifyOne(t: JsToken, s: number, e: number, numeric: boolean): Verdict | undefined {
    const whole = s <= t.start && e >= t.end;
    switch (t.type) {
      case 'unterminated-string':
      case 'unterminated-template':
      case 'unterminated-regex':
      case 'unterminated-comment':
        return attack('unterminated');
      case 'string':
      case 'template':
      case 'regex': {
        const reason = t.type === 'regex' ? 'regex' : 'literal';
        if (whole) return t.type === 'template' && !this.isWholeTemplate(t) ? attack('template-substitution') : data(reason);
        if (s < t.contentStart || e > t.contentEnd) {
          // It writes the literal's delimiter: `${`/`}` of a substitution, or a quote the app did not write.
          return t.type === 'template' && (e > t.contentEnd ? this.source.startsWith('${', t.contentEnd) : this.source.charCodeAt(t.start) === 125)
            ? attack('template-substitution')
            : attack('breaks-literal');
        }
        if (numeric && (s > t.contentStart || e < t.contentEnd)) return undefined;
        return data(reason);
      }
      case 'comment':
        return s >= t.contentStart && e <= t.contentEnd ? data('in-comment') : attack('comment');
      case 'number':
        return whole ? data('number') : undefined;
      case 'punctuator':
        // Part of an operator: the input's characters merged with the app's (`=` + `=` → `==`, `/` + `*`).
        return whole ? data('operator') : attack('spans-tokens');
      case 'identifier':
      case 'keyword':
      case 'invalid':
        return undefined;
    }
  }

  /** A template token is one piece; it is a whole template literal only from `` ` `` to `` ` ``. */
  private isWholeTemplate(t: JsToken): boolean {
    return this.source.charCodeAt(t.start) === 96 && this.source.charCodeAt(t.end - 1) === 96 && t.end - t.start >= 2;
  }

  private isArithmetic(i0: number, i1: number): boolean {
    let depth = 0;
    let numbers = 0;
    for (let k = i0; k <= i1; k++) {
      const t = this.tokens[k]!;
      if (t.type === 'number') {
        numbers++;
        continue;
      }
      if (t.type !== 'punctuator') return false;
      const p = this.source.slice(t.start, t.end);
      if (!ARITHMETIC.has(p)) return false;
      if (p === '(') depth++;
      else if (p === ')' && --depth < 0) return false;
    }
    return depth === 0 && numbers > 0;
  }

  private commentCount(i0: number, i1: number): number {
    if (!this.commentsBefore) {
      const table = new Int32Array(this.tokens.length + 1);
      for (let k = 0; k < this.tokens.length; k++) table[k + 1] = table[k]! + (this.tokens[k]!.type === 'comment' ? 1 : 0);
      this.commentsBefore = table;
    }
    return this.commentsBefore[i1 + 1]! - this.commentsBefore[i0]!;
  }

  private lastStartingAtOrBefore(pos: number): number {
    return lastAtOrBefore(this.starts, pos);
  }
}
