import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { UserInput } from '../../src/events.js';
import type { Finding } from '../../src/detectors/types.js';
import { tokenizeSql, type SqlToken } from '../../src/grammar/sql-tokenizer.js';
import { scanShell, SyntaxClass } from '../../src/grammar/shell-tokenizer.js';
import { tokenizeJs } from '../../src/grammar/js-tokenizer.js';
import { forEachOccurrence } from '../../src/grammar/occurrences.js';
import { sqlInjection } from '../../src/detectors/sql-injection.js';
import { commandInjection } from '../../src/detectors/command-injection.js';
import { codeInjection } from '../../src/detectors/code-injection.js';
import { createPathTraversal } from '../../src/detectors/path-traversal.js';
import { ssrf } from '../../src/detectors/ssrf.js';
import { maskPayload, redactRanges, sanitizeSql, sanitizeUrl } from '../../src/telemetry/redact.js';
import { compilePattern, globMatch, normalizeText } from '../../src/rules/pattern.js';
import { codeEvent, execEvent, fsEvent, httpEvent, input, sqlEvent } from './shapes.js';

/**
 * Property-based tests over every tokenizer and detector: random text and grammar-aware text (fragments
 * of each language glued together: quotes, comments, parentheses and substitutions left unbalanced, lone
 * surrogates, NUL), asserting that nothing throws and that every result is well formed — tokens ordered,
 * non-overlapping and inside the text; findings with start ≤ end inside the sink text, naming one of the
 * inputs given. FUZZ_RUNS sets the number of cases per property (CI default 150; `npm run fuzz` runs more).
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const params = { numRuns: RUNS };

const oddChars = fc.constantFrom('\u0000', '\ud800', '\udc00', '\ud83d\ude00', '\u00e9', '\u0130', '\r', '\n', '\t', '\\', ' ');

/** Text made of fragments of a grammar plus odd characters, so unbalanced constructs meet each other. */
const grammarText = (fragments: readonly string[]): fc.Arbitrary<string> =>
  fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...fragments) }, { weight: 1, arbitrary: oddChars }, { weight: 1, arbitrary: fc.string({ maxLength: 4 }) }), { maxLength: 40 }).map((parts) => parts.join(''));

