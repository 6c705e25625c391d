import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { sqlInjection } from '../../../src/detectors/sql-injection.js';
import { isExecutableComment, tokenizeSql, type SqlTokenType } from '../../../src/grammar/sql-tokenizer.js';
import type { SqlDialect, SqlEvent, UserInput } from '../../../src/events.js';
import type { Finding } from '../../../src/detectors/types.js';

// ---------------------------------------------------------------------------------------------------------
// helpers

const DIALECTS: readonly SqlDialect[] = ['postgres', 'mysql'];

const TEMPLATES: Record<string, string> = {
  string: "SELECT id, name FROM users WHERE name = '{}'",
  number: 'SELECT id, name FROM users WHERE id = {}',
  order: 'SELECT id, name FROM users ORDER BY {}',
  like: "SELECT id, name FROM users WHERE name LIKE '%{}%'",
  login: "SELECT id, name FROM users WHERE name = '{}' AND secret = 'wrong-password'",
};

interface AttackCase {
  context: string;
  dialects: SqlDialect[];
  effect: string;
  payload: string;
}
interface BenignCase {
  context: string;
  payload: string;
}

function readJsonl<T>(name: string): T[] {
  const text = readFileSync(new URL(`../../fixtures/payloads/${name}`, import.meta.url), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

/** Template with `{}` replaced verbatim (a function replacer, so `$$` in payloads stays as is). */
function build(context: string, value: string): { sql: string; at: number } {
  const template = TEMPLATES[context];
  if (template === undefined) throw new Error(`unknown context ${context}`);
  return { sql: template.replace('{}', () => value), at: template.indexOf('{}') };
}

function event(sql: string, dialect: SqlDialect): SqlEvent {
  return { kind: 'sql', op: 'test.query', dialect, system: dialect === 'postgres' ? 'postgresql' : 'mysql', sql };
}

function input(value: string, path = 'query.q'): UserInput {
  return { source: 'query', path, value };
}

function detect(sql: string, dialect: SqlDialect, ...values: string[]): readonly Finding[] {
  return sqlInjection.detect(event(sql, dialect), values.map((v, k) => input(v, `query.v${k}`)));
}

/** How an app that escapes properly writes a value inside '...'. */
function escapeLiteral(value: string, dialect: SqlDialect): string {
  return dialect === 'postgres' ? value.replaceAll("'", "''") : value.replaceAll('\\', '\\\\').replaceAll("'", "\\'");
}

function tokens(sql: string, dialect: SqlDialect): Array<[SqlTokenType, string]> {
  return tokenizeSql(sql, dialect).map((t) => [t.type, sql.slice(t.start, t.end)]);
}

// ---------------------------------------------------------------------------------------------------------
// tokenizer

describe('tokenizeSql', () => {
  it('splits a simple statement and tells keywords from identifiers, case-insensitively', () => {
    expect(tokens("select id, Name FROM users WHERE id = 1;", 'postgres')).toEqual([
      ['keyword', 'select'],
      ['identifier', 'id'],
      ['punctuation', ','],
      ['identifier', 'Name'],
      ['keyword', 'FROM'],
      ['identifier', 'users'],
      ['keyword', 'WHERE'],
      ['identifier', 'id'],
      ['operator', '='],
      ['number', '1'],
      ['terminator', ';'],
    ]);
  });

  it('treats all ASCII whitespace (space, tab, newlines, form feed, vertical tab) as a separator', () => {
    expect(tokens('a\tb\nc\rd\fe\vf  g', 'mysql').map(([, text]) => text)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  });

  it("doubles '' in single-quoted strings in both dialects", () => {
    for (const d of DIALECTS) expect(tokens("'it''s' x", d)).toEqual([['string', "'it''s'"], ['identifier', 'x']]);
  });

  it('escapes with backslash in MySQL strings, not in PostgreSQL standard strings', () => {
    expect(tokens("'a\\'b' c", 'mysql')).toEqual([['string', "'a\\'b'"], ['identifier', 'c']]);
    expect(tokens("'a\\'z' c", 'postgres')).toEqual([
      ['string', "'a\\'"],
      ['identifier', 'z'],
      ['unterminated-string', "' c"],
    ]);
    expect(tokens("'C:\\' x", 'postgres')).toEqual([['string', "'C:\\'"], ['identifier', 'x']]);
  });

  it("escapes with backslash in PostgreSQL E'..' strings", () => {
    expect(tokens("E'a\\'b' e'\\\\' x", 'postgres')).toEqual([
      ['string', "E'a\\'b'"],
      ['string', "e'\\\\'"],
      ['identifier', 'x'],
    ]);
  });

  it("reads X'..', B'..', N'..' and PostgreSQL U&'..' as strings", () => {
    expect(tokens("X'1F' b'01' N'abc' U&'d\\0061t' U&\"i\"", 'postgres').map(([t]) => t)).toEqual([
      'string',
      'string',
      'string',
      'string',
      'quoted-identifier',
    ]);
    expect(tokens("x'1F' N'a\\'b'", 'mysql').map(([t]) => t)).toEqual(['string', 'string']);
  });

  it('reads PostgreSQL dollar-quoted strings, with and without tag, and $1 placeholders', () => {
    expect(tokens("SELECT $$it's -- not a comment$$, $fn$ a $$ b $fn$, $1", 'postgres')).toEqual([
      ['keyword', 'SELECT'],
      ['string', "$$it's -- not a comment$$"],
      ['punctuation', ','],
      ['string', '$fn$ a $$ b $fn$'],
      ['punctuation', ','],
      ['placeholder', '$1'],
    ]);
    expect(tokens('SELECT $x$ never closed', 'postgres')).toEqual([
      ['keyword', 'SELECT'],
      ['unterminated-string', '$x$ never closed'],
    ]);
    // `$` inside a word belongs to the word; a dollar quote cannot start there.
    expect(tokens('a$$b', 'postgres')).toEqual([['identifier', 'a$$b']]);
  });

  it('reads double quotes as identifiers in PostgreSQL and as strings in MySQL', () => {
    expect(tokens('"a""b" "c\\"', 'postgres')).toEqual([
      ['quoted-identifier', '"a""b"'],
      ['quoted-identifier', '"c\\"'],
    ]);
    expect(tokens('"a\\"b" "c""d"', 'mysql')).toEqual([
      ['string', '"a\\"b"'],
      ['string', '"c""d"'],
    ]);
  });

  it('reads backticks as identifiers in MySQL only', () => {
    expect(tokens('`my``col` x', 'mysql')).toEqual([['quoted-identifier', '`my``col`'], ['identifier', 'x']]);
    expect(tokens('`x`', 'postgres')[0]?.[0]).toBe('operator');
  });

  it('nests block comments in PostgreSQL but not in MySQL', () => {
    expect(tokens('/* a /* b */ c */ SELECT', 'postgres')).toEqual([
      ['comment', '/* a /* b */ c */'],
      ['keyword', 'SELECT'],
    ]);
    expect(tokens('/* a /* b */ c */ SELECT', 'mysql')).toEqual([
      ['comment', '/* a /* b */'],
      ['identifier', 'c'],
      ['operator', '*'],
      ['operator', '/'],
      ['keyword', 'SELECT'],
    ]);
  });

  it('applies the MySQL rule that -- starts a comment only before whitespace, a control character or the end', () => {
    expect(tokens('1--1', 'mysql')).toEqual([
      ['number', '1'],
      ['operator', '-'],
      ['operator', '-'],
      ['number', '1'],
    ]);
    expect(tokens('1-- x\n2', 'mysql')).toEqual([['number', '1'], ['comment', '-- x'], ['number', '2']]);
    expect(tokens('1--\tx', 'mysql')).toEqual([['number', '1'], ['comment', '--\tx']]);
    expect(tokens('1--', 'mysql')).toEqual([['number', '1'], ['comment', '--']]);
    expect(tokens('1--1', 'postgres')).toEqual([['number', '1'], ['comment', '--1']]);
  });

  it('reads # as a comment in MySQL and as an operator in PostgreSQL', () => {
    expect(tokens('1 # rest', 'mysql')).toEqual([['number', '1'], ['comment', '# rest']]);
    expect(tokens('1 # 2', 'postgres')).toEqual([['number', '1'], ['operator', '#'], ['number', '2']]);
  });

  it('keeps MySQL executable comments as one comment token and recognises them', () => {
    const sql = '1 /*!50000 UNION*/ /*M! SELECT */ /* plain */';
    const toks = tokenizeSql(sql, 'mysql');
    expect(toks.map((t) => t.type)).toEqual(['number', 'comment', 'comment', 'comment']);
    expect(toks.slice(1).map((t) => isExecutableComment(sql, t, 'mysql'))).toEqual([true, true, false]);
  });

  it('gives unterminated strings, identifiers and comments their own types, running to the end', () => {
    expect(tokens("a = 'x", 'postgres')[2]).toEqual(['unterminated-string', "'x"]);
    expect(tokens('a = "x', 'postgres')[2]).toEqual(['unterminated-identifier', '"x']);
    expect(tokens('a = `x', 'mysql')[2]).toEqual(['unterminated-identifier', '`x']);
    expect(tokens('a /* x', 'mysql')[1]).toEqual(['unterminated-comment', '/* x']);
    expect(tokens("a = 'x\\'", 'mysql')[2]).toEqual(['unterminated-string', "'x\\'"]);
  });

  it('reads integers, decimals, exponents and hex/binary numbers', () => {
    const sql = '1 1.5 .5 1. 1e10 1.5E-3 0x1F 0b101';
    for (const d of DIALECTS) expect(tokens(sql, d).map(([t]) => t)).toEqual(Array(8).fill('number'));
    // MySQL identifiers may start with digits; PostgreSQL reads a number then a word (and rejects it).
    expect(tokens('1abc', 'mysql')).toEqual([['identifier', '1abc']]);
    expect(tokens('1abc', 'postgres')).toEqual([['number', '1'], ['identifier', 'abc']]);
  });

  it('reads placeholders per dialect', () => {
    expect(tokens('a = ? AND ?? = :name', 'mysql').filter(([t]) => t === 'placeholder')).toEqual([
      ['placeholder', '?'],
      ['placeholder', '??'],
      ['placeholder', ':name'],
    ]);
    expect(tokens('a = $12 AND b = :name AND c::text = d', 'postgres').filter(([t]) => t !== 'keyword' && t !== 'identifier')).toEqual([
      ['operator', '='],
      ['placeholder', '$12'],
      ['operator', '='],
      ['placeholder', ':name'],
      ['operator', '::'],
      ['operator', '='],
    ]);
  });

  it("follows PostgreSQL's operator rules (no trailing + or -, stop before a comment)", () => {
    expect(tokens('a=-1', 'postgres')).toEqual([
      ['identifier', 'a'],
      ['operator', '='],
      ['operator', '-'],
      ['number', '1'],
    ]);
    expect(tokens("j->>'k' @> x", 'postgres').map(([, s]) => s)).toEqual(['j', '->>', "'k'", '@>', 'x']);
    expect(tokens('a=/*c*/1', 'postgres').map(([t]) => t)).toEqual(['identifier', 'operator', 'comment', 'number']);
    expect(tokens('a <=> b := c', 'mysql').map(([, s]) => s)).toEqual(['a', '<=>', 'b', ':=', 'c']);
  });

  it('returns offsets that slice back to the token text', () => {
    const sql = "SELECT \"x\", 'y''z', $$w$$ FROM t -- c";
    for (const t of tokenizeSql(sql, 'postgres')) {
      expect(t.end).toBeGreaterThan(t.start);
      expect(sql.slice(t.start, t.end).trim()).toBe(sql.slice(t.start, t.end));
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// payload corpus

const ATTACKS = readJsonl<AttackCase>('sql-injection.attack.jsonl');
const BENIGN = readJsonl<BenignCase>('sql-injection.benign.jsonl');

describe('payload corpus', () => {
  it('has enough cases of each kind', () => {
    expect(ATTACKS.length).toBeGreaterThanOrEqual(45);
    expect(BENIGN.length).toBeGreaterThanOrEqual(60);
    for (const c of ATTACKS) {
      expect(Object.keys(TEMPLATES)).toContain(c.context);
      expect(['rows', 'union', 'stacked', 'delay', 'error', 'login']).toContain(c.effect);
      expect(c.dialects.length).toBeGreaterThan(0);
    }
  });

  const attackRows = ATTACKS.flatMap((c) => c.dialects.map((d) => [d, c.context, c.effect, c.payload] as const));
  it.each(attackRows)('attack [%s %s %s] %j', (dialect, context, _effect, payload) => {
    const { sql, at } = build(context, payload);
    const findings = detect(sql, dialect, payload);
    expect(findings[0]?.kind).toBe('attack');
    expect(findings.some((f) => f.kind === 'attack' && f.start === at && f.end === at + payload.length)).toBe(true);
    expect(findings.every((f) => f.detector === 'sql-injection')).toBe(true);
  });

  const benignRows = BENIGN.flatMap((c) => DIALECTS.map((d) => [d, c.context, c.payload] as const));
  it.each(benignRows)('benign [%s %s] %j', (dialect, context, payload) => {
    const raw = context === 'number' || context === 'order';
    const written = raw ? payload : escapeLiteral(payload, dialect);
    const { sql } = build(context, written);
    const findings = detect(sql, dialect, payload);
    expect(findings.filter((f) => f.kind === 'attack')).toEqual([]);
    if (written === payload && payload.length >= 3) {
      expect(findings.filter((f) => f.kind === 'vulnerability').length).toBeGreaterThan(0);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// detector behaviour

describe('sqlInjection', () => {
  it('declares its id and kinds', () => {
    expect(sqlInjection.id).toBe('sql-injection');
    expect(sqlInjection.kinds).toEqual(['sql']);
  });

  it('finds nothing in a parameterised statement', () => {
    expect(detect('SELECT id FROM users WHERE name = $1 AND secret = $2', 'postgres', "' OR 1=1 --", 'x')).toEqual([]);
    expect(detect('SELECT id FROM users WHERE name = ? AND secret = ?', 'mysql', "' OR 1=1 #", 'hunter2')).toEqual([]);
  });

  it('skips inputs shorter than 2 characters or longer than the statement', () => {
    expect(detect("SELECT 1 WHERE a = ''''", 'postgres', "'")).toEqual([]);
    expect(detect('SELECT 1', 'postgres', 'SELECT 1; DROP TABLE users')).toEqual([]);
  });

  it('reports a value inside a literal as a vulnerability, not an attack', () => {
    const sql = "SELECT * FROM users WHERE email = 'alice@example.com'";
    const start = sql.indexOf('alice');
    expect(detect(sql, 'postgres', 'alice@example.com')).toEqual([
      { detector: 'sql-injection', kind: 'vulnerability', input: input('alice@example.com', 'query.v0'), start, end: start + 17, reason: 'literal', tokens: expect.any(Array) },
    ]);
  });

  it('reports each attack with its reason', () => {
    const cases: Array<[SqlDialect, string, string, string]> = [
      ['postgres', "SELECT * FROM t WHERE a = '' OR 1=1'", "' OR 1=1", 'breaks-literal'],
      ['postgres', "SELECT * FROM t WHERE a = 'x'--'", "x'--", 'comment'],
      ['mysql', "SELECT * FROM t WHERE a = 'x'#'", "x'#", 'comment'],
      ['mysql', 'SELECT * FROM t WHERE id = 1 /*!UNION*/', '/*!UNION*/', 'comment'],
      ['postgres', 'SELECT * FROM t WHERE id = 1; DROP TABLE t', '1; DROP TABLE t', 'terminator'],
      ['postgres', 'SELECT * FROM t WHERE id = 1 OR 1=1', '1 OR 1=1', 'spans-tokens'],
      ['mysql', "SELECT * FROM t WHERE a = 'x' AND b = 'yy", 'yy', 'unterminated'],
      ['mysql', "SELECT * FROM t WHERE a = 'x\\' AND b = 'y'", 'x\\', 'breaks-literal'],
      ['postgres', "SELECT * FROM t WHERE a = 'alice'' AND b = 'pw'", "alice'", 'breaks-literal'],
      // The value closes the literal itself and adds only whitespace: the app's closing quote is left open.
      ['postgres', "SELECT * FROM t WHERE a = 'abc'\n'", "abc'\n", 'breaks-literal'],
      // Dollar quotes have no escapes: writing part of the closing tag ends the string early.
      ['postgres', 'SELECT * FROM t WHERE c = $x$=$x$x$', '=$x', 'breaks-literal'],
      // Part of an operator: the value's characters merged with the app's.
      ['postgres', 'SELECT * FROM t WHERE a <<> 1', '<>', 'spans-tokens'],
    ];
    for (const [dialect, sql, value, reason] of cases) {
      const findings = detect(sql, dialect, value);
      expect({ value, findings: findings.map((f) => [f.kind, f.reason]) }).toEqual({ value, findings: [['attack', reason]] });
    }
    // An input ending in a quote is data when it was escaped properly (the statement stays well-formed).
    expect(detect("SELECT * FROM t WHERE a LIKE '%users''%'", 'postgres', "users'").map((f) => f.kind)).toEqual(['vulnerability']);
  });

  it('flags an unterminated string the input leaves open', () => {
    const findings = detect("SELECT * FROM t WHERE a = 'x' OR b = 'y", 'postgres', "x' OR b = 'y");
    expect(findings.map((f) => [f.kind, f.reason])).toEqual([['attack', 'unterminated']]);
  });

  it('reports the attack when the same input occurs once safely and once breaking out', () => {
    const value = '1 OR 1=1';
    const sql = `SELECT * FROM t WHERE note = '${value}' AND id = ${value}`;
    const findings = detect(sql, 'postgres', value);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ kind: 'attack', reason: 'spans-tokens', start: sql.lastIndexOf(value) });
  });

  it('finds an input the app changed the case of', () => {
    const payload = "x' or 1=1 -- ";
    const { sql, at } = build('string', payload.toUpperCase());
    expect(detect(sql, 'postgres', payload)).toMatchObject([{ kind: 'attack', start: at, end: at + payload.length }]);
    const lower = build('number', '1 union select id, secret from users');
    expect(detect(lower.sql, 'mysql', '1 UNION SELECT id, secret FROM users')[0]?.kind).toBe('attack');
    // Letters beyond ASCII have case too, in a value with no ASCII letter at all.
    const accented = "é'||'é";
    const upper = build('string', accented.toUpperCase());
    expect(detect(upper.sql, 'postgres', accented)[0]).toMatchObject({ kind: 'attack', start: upper.at });
    // An ASCII letter after the first punctuation still makes the value one to fold.
    const late = "1;' or 'x'='x";
    const lateSql = build('string', late.toUpperCase());
    expect(detect(lateSql.sql, 'mysql', late)[0]).toMatchObject({ kind: 'attack', start: lateSql.at });
  });

  it('folds each statement as it is: the fold kept from the last statement is not lent to another', () => {
    const payload = "x' or 1=1 -- ";
    const first = build('string', payload.toUpperCase());
    expect(detect(first.sql, 'postgres', payload)).toMatchObject([{ kind: 'attack', start: first.at }]);
    // The same statement again (the kept fold), then a different one of the same length and of another length.
    expect(detect(first.sql, 'postgres', payload)).toMatchObject([{ kind: 'attack', start: first.at }]);
    const sameLength = first.sql.replace('SELECT', 'select');
    expect(sameLength.length).toBe(first.sql.length);
    expect(detect(sameLength, 'postgres', payload)).toMatchObject([{ kind: 'attack', start: first.at }]);
    const other = `SELECT id FROM accounts WHERE owner = '${payload.toUpperCase()}'`;
    expect(detect(other, 'postgres', payload)).toMatchObject([{ kind: 'attack', start: other.indexOf('X') }]);
    // A statement whose case folding changes its length (U+0130) is folded ASCII-only, kept fold or not.
    const turkish = `SELECT 'İ' AS k FROM t WHERE name = '${payload.toUpperCase()}'`;
    expect(detect(turkish, 'postgres', payload)).toMatchObject([{ kind: 'attack', start: turkish.indexOf('X') }]);
    expect(detect(turkish, 'postgres', payload)).toMatchObject([{ kind: 'attack', start: turkish.indexOf('X') }]);
    // The fold of the first statement did not stay: the clean statement with the same words is still clean.
    expect(detect("SELECT * FROM t WHERE name = $1", 'postgres', payload)).toEqual([]);
  });

  it('does not fold values that have no letters (nothing whose case could have changed)', () => {
    // Found as typed, these are judged; written differently they are not there at all.
    expect(detect("SELECT * FROM t WHERE a = '1' OR 2>1 --'", 'postgres', "1' OR 2>1 --")[0]?.kind).toBe('attack');
    expect(detect('SELECT * FROM t WHERE ip = $1', 'postgres', '127.0.0.1:3000', '1=1;--')).toEqual([]);
  });

  it('lists attacks before vulnerabilities, one finding per input and occurrence', () => {
    const sql = "SELECT * FROM t WHERE a = 'hello world' AND b = 'x' OR 'y'='y'";
    const findings = detect(sql, 'postgres', 'hello world', "x' OR 'y'='y", 'hello world');
    expect(findings.map((f) => [f.kind, f.input?.path])).toEqual([
      ['attack', 'query.v1'],
      ['vulnerability', 'query.v0'],
      ['vulnerability', 'query.v2'],
    ]);
  });

  describe('ORDER BY whitelist', () => {
    const benign: Array<[string, readonly SqlDialect[]]> = [
      ['name', DIALECTS],
      ['name desc', DIALECTS],
      ['name asc nulls last', DIALECTS],
      ['a, b desc', DIALECTS],
      ['u.name DESC, 2', DIALECTS],
      ['desc', DIALECTS],
      ['"Name" ASC', ['postgres']],
      ['`Name` ASC', ['mysql']],
    ];
    it.each(benign)('%j after ORDER BY / GROUP BY is a vulnerability (%j)', (value, dialects) => {
      for (const d of dialects) {
        for (const sql of [`SELECT x FROM t ORDER BY ${value}`, `SELECT x FROM t GROUP BY ${value} LIMIT 5`]) {
          const findings = detect(sql, d, value);
          expect(findings.map((f) => f.kind)).toEqual(['vulnerability']);
          expect(['order-by', 'identifier']).toContain(findings[0]?.reason);
        }
      }
    });

    const attacks = ['(SELECT 1)', 'name, (SELECT 1)', 'name desc; DROP TABLE t', 'lower(name)', 'name LIMIT 1', 'id - 1', 'name--'];
    it.each(attacks)('%j after ORDER BY is an attack', (value) => {
      const findings = detect(`SELECT x FROM t ORDER BY ${value}`, 'postgres', value);
      expect(findings[0]?.kind).toBe('attack');
    });

    it('does not whitelist the same words outside ORDER BY', () => {
      expect(detect('SELECT x FROM t WHERE a = name desc', 'postgres', 'name desc')[0]?.kind).toBe('attack');
    });
  });

  describe('noise control', () => {
    it('ignores a short number that matches a hard-coded one (?page=10 vs LIMIT 10)', () => {
      expect(detect('SELECT * FROM t ORDER BY id LIMIT 10', 'postgres', '10')).toEqual([]);
    });

    it('reports a longer number only when it is a whole token', () => {
      expect(detect('SELECT * FROM t WHERE id = 4242', 'postgres', '4242')[0]?.reason).toBe('number');
      expect(detect('SELECT * FROM t WHERE id = 42421', 'postgres', '4242')).toEqual([]);
      expect(detect("SELECT * FROM t WHERE d = '2042-01-01'", 'postgres', '2042')).toEqual([]);
      expect(detect("SELECT * FROM t WHERE d = '2042'", 'postgres', '2042')[0]?.reason).toBe('literal');
    });

    it('ignores coincidences with part of a keyword or identifier', () => {
      expect(detect('SELECT * FROM users', 'postgres', 'user', 'sel', 'SEL', 'ROM')).toEqual([]);
    });

    it('ignores a lone keyword or placeholder equal to the input', () => {
      expect(detect("select * from posts where title = $1", 'postgres', 'select', '$1', 'where')).toEqual([]);
    });

    it('ignores plain phrases that equal the SQL an ORM writes ("order by", "is null")', () => {
      const knex = 'select * from "posts" where "title" ilike $1 and "deleted_at" is null order by "id" asc';
      expect(detect(knex, 'postgres', 'order by', 'is null')).toEqual([]);
      // Found only case-insensitively and without SQL punctuation: not looked at.
      expect(detect('SELECT * FROM posts WHERE id = $1 ORDER BY id', 'postgres', 'where id', 'order by id')).toEqual([]);
      // ...while the same words typed by the app's own case are judged.
      expect(detect('SELECT * FROM posts WHERE id = id OR TRUE', 'postgres', 'id OR TRUE')[0]?.kind).toBe('attack');
    });

    it('reports a whole identifier as a vulnerability', () => {
      expect(detect('SELECT * FROM orders_2024', 'postgres', 'orders_2024')[0]).toMatchObject({ kind: 'vulnerability', reason: 'identifier' });
    });

    it('accepts signed numbers and literal lists as data', () => {
      expect(detect('SELECT * FROM t WHERE id = -123', 'postgres', '-123')[0]).toMatchObject({ kind: 'vulnerability', reason: 'number' });
      expect(detect('SELECT * FROM t WHERE id IN (1, 2, -3)', 'mysql', '1, 2, -3')[0]).toMatchObject({ kind: 'vulnerability', reason: 'list' });
      expect(detect("SELECT * FROM t WHERE n IN ('a','b')", 'postgres', "'a','b'")[0]).toMatchObject({ kind: 'vulnerability', reason: 'list' });
      expect(detect('SELECT * FROM t WHERE id IN (1),(2)', 'postgres', '1),(2')[0]?.kind).toBe('attack');
    });

    it('reports input inside an ordinary comment as in-comment, and opening a comment as an attack', () => {
      expect(detect('SELECT 1 /* user: bobby */', 'postgres', 'bobby')[0]).toMatchObject({ kind: 'vulnerability', reason: 'in-comment' });
      expect(detect('SELECT 1 /* user: bobby */', 'postgres', 'bobby */')[0]).toMatchObject({ kind: 'attack', reason: 'comment' });
    });
  });

  describe('properties on random values (seeded)', () => {
    /** Small deterministic PRNG (mulberry32) so failures reproduce. */
    function rng(seed: number): () => number {
      let a = seed;
      return () => {
        a = (a + 0x6d2b79f5) | 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }
    const ALPHABET = ["'", "'", '"', '\\', '-', '-', '#', '/', '*', '$', ';', ' ', '\n', 'a', 'b', 'E', 'x', '1', '=', '(', ')', '`', 'é'];
    function randomValue(next: () => number): string {
      let s = '';
      const length = 2 + Math.floor(next() * 12);
      for (let k = 0; k < length; k++) s += ALPHABET[Math.floor(next() * ALPHABET.length)];
      return s;
    }

    it('never reports an attack inside a properly escaped literal', () => {
      const next = rng(20240611);
      for (let k = 0; k < 3000; k++) {
        const value = randomValue(next);
        for (const d of DIALECTS) {
          const written = escapeLiteral(value, d);
          const { sql, at } = build('like', written);
          // The only string token is '%...%'; anything found outside it is a coincidence with the app's text.
          const inside = detect(sql, d, value).filter((f) => f.kind === 'attack' && f.start >= at - 2 && f.end <= at + written.length + 2);
          expect({ d, value, sql, inside }).toEqual({ d, value, sql, inside: [] });
        }
      }
    });

    it('flags a value that changes the token count, unless it is a whitelisted structure (Zen-style oracle)', () => {
      // Oracle: tokenize with the value and with a neutral word of the same length in its place.
      const templates: Array<[string, SqlDialect]> = [
        ...Object.values(TEMPLATES).flatMap((t) => DIALECTS.map((d) => [t, d] as [string, SqlDialect])),
        ['SELECT id FROM t WHERE a = "{}"', 'postgres'],
        ['SELECT id FROM t WHERE b = `{}`', 'mysql'],
        ['SELECT id FROM t WHERE c = $x${}$x$', 'postgres'],
      ];
      const pieces = ["'", '"', '\\', '-', '#', '/', '*', '$', ';', ' ', '\n', 'a', 'E', '1', '=', '(', ')', '`', ',', '.', '$x$', '--', '/*', '*/', "''"];
      const next = rng(4242);
      for (let k = 0; k < 4000; k++) {
        let value = '';
        const length = 2 + Math.floor(next() * 6);
        for (let j = 0; j < length; j++) value += pieces[Math.floor(next() * pieces.length)];
        if (value.trim() === '') continue; // whitespace changes no structure
        for (const [template, d] of templates) {
          const sql = template.replace('{}', () => value);
          const neutral = template.replace('{}', () => 'a'.repeat(value.length));
          if (tokenizeSql(sql, d).length === tokenizeSql(neutral, d).length) continue;
          const findings = detect(sql, d, value);
          if (findings.some((f) => f.kind === 'attack')) continue;
          // Allowed: sort lists, literal lists and signed numbers, reported as vulnerabilities (from 3
          // characters on; shorter ones are not reported at all).
          const whitelisted = findings.length > 0 && findings.every((f) => ['order-by', 'list', 'number'].includes(f.reason));
          const short = findings.length === 0 && value.trim().length < 3 && !/[()*=/'"#;]/.test(value);
          expect({ template, d, value, findings }).toEqual({ template, d, value, findings: whitelisted || short ? findings : ['an attack'] });
        }
      }
    });

    it('tokenizes anything into ordered, non-overlapping, in-bounds tokens', () => {
      const next = rng(7);
      for (let k = 0; k < 3000; k++) {
        const sql = randomValue(next) + randomValue(next) + randomValue(next);
        for (const d of DIALECTS) {
          let end = 0;
          for (const t of tokenizeSql(sql, d)) {
            expect(t.start).toBeGreaterThanOrEqual(end);
            expect(t.end).toBeGreaterThan(t.start);
            expect(t.end).toBeLessThanOrEqual(sql.length);
            end = t.end;
          }
        }
      }
    });

    it('flags every unescaped value that leaves the literal unbalanced or escapes from it', () => {
      const next = rng(99);
      for (let k = 0; k < 3000; k++) {
        const value = randomValue(next);
        for (const d of DIALECTS) {
          const { sql, at } = build('string', value);
          const toks = tokenizeSql(sql, d);
          const literal = toks.find((t) => t.start === at - 1);
          // The app meant one literal from at-1 to at+len+1: if the statement does not read that way, the
          // value changed its structure and must be reported (the value has at least 2 characters).
          const intact = literal?.type === 'string' && literal.end === at + value.length + 1 && toks[toks.length - 1] === literal;
          if (!intact) {
            const findings = detect(sql, d, value);
            const kinds = [...new Set(findings.map((f) => f.kind))];
            expect({ d, value, sql, kinds }).toEqual({ d, value, sql, kinds: ['attack'] });
          }
        }
      }
    });
  });

  describe('pathological input', () => {
    it('handles 100 KB of quotes and dashes', () => {
      const payload = "'--".repeat(34_000);
      for (const d of DIALECTS) {
        const { sql, at } = build('string', payload);
        const findings = detect(sql, d, payload, "'--", "''", '--', "-'");
        const mine = findings.filter((f) => f.input?.path === 'query.v0');
        expect(mine[0]).toMatchObject({ kind: 'attack', start: at, end: at + payload.length });
        expect(findings.length).toBeLessThanOrEqual(5 * 8);
      }
    });

    it('handles a 100 KB literal made of quotes with many overlapping occurrences', () => {
      const sql = `SELECT '${"'".repeat(100_000)}'`; // 100 002 quotes in a row: one string token
      for (const d of DIALECTS) {
        // `''` alone is too short to report as a vulnerability; the others are data inside the literal.
        const findings = detect(sql, d, "'".repeat(50_000), "''", "'".repeat(3), "'".repeat(4));
        expect(findings.map((f) => [f.input?.path, f.kind, f.reason])).toEqual([
          ['query.v0', 'vulnerability', 'literal'],
          ['query.v2', 'vulnerability', 'literal'],
          ['query.v3', 'vulnerability', 'literal'],
        ]);
      }
    });

    it('handles a long run of dashes and a long bulk statement', () => {
      const dashes = `SELECT 1 ${'-'.repeat(100_000)}`;
      expect(detect(dashes, 'mysql', '-'.repeat(1000))[0]?.kind).toBe('attack');
      const values = Array.from({ length: 2000 }, (_, k) => `value number ${k}`);
      const bulk = `INSERT INTO t (v) VALUES ${values.map((v) => `('${v}')`).join(', ')}`;
      const findings = detect(bulk, 'postgres', ...values);
      expect(findings).toHaveLength(2000);
      expect(findings.every((f) => f.kind === 'vulnerability' && f.reason === 'literal')).toBe(true);
    });
  });
});
