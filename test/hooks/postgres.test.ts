/**
 * hooks/postgres.ts against a real PostgreSQL, for `postgres` (porsager): the root devDependency (3.4.x) and
 * the first 3.x release (3.0.0, pinned in test/versions). The shared SQL driver suite (sql-drivers.shared.ts)
 * runs the common checks; this file is postgres's adapter. Attack input that reaches the statement raw
 * (`sql.unsafe`, alone or as a nested fragment) is refused the way postgres reports a failed query, a
 * rejected promise. Values and dynamic identifiers are bound or escaped by postgres, so the same attack
 * string there runs as data.
 */
import { expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { REPO } from '../helpers/app.js';
import { PG_URL } from '../helpers/services.js';
import { ALICE, ATTACK, BENIGN, BLOCKED, versionOf } from '../helpers/observe.js';
import { describeSqlDriver, plain, sqlEvent, type Form, type Refusal } from './sql-drivers.shared.js';

const require = createRequire(import.meta.url);
type Postgres = (url: string, options?: object) => Sql;

interface Fixture {
  sql: Sql;
}

const COPIES = [
  { label: 'root devDependency', dir: join(REPO, 'node_modules/postgres'), root: true },
  { label: 'pinned', dir: join(REPO, 'test/versions/postgres-3.0.0/node_modules/postgres'), root: false },
].map((copy) => ({ ...copy, version: versionOf(copy.dir) }));

interface Observation {
  rows?: unknown;
  err?: { class: string; code?: unknown; message?: unknown };
}

async function observe(run: () => Promise<unknown>): Promise<Observation> {
  try {
    return { rows: plain(await run()) };
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { err: { class: e.constructor.name, code: e.code, message: e.message } };
  }
}

const pgEvent = (op: string, text: string) => sqlEvent(op, text, 'postgres', 'postgresql');

const forms: Array<Form<Fixture>> = (
  [
    { form: 'tagged template with a value', run: async ({ sql }) => sql`SELECT id, name FROM users WHERE name = ${BENIGN}`, expected: { rows: [ALICE] } },
    { form: 'sql.unsafe(text)', run: async ({ sql }) => sql.unsafe("SELECT id, name FROM users WHERE name = 'alice'"), expected: { rows: [ALICE] } },
    { form: 'sql.unsafe(text, values)', run: async ({ sql }) => sql.unsafe('SELECT id, name FROM users WHERE name = $1', [BENIGN]), expected: { rows: [ALICE] } },
    {
      form: 'nested fragment: sql.unsafe inside a tagged template',
      run: async ({ sql }) => sql`SELECT id, name FROM users WHERE name = ${BENIGN} ${sql.unsafe('ORDER BY id')}`,
      expected: { rows: [ALICE] },
    },
    {
      form: 'nested tagged fragment',
      run: async ({ sql }) => sql`SELECT id, name FROM users ${sql`WHERE name = ${BENIGN}`}`,
      expected: { rows: [ALICE] },
    },
    { form: 'dynamic identifier sql(name)', run: async ({ sql }) => sql`SELECT ${sql('name')} FROM users WHERE id = 1`, expected: { rows: [{ name: 'alice' }] } },
    {
      form: 'object helper sql(row, columns) in an INSERT',
      run: async ({ sql }) => {
        const tag = `pg-helper-${process.pid}`;
        const rows = await sql`INSERT INTO audit ${sql({ marker: tag }, 'marker')} RETURNING marker`;
        await sql`DELETE FROM audit WHERE marker = ${tag}`;
        return rows;
      },
      expected: { rows: [{ marker: `pg-helper-${process.pid}` }] },
    },
    {
      form: '.raw()',
      run: async ({ sql }) => (await sql`SELECT id, name FROM users WHERE name = ${BENIGN}`.raw()).map((row) => row.map((cell) => (Buffer.isBuffer(cell) ? cell.toString() : cell))),
      expected: { rows: [['1', 'alice']] },
    },
    {
      form: '.execute() then await',
      run: async ({ sql }) => {
        const query = sql`SELECT id, name FROM users WHERE name = ${BENIGN}`.execute();
        return query;
      },
      expected: { rows: [ALICE] },
    },
    {
      form: '.forEach(fn)',
      run: async ({ sql }) => {
        const seen: unknown[] = [];
        await sql`SELECT id, name FROM users WHERE id <= 2 ORDER BY id`.forEach((row) => void seen.push(row));
        return seen;
      },
      expected: { rows: [ALICE, { id: 2, name: 'bob' }] },
    },
    {
      form: '.cursor() async iteration',
      run: async ({ sql }) => {
        const seen: unknown[] = [];
        for await (const rows of sql`SELECT id, name FROM users ORDER BY id`.cursor(2)) seen.push(rows.length);
        return seen;
      },
      expected: { rows: [2, 1] },
    },
    {
      form: 'sql.begin(transaction)',
      run: async ({ sql }) => sql.begin(async (tx) => tx`SELECT id, name FROM users WHERE name = ${BENIGN}`),
      expected: { rows: [ALICE] },
    },
    {
      form: 'bad statement',
      run: async ({ sql }) => sql`SELECT * FROM no_such_table`,
      expected: { err: { class: 'PostgresError', code: '42P01', message: 'relation "no_such_table" does not exist' } },
    },
  ] satisfies Array<Form<Fixture>>
).map((form) => ({ ...form, run: (fx: Fixture) => observe(() => form.run(fx)) }));

const blocked = { err: { class: 'BlockedError', code: BLOCKED } };
const unsafeAttack = (tag: string) => `SELECT id FROM users WHERE name = '${ATTACK}' /* ${tag} */`;
/** The refusal harness on `refuse`, observed as a caller would: rows or the error. */
const observed = (refused: Parameters<Refusal<Fixture>['run']>[1], run: (tag: string) => Promise<unknown>) => refused((_sql, tag) => observe(() => run(tag)));

const refusals: Array<Refusal<Fixture>> = [
  {
    name: 'sql.unsafe(text)',
    run: async ({ sql }, refused) => {
      expect(await observed(refused, (tag) => sql.unsafe(unsafeAttack(tag)))).toMatchObject(blocked);
    },
  },
  {
    name: 'a nested sql.unsafe fragment',
    run: async ({ sql }, refused) => {
      expect(await observed(refused, (tag) => sql`SELECT id FROM users WHERE name = 'x' ${sql.unsafe(`OR name = '${ATTACK}' /* ${tag} */`)}`)).toMatchObject(blocked);
    },
  },
  {
    name: 'an array of fragments',
    run: async ({ sql }, refused) => {
      expect(await observed(refused, (tag) => sql`SELECT id FROM users WHERE name = 'x' ${[sql.unsafe(`OR name = '${ATTACK}'`), sql.unsafe(`/* ${tag} */`)]}`)).toMatchObject(blocked);
    },
  },
  {
    name: '.execute() and .raw()',
    run: async ({ sql }, refused) => {
      expect(await observed(refused, (tag) => sql.unsafe(unsafeAttack(tag)).execute())).toMatchObject(blocked);
      expect(await observed(refused, (tag) => sql.unsafe(unsafeAttack(tag)).raw())).toMatchObject(blocked);
    },
  },
  {
    name: '.forEach(fn): no row is delivered',
    run: async ({ sql }, refused) => {
      const rows: unknown[] = [];
      expect(await observed(refused, (tag) => sql.unsafe(unsafeAttack(tag)).forEach((row) => void rows.push(row)))).toMatchObject(blocked);
      expect(rows).toEqual([]);
    },
  },
  {
    name: '.cursor(): the iteration rejects',
    run: async ({ sql }, refused) => {
      expect(
        await observed(refused, async (tag) => {
          for await (const rows of sql.unsafe(unsafeAttack(tag)).cursor(1)) void rows;
        }),
      ).toMatchObject(blocked);
    },
  },
  {
    name: 'inside sql.begin(): the refusal propagates, the transaction rolls back and rejects',
    run: async ({ sql }, refused) => {
      expect(
        await observed(refused, (tag) =>
          sql.begin(async (tx) => {
            await tx`INSERT INTO audit VALUES ('pg-tx')`;
            return tx.unsafe(unsafeAttack(tag));
          }),
        ),
      ).toMatchObject(blocked);
      expect(await sql`SELECT marker FROM audit WHERE marker = 'pg-tx'`).toEqual([]);
    },
  },
  {
    name: 'a refused query is settled once: awaiting it again rejects with the same error and sends nothing',
    run: async ({ sql }, refused) => {
      const seen = await observed(refused, async (tag) => {
        const query = sql.unsafe(unsafeAttack(tag));
        const first = await query.then(() => undefined, (e: Error) => e);
        const second = await query.then(() => undefined, (e: Error) => e);
        expect(second).toBe(first);
        throw first;
      });
      expect(seen).toMatchObject(blocked);
    },
  },
];

describeSqlDriver<Fixture>({
  driver: 'postgres',
  db: 'pg',
  copies: COPIES,
  open: (copy) => ({ sql: (require(copy.dir) as Postgres)(PG_URL, { max: 1, onnotice: () => {} }) }),
  close: ({ sql }) => sql.end({ timeout: 5 }),
  patchedTitle: "is patched: Query.prototype.handle is wrapped, with the original's name and length",
  patched: (_fx, copy) => {
    const { Query } = require(join(copy.dir, 'cjs/src/query.js')) as { Query: { prototype: { handle: unknown } } };
    return [['Query.prototype.handle', Query.prototype.handle]];
  },
  forms: () => forms,
  exact: true,
  sentinel: ({ sql }, text) => sql.unsafe(text),
  refusalTitle: 'refusal: the query promise rejects and the statement is never sent',
  refusals: () => refusals,
  events: () => [
    // Values become placeholders numbered as postgres numbers them; the values themselves are not sink text.
    {
      call: 'tagged template: the text with $n placeholders',
      run: async ({ sql }) => sql`SELECT id, name FROM users WHERE name = ${BENIGN} AND id > ${0}`,
      expected: [pgEvent('postgres.sql', 'SELECT id, name FROM users WHERE name = $1 AND id > $2')],
    },
    { call: 'sql.unsafe(text, values)', run: async ({ sql }) => sql.unsafe('SELECT id FROM users WHERE name = $1', [BENIGN]), expected: [pgEvent('postgres.unsafe', 'SELECT id FROM users WHERE name = $1')] },
    {
      call: 'nested fragments are rendered into the one statement that is sent',
      run: async ({ sql }) => sql`SELECT id FROM users ${sql`WHERE name = ${BENIGN}`} ${sql.unsafe('ORDER BY id')}`,
      expected: [pgEvent('postgres.sql', 'SELECT id FROM users WHERE name = $1 ORDER BY id')],
    },
    {
      call: 'a dynamic identifier is rendered escaped, as postgres sends it',
      run: async ({ sql }) => sql`SELECT ${sql('name')} FROM users WHERE id = 1`,
      expected: [pgEvent('postgres.sql', 'SELECT "name" FROM users WHERE id = 1')],
    },
    {
      call: 'a refused sql.unsafe statement',
      input: ATTACK,
      run: async ({ sql }) => sql.unsafe(`SELECT id FROM users WHERE name = '${ATTACK}'`),
      expected: [pgEvent('postgres.unsafe', `SELECT id FROM users WHERE name = '${ATTACK}'`)],
    },
  ],
  extra: {
    unchanged({ fx, asRequest }) {
      it('the attack string as a value or an identifier is bound or escaped: it runs as data', async () => {
        const { sql } = fx();
        const asValue = await asRequest(ATTACK, () => observe(async () => sql`SELECT id FROM users WHERE name = ${ATTACK}`));
        expect(asValue).toEqual({ rows: [] });
        const asIdentifier = await asRequest(ATTACK, () => observe(async () => sql`SELECT ${sql(ATTACK)} FROM users`));
        expect(asIdentifier.err).toMatchObject({ class: 'PostgresError', code: '42703' });
      });
    },
  },
});
