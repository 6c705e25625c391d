import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { tokenizeSql } from '../../../src/grammar/sql-tokenizer.js';
import { forEachOccurrence } from '../../../src/grammar/occurrences.js';
import { sqlInjection } from '../../../src/detectors/sql-injection.js';
import { commandInjection } from '../../../src/detectors/command-injection.js';
import { scanShell } from '../../../src/grammar/shell-tokenizer.js';
import { MAX_OPEN_CONSTRUCTS } from '../../../src/grammar/shell/scanner.js';
import { SyntaxClass } from '../../../src/grammar/shell/syntax.js';
import { normalizeText } from '../../../src/rules/pattern.js';
import { sanitizeUrl } from '../../../src/telemetry/redact.js';
import { execEvent, fill, input, sqlEvent } from '../../fuzz/shapes.js';

/**
 * The reproducers of issue #14, each as a test that failed on the old code. Work is counted in operations
 * (characters read, occurrences judged), not in time, so the tests cannot flake on a busy machine.
 */

const originalCharCodeAt = String.prototype.charCodeAt;
let charReads = 0;

/** Runs `fn` counting every String#charCodeAt call (the SQL tokenizer reads the statement only that way). */
function countCharReads(fn: () => void): number {
  charReads = 0;
  String.prototype.charCodeAt = function (this: string, index: number): number {
    charReads++;
    return originalCharCodeAt.call(this, index);
  };
  try {
    fn();
  } finally {
    String.prototype.charCodeAt = originalCharCodeAt;
  }
  return charReads;
}

afterEach(() => {
  String.prototype.charCodeAt = originalCharCodeAt;
});

