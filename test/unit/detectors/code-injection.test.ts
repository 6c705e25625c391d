import { describe, expect, it } from 'vitest';
import { codeInjection } from '../../../src/detectors/code-injection.js';
import { tokenizeJs } from '../../../src/grammar/js-tokenizer.js';
import type { CodeEvent, UserInput } from '../../../src/events.js';
import type { Finding } from '../../../src/detectors/types.js';
import { readCorpus } from '../../helpers/corpus.js';

interface Case {
  route: string;
  payload: string;
}


const attacks = readCorpus<Case>('code-injection.attack.jsonl');
const benign = readCorpus<Case>('code-injection.benign.jsonl');

/** What hooks/function.ts judges for `new Function(...params, body)`. */
const fn = (body: string, params = '', prefix = 'function') => `${prefix} anonymous(${params}\n) {\n${body}\n}`;

/** The source each route of test/fixtures/apps/code-app.cjs compiles, as the hooks see it. */
const ROUTES: Record<string, (q: string) => string> = {
  calc: (q) => fn('return (' + q + ')'),
  'calc-call': (q) => fn('return ' + q),
  quote: (q) => fn("return 'Dear " + q + ", welcome'"),
  greet: (q) => '`Hello ' + q + '`',
  filter: (q) => fn('return x > ' + q, 'x'),
  script: (q) => 'result = ' + q,
  'this-context': (q) => '(' + q + ')',
  'in-context': (q) => 'total * ' + q,
  compile: (q) => fn('return a * ' + q, 'a'),
  async: (q) => fn('return ' + q, '', 'async function'),
  generator: (q) => fn('yield ' + q, '', 'function*'),
  ctor: (q) => fn('return ' + q),
  json: (q) => fn('return ' + JSON.stringify(q)),
};

const input = (value: string, path = 'query.q'): UserInput => ({ source: 'query', path, value });
const event = (source: string): CodeEvent => ({ kind: 'code', op: 'Function', source });
const detect = (source: string, ...values: string[]): readonly Finding[] => codeInjection.detect(event(source), values.map((v) => input(v)));
const verdictOf = (source: string, value: string): string | undefined => {
  const f = detect(source, value)[0];
  return f && `${f.kind}:${f.reason}`;
};
const tokens = (source: string): string[] => tokenizeJs(source).tokens.map((t) => `${t.type}:${source.slice(t.start, t.end)}`);

