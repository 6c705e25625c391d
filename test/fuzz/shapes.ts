import type { CodeEvent, ExecEvent, FsEvent, HttpOutEvent, SqlDialect, SqlEvent, UserInput } from '../../src/events.js';
import { tokenizeSql } from '../../src/grammar/sql-tokenizer.js';
import { scanShell } from '../../src/grammar/shell-tokenizer.js';
import { tokenizeJs } from '../../src/grammar/js-tokenizer.js';
import { sqlInjection } from '../../src/detectors/sql-injection.js';
import { commandInjection } from '../../src/detectors/command-injection.js';
import { codeInjection } from '../../src/detectors/code-injection.js';
import { createPathTraversal } from '../../src/detectors/path-traversal.js';
import { ssrf } from '../../src/detectors/ssrf.js';
import { maskPayload, redactRanges, sanitizeSql, sanitizeUrl } from '../../src/telemetry/redact.js';
import { compilePattern, normalizeText } from '../../src/rules/pattern.js';

/**
 * Adversarial input shapes for every tokenizer, detector, redaction function and the rule matcher: the
 * shapes that make a careless scanner super-linear (operator runs, deep nesting, repeated characters,
 * unterminated quotes and comments, here-documents, many inputs). Each shape builds its input for a target
 * size outside any measurement and returns the call to measure.
 */
export interface Shape {
  readonly name: string;
  /** Prepare an input of about `size` characters; the returned function does the work once. */
  readonly prepare: (size: number) => () => unknown;
}

/** `unit` repeated to exactly `size` characters. */
export const fill = (unit: string, size: number): string => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);

export const input = (value: string, path = 'q'): UserInput => ({ source: 'body', path, value });

const sqlEvent = (sql: string, dialect: SqlDialect): SqlEvent => ({
  kind: 'sql',
  op: 'pg.query',
  dialect,
  system: dialect === 'postgres' ? 'postgresql' : 'mysql',
  sql,
});
export const execEvent = (command: string): ExecEvent => ({ kind: 'exec', op: 'child_process.exec', file: command, args: [], shell: true });
export const fsEvent = (path: string): FsEvent => ({ kind: 'fs', op: 'fs.readFile', path, write: false });
export const httpEvent = (url: string): HttpOutEvent => ({ kind: 'http.out', op: 'http.request', url });
export const codeEvent = (source: string): CodeEvent => ({ kind: 'code', op: 'eval', source });
export { sqlEvent };

// A fresh input array per call: the detector caches its suspects per array (one per request), which would hide their cost.
const posixPaths = createPathTraversal({ windows: false });
const windowsPaths = createPathTraversal({ windows: true });

/** Many distinct inputs, most of which occur in the text (the "times the number of inputs" part stays fixed). */
const manyInputs = (values: (k: number) => string, count = 200): UserInput[] => Array.from({ length: count }, (_, k) => input(values(k), `k${k}`));

const sqlShapes = (dialect: SqlDialect): Shape[] => {
  const tok = (name: string, build: (n: number) => string): Shape => ({
    name: `sql tokenizer (${dialect}): ${name}`,
    prepare: (n) => {
      const sql = build(n);
      return () => tokenizeSql(sql, dialect);
    },
  });
  const det = (name: string, build: (n: number) => { sql: string; inputs: UserInput[] }): Shape => ({
    name: `sql-injection (${dialect}): ${name}`,
    prepare: (n) => {
      const { sql, inputs } = build(n);
      const event = sqlEvent(sql, dialect);
      return () => sqlInjection.detect(event, inputs);
    },
  });
  return [
    tok('run of +', (n) => `SELECT * FROM t WHERE q = ''${fill('+', n)}''`),
    tok('run of -+', (n) => fill('-+', n)),
    tok('run of =-', (n) => fill('=-', n)),
    tok('run of */', (n) => fill('*/', n)),
    tok('nested /* unterminated', (n) => fill('/*', n)),
    tok('parentheses', (n) => fill('(', n / 2) + fill(')', n / 2)),
    tok('unterminated quote of backslashes', (n) => `'${fill('\\', n)}`),
    tok('escaped quotes', (n) => `'${fill("''", n)}`),
    tok('dollar tags', (n) => fill('$a$', n)),
    tok('dollars', (n) => fill('$', n)),
    tok('dollar and a long tag', (n) => `$${fill('a', n)}`),
    tok('line comment', (n) => `--${fill('x', n)}`),
    tok('number prefixes', (n) => fill('0x1e.', n)),
    tok('operators <=>', (n) => fill('<=>', n)),
    det('the issue #14 body: a quoted run of +', (n) => {
      const value = `'${fill('+', n)}'`;
      return { sql: `SELECT * FROM t WHERE q = '${value}'`, inputs: [input(value)] };
    }),
    det('one letter repeated, inside a literal', (n) => ({ sql: `SELECT * FROM t WHERE q = '${fill('a', n)}'`, inputs: [input(fill('a', n / 4))] })),
    det('escaped quotes, inside a literal', (n) => ({ sql: `SELECT '${fill("''", n)}'`, inputs: [input("''''")] })),
    det('literal list', (n) => ({ sql: `SELECT * FROM t WHERE id IN (${fill('1,', n)}1)`, inputs: [input('1,1,1,1,1,1')] })),
    det('many inputs', (n) => ({ sql: `SELECT * FROM t WHERE ${fill("x = 'v1' OR ", n)}1`, inputs: manyInputs((k) => (k % 2 === 0 ? `v${k % 10}` : `'v${k}' OR x`)) })),
    det('input as an unterminated quote run', (n) => {
      const value = fill("'", n / 2);
      return { sql: `SELECT '${value}'`, inputs: [input(value)] };
    }),
  ];
};