/** The old PostgreSQL operator rule, applied from `start`: scan the run, then trim trailing + and -. */
function referencePgOperatorEnd(sql: string, start: number): number {
  const isOp = (c: string): boolean => '+-*/<>=~!@#%^&|`?'.includes(c);
  let j = start;
  while (j < sql.length && isOp(sql[j]!)) {
    if (j > start && ((sql[j] === '-' && sql[j + 1] === '-') || (sql[j] === '/' && sql[j + 1] === '*'))) break;
    j++;
  }
  if (j - start > 1 && !/[~!@#%^&|`?]/.test(sql.slice(start, j))) {
    while (j - start > 1 && (sql[j - 1] === '+' || sql[j - 1] === '-')) j--;
  }
  return j;
}

describe('issue #14: PostgreSQL operator runs', () => {
  it('tokenizes 20,000 + with a number of character reads linear in the length (was quadratic: 5.3 s)', () => {
    const value = `'${fill('+', 20_000)}'`;
    const sql = `SELECT * FROM t WHERE q = '${value}'`;
    let tokens: ReturnType<typeof tokenizeSql> = [];
    const reads = countCharReads(() => {
      tokens = tokenizeSql(sql, 'postgres');
    });
    // The old lexer re-scanned the rest of the run for every `+`: about 2 × 10^8 reads here.
    expect(reads).toBeLessThan(10 * sql.length);
    expect(tokens.filter((t) => t.type === 'operator' && sql[t.start] === '+')).toHaveLength(20_000);
    expect(tokens.every((t) => t.type !== 'operator' || t.end - t.start === 1)).toBe(true);
  });

  it('finds the same operators as the rule scanned from every start (random operator text)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30, unit: fc.constantFrom('+', '-', '*', '/', '<', '=', '@', '#', '|', '?', '1', ' ') }), (sql) => {
        for (const t of tokenizeSql(sql, 'postgres')) {
          if (t.type === 'operator' && sql[t.start] !== ':') expect(t.end).toBe(referencePgOperatorEnd(sql, t.start));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('the issue #14 JSON body is still judged an attack', () => {
    const value = `'${fill('+', 20_000)}'`;
    const findings = sqlInjection.detect(sqlEvent(`SELECT * FROM t WHERE q = '${value}'`, 'postgres'), [input(value)]);
    expect(findings[0]).toMatchObject({ kind: 'attack', reason: 'breaks-literal' });
  });
});

describe('issue #14: an input repeating one character', () => {
  it('judges a handful of the overlapping occurrences inside one literal, not every one of them', () => {
    // 256 KB of one letter inside a 10 MB literal took 0.7 s: every one of ~10 million occurrences was judged.
    // Scaled down; the count of indexOf calls is what grew with the literal.
    const literal = fill('a', 1_000_000);
    const sql = `SELECT * FROM t WHERE q = '${literal}'`;
    const value = fill('a', 25_000);
    const originalIndexOf = String.prototype.indexOf;
    let searches = 0;
    String.prototype.indexOf = function (this: string, ...args: Parameters<typeof originalIndexOf>): number {
      searches++;
      return originalIndexOf.apply(this, args);
    };
    let findings: ReturnType<typeof sqlInjection.detect> = [];
    let visits = 0;
    let reads = 0;
    try {
      // Tokenizing reads each character once; judging an occurrence reads a few more (its literal's quoting).
      reads = countCharReads(() => {
        findings = sqlInjection.detect(sqlEvent(sql, 'postgres'), [input(value)]);
      });
      // The finder itself: one visit that skips past the literal ends the walk (~975,000 visits without).
      forEachOccurrence(sql, value, sql.indexOf(value), () => (visits++, sql.length - value.length));
    } finally {
      String.prototype.indexOf = originalIndexOf;
    }
    expect(findings).toEqual([expect.objectContaining({ kind: 'vulnerability', reason: 'literal', start: 27, end: 27 + value.length })]);
    expect(searches).toBeLessThan(20);
    expect(reads).toBeLessThan(1.2 * sql.length); // judging all ~975,000 occurrences read 3 million
    expect(visits).toBe(1);
  });

  it('still reports an attack at a later occurrence outside the first token', () => {
    const sql = `SELECT '${fill('a', 1000)}' FROM t WHERE x = 'aaaa' OR 1=1 --'`;
    const findings = sqlInjection.detect(sqlEvent(sql, 'postgres'), [input("aaaa' OR 1=1 --")]);
    expect(findings[0]).toMatchObject({ kind: 'attack' });
    const repeated = sqlInjection.detect(sqlEvent(`SELECT '${fill('a', 1000)}', a;aa`, 'postgres'), [input('a;a')]);
    expect(repeated[0]).toMatchObject({ kind: 'attack', reason: 'terminator' });
  });
});

describe('issue #14: eval argument offsets', () => {
  it('an empty eval argument no longer maps the joining blank to offset 0 (a finding whose end lay before its start)', () => {
    const cmd = "eval x '' ';id'";
    const findings = commandInjection.detect(execEvent(cmd), [input('x ')]);
    expect(findings.length).toBeGreaterThan(0);
    for (const f of findings) {
      expect(f.start).toBeLessThanOrEqual(f.end);
      expect(cmd.slice(f.start, f.end).startsWith('x')).toBe(true);
    }
  });

  it('keeps every finding ordered for eval lines with empty arguments anywhere', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("''", '""', 'a', ';id', '$x', "'b c'"), { minLength: 1, maxLength: 6 }), fc.constantFrom(' ;', 'a ', ' a', ' ', 'a'), (args, value) => {
        const cmd = `eval ${args.join(' ')}`;
        for (const f of commandInjection.detect(execEvent(cmd), [input(value)])) {
          expect(f.start).toBeLessThanOrEqual(f.end);
          expect(f.end).toBeLessThanOrEqual(cmd.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('issue #14: deep shell nesting', () => {
  // `echo "$(echo "$(…)")"`: two open constructs (a double quote and a substitution) per level.
  const nested = (levels: number, inner: string): string => `${'echo "$('.repeat(levels)}echo ${inner}${')"'.repeat(levels)}`;

  it('follows nesting up to the cap: an input in the innermost word is data there', () => {
    const levels = MAX_OPEN_CONSTRUCTS / 2 - 1;
    const cmd = nested(levels, 'report.pdf');
    const scan = scanShell(cmd);
    const at = cmd.indexOf('report.pdf');
    expect(scan.count(SyntaxClass.Substitution, at, at + 'report.pdf'.length)).toBe(0);
    expect(commandInjection.detect(execEvent(cmd), [input('report.pdf')]).filter((f) => f.kind === 'attack')).toEqual([]);
  });

  it('deeper than the cap, the rest of the command is syntax: an input there is an attack, and the scan stays small', () => {
    const levels = MAX_OPEN_CONSTRUCTS;
    const cmd = nested(levels, 'report.pdf');
    const scan = scanShell(cmd);
    const at = cmd.indexOf('report.pdf');
    expect(scan.count(SyntaxClass.Substitution, at, at + 'report.pdf'.length)).toBe('report.pdf'.length);
    expect(commandInjection.detect(execEvent(cmd), [input('report.pdf')])).toEqual([expect.objectContaining({ kind: 'attack' })]);
    // The tokens stop at the cap: 100,000 levels make no more tokens than 1,000 (each level was live to the end).
    expect(scanShell(nested(100_000, 'x')).tokens.length).toBe(scanShell(nested(1_000, 'x')).tokens.length);
  });
});

describe('issue #14: an input repeating one character inside a shell word', () => {
  it('judges the occurrences inside one plain word alike, and still finds the attack after it', () => {
    const word = fill('a', 50_000);
    expect(commandInjection.detect(execEvent(`echo ${word}`), [input(fill('a', 10_000))])).toEqual([
      expect.objectContaining({ kind: 'vulnerability', start: 5, end: 10_005 }),
    ]);
    // The same value later breaks out of a quote: that occurrence is judged on its own.
    const value = `${fill('a', 100)}'; id; '`;
    const findings = commandInjection.detect(execEvent(`echo ${word} '${value}'`), [input(value)]);
    expect(findings[0]).toMatchObject({ kind: 'attack' });
    // A program name made of the repeated letter is not a plain argument: judged as a program.
    expect(commandInjection.detect(execEvent(`${fill('a', 300)} x`), [input(fill('a', 100))]).every((f) => f.start === 0 || f.kind === 'vulnerability')).toBe(true);
  });
});

describe('issue #14: nested shell fragments', () => {
  it('judges identical fragments once: 5,000 copies of `sh -c "…"` scan the fragment text once', () => {
    let scans = 0;
    const judgeOnce = (copies: number): void => {
      scans = 0;
      const cmd = `sh ${'-c "echo x1" '.repeat(copies)}`;
      commandInjection.detect(execEvent(cmd), [input('x1')]);
    };
    const original = String.prototype.indexOf;
    String.prototype.indexOf = function (this: string, ...args: Parameters<string['indexOf']>): number {
      if (this.valueOf() === 'echo x1') scans++;
      return original.apply(this, args);
    };
    try {
      judgeOnce(10);
      const few = scans;
      judgeOnce(5_000);
      expect(scans).toBe(few);
    } finally {
      String.prototype.indexOf = original;
    }
  });

  it('maps findings in a fragment back to the outer command, escapes and quotes dropped', () => {
    const cmd = `sh -c "echo \\"a\\"; id" -c 'x'`; // the inner shell reads: echo "a"; id
    const findings = commandInjection.detect(execEvent(cmd), [input('; id')]);
    expect(findings).toEqual([expect.objectContaining({ kind: 'attack' })]);
    expect(cmd.slice(findings[0]!.start, findings[0]!.end)).toBe('; id');
  });
});

describe('issue #14: the rule pattern normaliser', () => {
  /** The old normaliser, character by character. */
  function reference(text: string): string {
    let out = '';
    let pendingSpace = false;
    for (const ch of text) {
      if (' \t\n\r\f\v'.includes(ch)) {
        pendingSpace = out.length > 0;
        continue;
      }
      if (pendingSpace) out += ' ';
      pendingSpace = false;
      out += ch;
    }
    return out.toLowerCase();
  }

  it('gives the same text as the character-by-character normaliser', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30, unit: fc.constantFrom('a', 'B', ' ', '  ', '\n', '\t', '\r', '\v', '\f', 'É', '\u0000') }), (text) => {
        expect(normalizeText(text)).toBe(reference(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('builds a one-line statement from one slice and a multi-line one from one slice per line', () => {
    const oneLine = fill('SELECT a FROM t WHERE x = 1 ', 100_000);
    const multiLine = fill('SELECT a\n  FROM t\n', 100_000);
    const originalSlice = String.prototype.slice;
    let slices = 0;
    String.prototype.slice = function (this: string, ...args: Parameters<typeof originalSlice>): string {
      slices++;
      return originalSlice.apply(this, args);
    };
    try {
      normalizeText(oneLine);
      expect(slices).toBe(1);
      slices = 0;
      normalizeText(multiLine);
      expect(slices).toBeLessThanOrEqual(100_000 / 9 + 2);
    } finally {
      String.prototype.slice = originalSlice;
    }
  });
});

describe('redaction: query values without a backtracking regular expression', () => {
  /** The regular expression it replaces (quadratic on `????…`). */
  function reference(url: string): string {
    const q = url.indexOf('?');
    if (q === -1) return url;
    const hash = url.indexOf('#', q);
    return url.slice(0, q) + url.slice(q, hash === -1 ? undefined : hash).replace(/([?&][^=&#]*)=[^&#]*/g, '$1=REDACTED');
  }

  it('redacts exactly what the regular expression redacted', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 16, unit: fc.constantFrom('?', '&', '=', 'a', '#', '/') }), (tail) => {
        const url = `http://x/${tail}`;
        expect(sanitizeUrl(url, [])).toBe(reference(url));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads each character of a query of 4,000 question marks a bounded number of times', () => {
    const url = `http://x/?${fill('?', 4000)}=1`;
    const reads = countCharReads(() => expect(sanitizeUrl(url, [])).toBe(`http://x/?${fill('?', 4000)}=REDACTED`));
    expect(reads).toBeLessThan(4 * url.length);
  });
});