describe('js tokenizer', () => {
  it('splits punctuators by longest match, numbers, identifiers and keywords', () => {
    expect(tokens('a >>>= b ?? c?.d ... 0x1F 1_000 .5e-3 10n #p x?.5:1')).toEqual([
      'identifier:a', 'punctuator:>>>=', 'identifier:b', 'punctuator:??', 'identifier:c', 'punctuator:?.', 'identifier:d',
      'punctuator:...', 'number:0x1F', 'number:1_000', 'number:.5e-3', 'number:10n', 'identifier:#p', 'identifier:x',
      'punctuator:?', 'number:.5', 'punctuator::', 'number:1',
    ]);
    expect(tokens('return typeof x')).toEqual(['keyword:return', 'keyword:typeof', 'identifier:x']);
    expect(tokens('\\u0061bc ünï')).toEqual(['identifier:\\u0061bc', 'identifier:ünï']);
  });

  it('reads strings with escapes and line continuations, and stops unterminated ones at the line end', () => {
    expect(tokens(`'it\\'s' + "a\\"b" + 'c\\\nd'`)).toEqual([`string:'it\\'s'`, 'punctuator:+', 'string:"a\\"b"', 'punctuator:+', `string:'c\\\nd'`]);
    expect(tokens("'open\nx")).toEqual(["unterminated-string:'open", 'identifier:x']);
  });

  it('reads template literals with nested substitutions and braces', () => {
    expect(tokens('`a ${ {b: `c${d}`}.b } e`')).toEqual([
      'template:`a ${', 'punctuator:{', 'identifier:b', 'punctuator::', 'template:`c${', 'identifier:d', 'template:}`',
      'punctuator:}', 'punctuator:.', 'identifier:b', 'template:} e`',
    ]);
    expect(tokens('`no end')).toEqual(['unterminated-template:`no end']);
  });

  it('tells regex from division by the previous token', () => {
    expect(tokens('a / b / c')).toEqual(['identifier:a', 'punctuator:/', 'identifier:b', 'punctuator:/', 'identifier:c']);
    expect(tokens('x = /[/]a\\/b/gi.test(y)')).toEqual(['identifier:x', 'punctuator:=', 'regex:/[/]a\\/b/gi', 'punctuator:.', 'identifier:test', 'punctuator:(', 'identifier:y', 'punctuator:)']);
    expect(tokens('return /re/')).toEqual(['keyword:return', 'regex:/re/']);
    expect(tokens('(a) / 2')).toEqual(['punctuator:(', 'identifier:a', 'punctuator:)', 'punctuator:/', 'number:2']);
    // A "regex" that does not close on its line is division.
    expect(tokens('x = / 2')).toEqual(['identifier:x', 'punctuator:=', 'punctuator:/', 'number:2']);
  });

  it('reads every comment form, including the HTML-like ones of sloppy scripts', () => {
    expect(tokens('#!/usr/bin/env node\na // b\n/* c\n*/ --> d\ne <!-- f')).toEqual([
      'comment:#!/usr/bin/env node', 'identifier:a', 'comment:// b', 'comment:/* c\n*/', 'comment:--> d', 'identifier:e', 'comment:<!-- f',
    ]);
    expect(tokens('a --> b')).toEqual(['identifier:a', 'punctuator:--', 'punctuator:>', 'identifier:b']);
    expect(tokens('/* open')).toEqual(['unterminated-comment:/* open']);
  });

  // Linear time on these shapes is checked by test/fuzz/complexity.test.ts (CPU time against size, no clock bound here).
  it('handles pathological input without throwing', () => {
    expect(tokenizeJs('/['.repeat(100_000)).tokens.length).toBeGreaterThan(0);
    expect(tokenizeJs('"' + '\\'.repeat(200_001)).tokens[0]?.type).toBe('unterminated-string');
    expect(tokenizeJs('`${'.repeat(50_000)).tokens.length).toBeGreaterThan(0);
    expect(Array.isArray(detect('x = ' + "'".repeat(100_000), "''"))).toBe(true);
    expect(Array.isArray(detect('a'.repeat(200_000), 'a'.repeat(1000)))).toBe(true);
  });
});

describe('code-injection: attack corpus', () => {
  it.each(attacks.map((a) => [a.route, a.payload] as const))('%s: %s is an attack', (route, payload) => {
    const value = payload.split('{{MARKER}}').join('/tmp/sg-marker-1');
    const source = ROUTES[route]!(value);
    const findings = detect(source, value);
    expect(findings[0]?.kind).toBe('attack');
    expect(source.slice(findings[0]!.start, findings[0]!.end)).toBe(value);
  });
});

describe('code-injection: benign corpus', () => {
  it.each(benign.map((b) => [b.route, b.payload] as const))('%s: %j is not an attack', (route, payload) => {
    expect(detect(ROUTES[route]!(payload), payload).filter((f) => f.kind === 'attack')).toEqual([]);
  });
});