const shellShapes = (): Shape[] => {
  const tok = (name: string, build: (n: number) => string): Shape => ({
    name: `shell tokenizer: ${name}`,
    prepare: (n) => {
      const cmd = build(n);
      return () => scanShell(cmd).count(1, 0, cmd.length);
    },
  });
  const det = (name: string, build: (n: number) => { cmd: string; inputs: UserInput[] }): Shape => ({
    name: `command-injection: ${name}`,
    prepare: (n) => {
      const { cmd, inputs } = build(n);
      const event = execEvent(cmd);
      return () => commandInjection.detect(event, inputs);
    },
  });
  return [
    tok('nested $(', (n) => fill('$(', n)),
    tok('backquotes', (n) => fill('`', n)),
    tok('nested ${', (n) => fill('${', n)),
    tok('nested $((', (n) => fill('$((', n)),
    tok('nested "$(', (n) => fill('"$(', n)),
    tok('single quotes', (n) => fill("'", n)),
    tok('backslashes', (n) => fill('\\', n)),
    tok('brace patterns', (n) => `echo ${fill('{a,', n)}`),
    tok('fd redirections', (n) => fill('2>', n)),
    tok('comment', (n) => `#${fill('x', n)}`),
    tok('here-document body', (n) => `cat <<EOF\n${fill('line $x\n', n)}`),
    tok('many here-documents', (n) => `${fill('cat <<a ', n / 2)}\n${fill('b\n', n / 2)}`),
    // The body repeats the delimiter's lines but never the whole delimiter: each line start compared far ahead.
    tok('here-document delimiter with newlines', (n) => `cat <<'${fill('x\n', n / 4)}y'\n${fill('x\n', n)}`),
    tok('here-document body of near-terminators', (n) => `cat <<${fill('E', 64)}\n${fill(`${fill('E', 63)}\n`, n)}`),
    tok('path segments', (n) => `cat ${fill('a/', n)}`),
    det('one letter repeated, inside a word', (n) => ({ cmd: `echo ${fill('a', n)}`, inputs: [input(fill('a', n / 4))] })),
    det('eval with empty arguments', (n) => ({ cmd: `eval ${fill("'' ", n)}`, inputs: [input("'' ''"), input(' ;')] })),
    det('sh -c options', (n) => ({ cmd: `sh ${fill(`-${'c'.repeat(200)}1 `, n)}`, inputs: [input('cc')] })),
    det('nested sh -c', (n) => ({ cmd: fill('sh -c "', n), inputs: [input('sh -c')] })),
    det('many inputs', (n) => ({ cmd: `echo ${fill('v1 ', n)}`, inputs: manyInputs((k) => (k % 2 === 0 ? `v${k % 10}` : `v${k};id`)) })),
  ];
};

const jsShapes = (): Shape[] => {
  const tok = (name: string, build: (n: number) => string): Shape => ({
    name: `js tokenizer: ${name}`,
    prepare: (n) => {
      const src = build(n);
      return () => tokenizeJs(src);
    },
  });
  const det = (name: string, build: (n: number) => { src: string; inputs: UserInput[] }): Shape => ({
    name: `code-injection: ${name}`,
    prepare: (n) => {
      const { src, inputs } = build(n);
      const event = codeEvent(src);
      return () => codeInjection.detect(event, inputs);
    },
  });
  return [
    tok('nested template substitutions', (n) => fill('`${', n)),
    tok('template and brace', (n) => fill('${`', n)),
    tok('slashes', (n) => fill('/', n)),
    tok('unclosed regex per line', (n) => fill('x=/[/\n', n)),
    tok('division or regex', (n) => fill('a/b/', n)),
    tok('parentheses and braces', (n) => fill('({[', n)),
    tok('HTML-like comments', (n) => fill('<!--', n)),
    tok('block comment openers', (n) => fill('/*', n)),
    tok('backslashes in a string', (n) => `'${fill('\\', n)}`),
    tok('unicode escapes', (n) => fill('\\u{', n)),
    tok('regex class openers', (n) => fill('/[', n)),
    tok('backslashes after a double quote', (n) => `"${fill('\\', n)}`),
    det('one letter repeated, inside a string', (n) => ({ src: `x = "${fill('a', n)}"`, inputs: [input(fill('a', n / 4))] })),
    det('quotes', (n) => ({ src: `x = '${fill("\\'", n)}'`, inputs: [input("\\'\\'")] })),
    det('many inputs', (n) => ({ src: `f(${fill("'v1',", n)})`, inputs: manyInputs((k) => (k % 2 === 0 ? `v${k % 10}` : `v${k}');x('`)) })),
  ];
};