const anyText = (fragments: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(grammarText(fragments), fc.string({ maxLength: 60, unit: 'binary' }), fc.string({ maxLength: 60 }));

const SQL_FRAGMENTS = ['SELECT ', ' FROM t', ' WHERE ', "'", '"', '`', "''", '\\', '--', '-- ', '#', '/*', '*/', '/*!', '$$', '$a$', '$1', '?', '??', ':x', '::', '(', ')', ';', ',', '.', '+', '-', '=', '<=>', '||', '1', '0x1F', '1e5', 'E\'', "X'", "U&'", 'a', 'or', ' ', '\n'];
const SHELL_FRAGMENTS = ['echo ', 'sh -c ', 'eval ', 'bash -lc ', "'", '"', "$'", '\\', '$(', ')', '`', '${', '}', '$((', '))', '$[', ']', '$x', '$1', '$@', ';', '&', '&&', '||', '|', '|&', '(', '<(', '>', '2>', '>>', '<<', '<<-', '<<<', 'EOF', '\nEOF\n', '#', '*', '?', '[', '~', '{a,b}', '..', '/', '=', ' ', '\n', '\t'];
const JS_FRAGMENTS = ['`', '${', '}', "'", '"', '\\', '/', '/*', '*/', '//', '<!--', '-->', '#!', '(', ')', '[', ']', '{', '}', 'return ', 'x', '1', '0x1', '1n', '1_0', '=>', '=', '+', ';', '\n', ' ', '\\u{41}', '\\u0041', '#p', '.5', '?.', '??='];
const PATH_FRAGMENTS = ['/', '..', '../', '..\\', '\\', '.', 'a', 'etc', 'passwd', 'C:', '\\\\srv\\', 'file:', '%2e', '%2f', '\u0000', '....//', '~'];
const URL_FRAGMENTS = ['http://', 'https://', 'file://', '//', '@', ':', '[', ']', '::1', '127.0.0.1', '0x7f.1', '169.254.169.254', 'localhost', 'a.', '.', '/', '?', '#', '%', '%2e', 'user:pw@', '80', 'x', '\\'];

/** Inputs: pieces of the text itself (so they occur), plus random values. */
const withInputs = (text: fc.Arbitrary<string>): fc.Arbitrary<{ text: string; inputs: UserInput[] }> =>
  text.chain((t) =>
    fc
      .array(fc.oneof(fc.tuple(fc.nat(t.length), fc.nat(t.length)).map(([a, b]) => t.slice(Math.min(a, b), Math.max(a, b))), fc.string({ maxLength: 6 })), { maxLength: 6 })
      .map((values) => ({ text: t, inputs: values.map((v, k) => input(v, `k${k}`)) })),
  );

function expectTokens(tokens: readonly { start: number; end: number }[], length: number): void {
  let previousEnd = 0;
  for (const t of tokens) {
    expect(t.start).toBeGreaterThanOrEqual(previousEnd);
    expect(t.end).toBeGreaterThan(t.start);
    expect(t.end).toBeLessThanOrEqual(length);
    previousEnd = t.end;
  }
}

function expectFindings(findings: readonly Finding[], length: number, inputs: readonly UserInput[], detector: string): void {
  for (const f of findings) {
    expect(f.detector).toBe(detector);
    expect(f.kind === 'attack' || f.kind === 'vulnerability').toBe(true);
    expect(f.start).toBeGreaterThanOrEqual(0);
    expect(f.end).toBeGreaterThanOrEqual(f.start);
    expect(f.end).toBeLessThanOrEqual(length);
    expect(inputs).toContain(f.input);
    expect(typeof f.reason).toBe('string');
  }
}

describe('tokenizers never throw and produce ordered tokens inside the text', () => {
  for (const dialect of ['postgres', 'mysql'] as const) {
    it(`sql (${dialect})`, () => {
      fc.assert(
        fc.property(anyText(SQL_FRAGMENTS), (sql) => {
          const tokens: SqlToken[] = tokenizeSql(sql, dialect);
          expectTokens(tokens, sql.length);
          // Whitespace is the only thing between tokens.
          let cursor = 0;
          for (const t of tokens) {
            expect(sql.slice(cursor, t.start).trim().replace(/[\u000b\u000c]/g, '')).toBe('');
            cursor = t.end;
          }
        }),
        params,
      );
    });
  }

  it('shell: tokens ordered within each depth, per-character tables sized to the text', () => {
    fc.assert(
      fc.property(anyText(SHELL_FRAGMENTS), (cmd) => {
        const scan = scanShell(cmd);
        expect(scan.syntax.length).toBe(cmd.length);
        let previousStart = -1;
        for (const t of scan.tokens) {
          expect(t.start).toBeGreaterThanOrEqual(previousStart);
          expect(t.end).toBeGreaterThanOrEqual(t.start);
          expect(t.end).toBeLessThanOrEqual(cmd.length);
          expect(t.text).toBe(cmd.slice(t.start, t.end));
          for (const p of t.parts) {
            expect(p.start).toBeGreaterThanOrEqual(0);
            expect(p.end).toBeGreaterThanOrEqual(p.start);
            expect(p.end).toBeLessThanOrEqual(cmd.length);
          }
          previousStart = t.start;
        }
        let all = 0;
        for (let cls = 1; cls <= 8; cls++) all += scan.count(cls as Exclude<SyntaxClass, 0>, 0, cmd.length);
        expect(all).toBe(scan.syntax.filter((c) => c !== 0).length);
      }),
      params,
    );
  });

  it('js', () => {
    fc.assert(
      fc.property(anyText(JS_FRAGMENTS), (src) => {
        const { tokens } = tokenizeJs(src);
        expectTokens(tokens, src.length);
        for (const t of tokens) {
          expect(t.contentStart).toBeGreaterThanOrEqual(t.start);
          expect(t.contentEnd).toBeGreaterThanOrEqual(t.contentStart);
          expect(t.contentEnd).toBeLessThanOrEqual(t.end);
        }
      }),
      params,
    );
  });
});

describe('detectors never throw and report well-formed findings', () => {
  for (const dialect of ['postgres', 'mysql'] as const) {
    it(`sql-injection (${dialect})`, () => {
      fc.assert(
        fc.property(withInputs(anyText(SQL_FRAGMENTS)), ({ text, inputs }) => {
          expectFindings(sqlInjection.detect(sqlEvent(text, dialect), inputs), text.length, inputs, 'sql-injection');
        }),
        params,
      );
    });
  }

  it('command-injection (eval, sh -c and here-documents included)', () => {
    fc.assert(
      fc.property(withInputs(anyText(SHELL_FRAGMENTS)), ({ text, inputs }) => {
        expectFindings(commandInjection.detect(execEvent(text), inputs), text.length, inputs, 'command-injection');
      }),
      params,
    );
  });

  it('code-injection', () => {
    fc.assert(
      fc.property(withInputs(anyText(JS_FRAGMENTS)), ({ text, inputs }) => {
        expectFindings(codeInjection.detect(codeEvent(text), inputs), text.length, inputs, 'code-injection');
      }),
      params,
    );
  });

  for (const windows of [false, true]) {
    it(`path-traversal (${windows ? 'windows' : 'posix'})`, () => {
      const detector = createPathTraversal({ windows });
      fc.assert(
        fc.property(withInputs(anyText(PATH_FRAGMENTS)), ({ text, inputs }) => {
          expectFindings(detector.detect(fsEvent(text), inputs), text.length, inputs, 'path-traversal');
        }),
        params,
      );
    });
  }

  it('ssrf', () => {
    fc.assert(
      fc.property(withInputs(anyText(URL_FRAGMENTS)), ({ text, inputs }) => {
        expectFindings(ssrf.detect(httpEvent(text), inputs), text.length, inputs, 'ssrf');
      }),
      params,
    );
  });
});

describe('redaction and rule patterns never throw', () => {
  const ranges = (length: number): fc.Arbitrary<{ start: number; end: number }[]> =>
    fc.array(fc.tuple(fc.nat(length), fc.nat(length)).map(([a, b]) => ({ start: Math.min(a, b), end: Math.max(a, b) })), { maxLength: 5 });

  it('sanitizeSql keeps no character of a redacted range and never grows a range', () => {
    fc.assert(
      fc.property(anyText(SQL_FRAGMENTS).chain((sql) => fc.tuple(fc.constant(sql), ranges(sql.length), fc.constantFrom('postgres' as const, 'mysql' as const))), ([sql, rs, dialect]) => {
        const out = sanitizeSql(sql, dialect, rs);
        expect(typeof out).toBe('string');
        expect(out.length).toBeLessThanOrEqual(sql.length + 1 + 4096);
      }),
      params,
    );
  });

  it('redactRanges, sanitizeUrl and maskPayload', () => {
    fc.assert(
      fc.property(anyText(URL_FRAGMENTS).chain((url) => fc.tuple(fc.constant(url), ranges(url.length))), ([url, rs]) => {
        expect(typeof redactRanges(url, rs)).toBe('string');
        const clean = sanitizeUrl(url, rs);
        // No query value survives.
        const q = clean.indexOf('?');
        if (q >= 0) {
          const hash = clean.indexOf('#', q);
          for (const pair of clean.slice(q + 1, hash < 0 ? undefined : hash).split('&')) {
            const eq = pair.indexOf('=');
            if (eq >= 0) expect(pair.slice(eq + 1)).toBe('REDACTED');
          }
        }
        expect(maskPayload(url)).not.toMatch(/[A-Za-z0-9]/);
      }),
      params,
    );
  });

  it('rule patterns: normalizeText is idempotent and a glob matches itself', () => {
    fc.assert(
      fc.property(anyText(SQL_FRAGMENTS), fc.string({ maxLength: 20 }), (text, source) => {
        const once = normalizeText(text);
        expect(normalizeText(once)).toBe(once);
        expect(compilePattern('*').test(text)).toBe(true);
        const literal = normalizeText(source).replace(/[*?]/g, '');
        expect(globMatch(literal, literal)).toBe(true);
      }),
      params,
    );
  });
});

describe('occurrences', () => {
  it('forEachOccurrence visits exactly the overlapping occurrences indexOf finds one by one', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40, unit: fc.constantFrom('a', 'b', "'") }), fc.string({ minLength: 1, maxLength: 5, unit: fc.constantFrom('a', 'b', "'") }), (text, needle) => {
        const expected: number[] = [];
        for (let p = text.indexOf(needle); p >= 0; p = text.indexOf(needle, p + 1)) expected.push(p);
        const seen: number[] = [];
        const first = text.indexOf(needle);
        if (first >= 0) forEachOccurrence(text, needle, first, (p) => void seen.push(p));
        expect(seen).toEqual(expected);
      }),
      params,
    );
  });
});
