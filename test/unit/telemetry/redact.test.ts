import { describe, expect, it } from 'vitest';
import { appStack, maskPayload, redactRanges, sanitizeSql, sanitizeUrl } from '../../../src/telemetry/redact.js';
import { tokenizeSql } from '../../../src/grammar/sql-tokenizer.js';

describe('maskPayload', () => {
  it('keeps the shape of an attack and hides its values', () => {
    expect(maskPayload("' OR 'hunter2'='hunter2")).toBe("' ** '**'='**");
    expect(maskPayload('x; rm -rf /')).toBe('*; ** -** /');
  });
  it('caps length and replaces control characters', () => {
    expect(maskPayload('a\nb')).toBe('* *');
    expect(maskPayload('-'.repeat(1000)).length).toBeLessThanOrEqual(257);
  });
});

describe('sanitizeSql', () => {
  it("uses the tokens it is given (the detector's) instead of tokenizing again", () => {
    const sql = "SELECT id FROM t WHERE a = 'x'";
    const own = tokenizeSql(sql, 'postgres');
    expect(sanitizeSql(sql, 'postgres', [], own)).toBe(sanitizeSql(sql, 'postgres', []));
    // Tokens that call `id` a string: only a builder that uses them hides it.
    const given = own.map((t) => (sql.slice(t.start, t.end) === 'id' ? { ...t, type: 'string' as const } : t));
    expect(sanitizeSql(sql, 'postgres', [], given)).toBe('SELECT ? FROM t WHERE a = ?');
  });
  it("a statement over the text limit: the whole statement's tokens stop at the cut", () => {
    const sql = `SELECT ${'a, '.repeat(10_000)}b FROM t WHERE c = 'secret'`;
    expect(sanitizeSql(sql, 'postgres', [], tokenizeSql(sql, 'postgres'))).toBe(sanitizeSql(sql, 'postgres', []));
  });
  it('replaces every literal and collapses user input into one placeholder', () => {
    const sql = "SELECT id FROM accounts WHERE id LIKE '%x' UNION SELECT email FROM accounts WHERE 'a'='%' AND id <> 'alice' AND n = 42";
    const input = "x' UNION SELECT email FROM accounts WHERE 'a'='";
    const start = sql.indexOf(input);
    expect(sanitizeSql(sql, 'postgres', [{ start, end: start + input.length }])).toBe('SELECT id FROM accounts WHERE id LIKE ? AND id <> ? AND n = ?');
    // A comment the input introduced swallows the rest of the statement: so does the placeholder.
    const truncated = "SELECT id FROM t WHERE name = 'x' --' AND secret = 's'";
    expect(sanitizeSql(truncated, 'postgres', [{ start: 31, end: 36 }])).toBe('SELECT id FROM t WHERE name = ?');
  });
  it('keeps comments and identifiers the app wrote, and works for MySQL strings', () => {
    expect(sanitizeSql('SELECT `name` FROM t WHERE a = "x" /* rid 7 */', 'mysql', [])).toBe('SELECT `name` FROM t WHERE a = ? /* rid 7 */');
    expect(sanitizeSql('SELECT "name" FROM t WHERE a = $$x$$', 'postgres', [])).toBe('SELECT "name" FROM t WHERE a = ?');
  });
});

describe('redactRanges', () => {
  it('replaces each range once, in order, and tolerates overlaps', () => {
    expect(redactRanges('echo abc; rm x', [{ start: 5, end: 14 }])).toBe('echo ?');
    expect(redactRanges('a b c', [{ start: 0, end: 1 }, { start: 0, end: 3 }, { start: 4, end: 5 }])).toBe('? ?');
  });
});

describe('appStack', () => {
  it('keeps only application frames', () => {
    const stack = ['Error', '    at judge (/srv/node_modules/stepguard/dist/src/inspect.js:1:1)', '    at handler (/srv/app/routes.js:10:5)', '    at node:internal/process/task_queues:95:5', '    at Layer.handle (/srv/node_modules/express/lib/router/layer.js:95:5)'].join('\n');
    expect(appStack(stack, '/srv/node_modules/stepguard/dist')).toBe('at handler (/srv/app/routes.js:10:5)');
  });
});

describe('sanitizeUrl', () => {
  it('drops credentials and query values, keeps the rest', () => {
    expect(sanitizeUrl('https://user:pa55@api.example/v1/x?token=abc&page=2#top', [])).toBe('https://REDACTED@api.example/v1/x?token=REDACTED&page=REDACTED');
    const url = 'http://127.0.0.1:8080/admin';
    expect(sanitizeUrl(url, [{ start: 7, end: 21 }])).toBe('http://?/admin');
  });
});