describe('code-injection: verdicts', () => {
  const cases: Array<[string, string, string, string | undefined]> = [
    // [what, source, input, verdict]
    ['a number', fn('return 123'), '123', 'vulnerability:number'],
    ['arithmetic over numbers', fn('return (1 + 2 * (3 - 4))'), '1 + 2 * (3 - 4)', 'vulnerability:arithmetic'],
    ['arithmetic that closes the app\'s parenthesis', fn('return (1) + (2)'), '1) + (2', 'attack:spans-tokens'],
    ['a call', fn('return Math.max(1, 2)'), 'Math.max(1, 2)', 'attack:spans-tokens'],
    ['a member access', fn('return a.constructor'), 'a.constructor', 'attack:spans-tokens'],
    ['a comma list', fn('return f(1, 2)'), '1, 2', 'attack:spans-tokens'],
    ['one whole identifier', fn('return name'), 'name', undefined],
    ['one keyword', fn('return this'), 'this', undefined],
    ['part of an identifier', fn('return username'), 'name', undefined],
    ['inside a string', fn("return 'Hello world'"), 'world', 'vulnerability:literal'],
    ['a whole string literal', fn("return 'abc'"), "'abc'", 'vulnerability:literal'],
    ['closes a string', fn("return 'a' + b + ''"), "a' + b + '", 'attack:breaks-literal'],
    ['a trailing backslash escapes the closing quote', fn("return f('x\\', 'y')"), 'x\\', 'attack:escapes-delimiter'],
    ['an escaped quote inside the string', fn("return 'O\\'Brien'"), "O\\'Brien", 'vulnerability:literal'],
    ['inside template text', '`Hello world!`', 'world', 'vulnerability:literal'],
    ['opens a substitution', '`Hello ${x}`', '${x}', 'attack:template-substitution'],
    ['closes the template', '`Hello ` + x + ``', '` + x + `', 'attack:breaks-literal'],
    ['inside a regex', fn('return /abc+/.test(s)'), 'abc+', 'vulnerability:regex'],
    ['closes a regex', fn('return /a/.test(s) || /b/'), 'a/.test(s) || /b', 'attack:breaks-literal'],
    ['opens a line comment', fn('return 1 // x\n'), '1 // x', 'attack:comment'],
    ['inside a comment', fn('return 1 /* hello there */'), 'hello there', 'vulnerability:in-comment'],
    ['closes a comment', fn('/* a */ x /* b */'), 'a */ x /* b', 'attack:comment'],
    ['a whole operator', fn('return a !== b'), '!==', 'vulnerability:operator'],
    ['merges into the app\'s operator', fn('return a === b'), '==', 'attack:spans-tokens'],
    ['an unterminated literal', fn("return 'abc"), "'abc", 'attack:unterminated'],
    ['a number inside a date string', fn("return '2042-01-01'"), '2042', undefined],
    ['a number as the whole string', fn("return '2042'"), '2042', 'vulnerability:literal'],
    ['white space only', fn('return  1'), '  ', undefined],
  ];
  it.each(cases)('%s', (_what, source, value, expected) => {
    expect(verdictOf(source, value)).toBe(expected);
  });

  it('reports every attacking occurrence (up to 8), attacks first, offsets into the source', () => {
    const value = 'a+b';
    const source = fn('return [a+b, a+b, "a+b"]');
    const findings = detect(source, value, 'zzz');
    expect(findings.map((f) => f.kind)).toEqual(['attack', 'attack']);
    for (const f of findings) expect(source.slice(f.start, f.end)).toBe(value);
    expect(detect(fn('return [' + Array(20).fill('a+b').join(',') + ']'), value)).toHaveLength(8);
  });

  it('reports a data occurrence once, and never values shorter than 3 characters as vulnerabilities', () => {
    expect(detect("'abc' + 'abc'", 'abc')).toHaveLength(1);
    expect(detect("'ab'", 'ab')).toEqual([]);
    expect(detect(fn('return x'), 'x')).toEqual([]);
  });

  it('judges each distinct value once, reporting it for every input that carries it', () => {
    const source = fn('return 1; process.exit()');
    const findings = codeInjection.detect(event(source), [input('process.exit()', 'query.a'), input('process.exit()', 'body.b')]);
    expect(findings.map((f) => f.input?.path)).toEqual(['query.a', 'body.b']);
  });

  it('ignores inputs that do not occur or are longer than the source', () => {
    expect(detect('1 + 1', 'process')).toEqual([]);
    expect(detect('1', 'x'.repeat(10))).toEqual([]);
  });
});

describe('code-injection: calculator precision and source carried inside an input (issue #12 B.5)', () => {
  const fn = (body: string) => `function anonymous(\n) {\n${body}\n}`;
  const judge = (source: string, value: string) =>
    codeInjection.detect({ kind: 'code', op: 'Function', source }, [{ source: 'query', path: 'query.q', value }]).map((f) => `${f.kind}:${f.reason}`);

  it.each(['1 < 2 ? 3 : 4', '(7 & 3) << 2 > 10 || !0', '5 >= 5 && 3 !== 4', '~12 ^ 0xff | 1', '2 ** 10 >>> 1'])('%s typed into a calculator is data', (expr) => {
    expect(judge(fn(`return (${expr})`), expr)).toEqual(['vulnerability:arithmetic']);
  });

  it('a name in the expression is still code', () => {
    expect(judge(fn('return (1 < x ? 3 : 4)'), '1 < x ? 3 : 4')).toEqual(['attack:spans-tokens']);
  });

  it('source cut out of an input by an evaluator (mathjs cos.constructor) is an attack', () => {
    expect(judge(fn("return process.mainModule.require('fs')"), "cos.constructor(\"return process.mainModule.require('fs')\")()")).toEqual(['attack:source-in-input']);
  });

  it('arithmetic carried inside an input is not', () => {
    expect(judge(fn('return 1 + 2'), "f('return 1 + 2')")).toEqual([]);
  });
});