const otherShapes = (): Shape[] => [
  {
    name: 'path-traversal: dot segments',
    prepare: (n) => {
      const path = `/srv/app/${fill('../', n)}x`;
      const event = fsEvent(path);
      const inputs = [input(path.slice(9)), input('../../')];
      return () => posixPaths.detect(event, [...inputs]);
    },
  },
  {
    name: 'path-traversal: long hostile inputs and paths',
    prepare: (n) => {
      const longInput = `${fill('a/../', n / 2)}../etc/passwd`;
      const event = fsEvent(`/srv/${fill('x/', n / 2)}etc/passwd`);
      const inputs = [input(longInput), input(fill('x/', n / 20)), input(fill('/', n / 2))];
      return () => posixPaths.detect(event, [...inputs]);
    },
  },
  {
    name: 'path-traversal: slashes (windows)',
    prepare: (n) => {
      const path = `C:\\app\\${fill('..\\/', n)}`;
      const event = fsEvent(path);
      const inputs = [input(fill('..\\/', n / 2))];
      return () => windowsPaths.detect(event, [...inputs]);
    },
  },
  {
    name: 'path-traversal: many inputs',
    prepare: (n) => {
      const event = fsEvent(`/srv/${fill('a/b/', n)}`);
      const inputs = manyInputs((k) => (k % 2 === 0 ? 'a/b' : `../${k}`));
      return () => posixPaths.detect(event, [...inputs]);
    },
  },
  {
    name: 'ssrf: long host of labels',
    prepare: (n) => {
      const host = fill('a.', n);
      const event = httpEvent(`http://${host}x/`);
      const inputs = [input(host), input('a.a.')];
      return () => ssrf.detect(event, inputs);
    },
  },
  {
    name: 'ssrf: userinfo and brackets',
    prepare: (n) => {
      const url = `http://${fill('@[:', n)}/`;
      const event = httpEvent(url);
      return () => ssrf.detect(event, [input(url.slice(7, 50)), input('@[')]);
    },
  },
  {
    name: 'redaction: sanitizeUrl, a query of question marks',
    prepare: (n) => {
      const url = `http://x/?${fill('?', n)}`;
      return () => sanitizeUrl(url, []);
    },
  },
  {
    name: 'redaction: sanitizeUrl, many ranges',
    prepare: (n) => {
      const url = `http://x/?${fill('a=b&', n)}`;
      const ranges = Array.from({ length: Math.floor(n / 8) }, (_, k) => ({ start: 10 + 8 * k, end: 13 + 8 * k }));
      return () => sanitizeUrl(url, ranges);
    },
  },
  {
    name: 'redaction: sanitizeSql, many ranges',
    prepare: (n) => {
      const sql = fill("x = 'v' OR ", n);
      const ranges = Array.from({ length: Math.floor(n / 11) }, (_, k) => ({ start: 11 * k + 5, end: 11 * k + 6 }));
      return () => sanitizeSql(sql, 'postgres', ranges);
    },
  },
  {
    name: 'redaction: redactRanges and maskPayload',
    prepare: (n) => {
      const text = fill('abc ', n);
      const ranges = Array.from({ length: Math.floor(n / 4) }, (_, k) => ({ start: 4 * k, end: 4 * k + 2 }));
      return () => redactRanges(text, ranges) + maskPayload(text);
    },
  },
  {
    name: 'rules: normalizeText',
    prepare: (n) => {
      const text = fill('SELECT  a,\n b ', n);
      return () => normalizeText(text);
    },
  },
  {
    name: 'rules: glob with stars against a repetitive statement',
    prepare: (n) => {
      const pattern = compilePattern(`*${'a'.repeat(30)}b*`);
      const text = fill('a', n);
      return () => pattern.test(text);
    },
  },
];

export const SHAPES: readonly Shape[] = [...sqlShapes('postgres'), ...sqlShapes('mysql'), ...shellShapes(), ...jsShapes(), ...otherShapes()];
