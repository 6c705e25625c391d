/**
 * hooks/postgres.ts against a real PostgreSQL, for `postgres` (porsager): the root devDependency (3.4.x) and
 * the first 3.x release (3.0.0, pinned in test/versions).
 *
 * Each form runs twice — outside any request, where the wrapper passes straight through, and inside
 * `runWithContext` with benign input — and both runs must observe the same thing. Attack input that reaches
 * the statement raw (`sql.unsafe`, alone or as a nested fragment) is refused the way postgres reports a failed
 * query, a rejected promise, and the server's statement log shows the statement never arrived. Values and
 * dynamic identifiers are bound or escaped by postgres, so the same attack string there runs as data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { REPO } from '../helpers/app.js';
import { resetPg, StatementLog } from '../helpers/db.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';
import { startAgentInProcess } from '../helpers/agent.js';
import { ALICE, ATTACK, BENIGN, BLOCKED, markers, versionOf, within } from '../helpers/observe.js';

const require = createRequire(import.meta.url);
type Postgres = (url: string, options?: object) => Sql;


const COPIES = [
  { label: 'root devDependency', dir: join(REPO, 'node_modules/postgres') },
  { label: 'pinned', dir: join(REPO, 'test/versions/postgres-3.0.0/node_modules/postgres') },
].map((copy) => ({ ...copy, version: versionOf(copy.dir) }));

let runWithContext: <R>(input: { query: Record<string, string> }, fn: () => R) => R;
let isWrapped: (fn: unknown) => boolean;
let originalOf: <F>(fn: F) => F;
const asRequest = <R>(q: string, fn: () => R): R => runWithContext({ query: { q } }, fn);

beforeAll(async () => {
  await requirePostgres();
  await resetPg();
  ({ runWithContext, isWrapped, originalOf } = startAgentInProcess());
});

interface Observation {
  rows?: unknown;
  err?: { class: string; code?: unknown; message?: unknown };
}

const plain = (rows: unknown) => JSON.parse(JSON.stringify(rows)) as unknown;

async function observe(run: () => Promise<unknown>): Promise<Observation> {
  try {
    return { rows: plain(await run()) };
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { err: { class: e.constructor.name, code: e.code, message: e.message } };
  }
}



async function expectNeverReachedServer(log: StatementLog, tags: ReturnType<typeof markers>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!log.since().includes(tags.sentinel)) {
    if (Date.now() > deadline) throw new Error(`the sentinel statement ${tags.sentinel} never appeared in the statement log`);
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(log.since()).not.toContain(tags.refused);
}

describe.each(COPIES)('postgres $version ($label)', (copy) => {
  let sql: Sql;

  beforeAll(() => {
    const postgres = require(copy.dir) as Postgres;
    sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
  });

  afterAll(async () => {
    await sql?.end({ timeout: 5 });
  });

  it("is patched: Query.prototype.handle is wrapped, with the original's name and length", () => {
    const { Query } = require(join(copy.dir, 'cjs/src/query.js')) as { Query: { prototype: { handle: unknown } } };
    const fn = Query.prototype.handle;
    const original = originalOf(fn) as (...args: unknown[]) => unknown;
    expect(isWrapped(fn)).toBe(true);
    expect(original).not.toBe(fn);
    expect((fn as typeof original).name).toBe(original.name);
    expect((fn as typeof original).length).toBe(original.length);
  });

  describe('unpatched behaviour is preserved, outside and inside a request with benign input', () => {
    const forms: Array<{ form: string; run: () => Promise<unknown>; expected: Observation }> = [
      { form: 'tagged template with a value', run: async () => sql`SELECT id, name FROM users WHERE name = ${BENIGN}`, expected: { rows: [ALICE] } },
      { form: 'sql.unsafe(text)', run: async () => sql.unsafe("SELECT id, name FROM users WHERE name = 'alice'"), expected: { rows: [ALICE] } },
      { form: 'sql.unsafe(text, values)', run: async () => sql.unsafe('SELECT id, name FROM users WHERE name = $1', [BENIGN]), expected: { rows: [ALICE] } },
      {
        form: 'nested fragment: sql.unsafe inside a tagged template',
        run: async () => sql`SELECT id, name FROM users WHERE name = ${BENIGN} ${sql.unsafe('ORDER BY id')}`,
        expected: { rows: [ALICE] },
      },
      {
        form: 'nested tagged fragment',
        run: async () => sql`SELECT id, name FROM users ${sql`WHERE name = ${BENIGN}`}`,
        expected: { rows: [ALICE] },
      },
      { form: 'dynamic identifier sql(name)', run: async () => sql`SELECT ${sql('name')} FROM users WHERE id = 1`, expected: { rows: [{ name: 'alice' }] } },
      {
        form: 'object helper sql(row, columns) in an INSERT',
        run: async () => {
          const tag = `pg-helper-${process.pid}`;
          const rows = await sql`INSERT INTO audit ${sql({ marker: tag }, 'marker')} RETURNING marker`;
          await sql`DELETE FROM audit WHERE marker = ${tag}`;
          return rows;
        },
        expected: { rows: [{ marker: `pg-helper-${process.pid}` }] },
      },
      {
        form: '.raw()',
        run: async () => (await sql`SELECT id, name FROM users WHERE name = ${BENIGN}`.raw()).map((row) => row.map((cell) => (Buffer.isBuffer(cell) ? cell.toString() : cell))),
        expected: { rows: [['1', 'alice']] },
      },
      {
        form: '.execute() then await',
        run: async () => {
          const query = sql`SELECT id, name FROM users WHERE name = ${BENIGN}`.execute();
          return query;
        },
        expected: { rows: [ALICE] },
      },
      {
        form: '.forEach(fn)',
        run: async () => {
          const seen: unknown[] = [];
          await sql`SELECT id, name FROM users WHERE id <= 2 ORDER BY id`.forEach((row) => void seen.push(row));
          return seen;
        },
        expected: { rows: [ALICE, { id: 2, name: 'bob' }] },
      },
      {
        form: '.cursor() async iteration',
        run: async () => {
          const seen: unknown[] = [];
          for await (const rows of sql`SELECT id, name FROM users ORDER BY id`.cursor(2)) seen.push(rows.length);
          return seen;
        },
        expected: { rows: [2, 1] },
      },
      {
        form: 'sql.begin(transaction)',
        run: async () => sql.begin(async (tx) => tx`SELECT id, name FROM users WHERE name = ${BENIGN}`),
        expected: { rows: [ALICE] },
      },
      {
        form: 'bad statement',
        run: async () => sql`SELECT * FROM no_such_table`,
        expected: { err: { class: 'PostgresError', code: '42P01', message: 'relation "no_such_table" does not exist' } },
      },
    ];

    it.each(forms)('$form', async ({ run, expected }) => {
      const outside = await observe(run);
      const inside = await asRequest(BENIGN, () => observe(run));
      expect(outside).toEqual(expected);
      expect(inside).toEqual(outside);
    });

    it('the attack string as a value or an identifier is bound or escaped: it runs as data', async () => {
      const asValue = await asRequest(ATTACK, () => observe(async () => sql`SELECT id FROM users WHERE name = ${ATTACK}`));
      expect(asValue).toEqual({ rows: [] });
      const asIdentifier = await asRequest(ATTACK, () => observe(async () => sql`SELECT ${sql(ATTACK)} FROM users`));
      expect(asIdentifier.err).toMatchObject({ class: 'PostgresError', code: '42703' });
    });
  });

  describe('refusal: the query promise rejects and the statement is never sent', () => {
    async function refused(run: (tag: string) => Promise<unknown>): Promise<Observation> {
      const log = new StatementLog('pg');
      const tags = markers();
      log.mark();
      const seen = await within(5000, 'the refused query', asRequest(ATTACK, () => observe(() => run(tags.refused))));
      expect(await within(5000, 'the next statement', sql.unsafe(`SELECT 1 AS ok /* ${tags.sentinel} */`))).toEqual([{ ok: 1 }]);
      await expectNeverReachedServer(log, tags);
      return seen;
    }
    const blocked = { err: { class: 'BlockedError', code: BLOCKED } };

    it('sql.unsafe(text)', async () => {
      expect(await refused((tag) => sql.unsafe(`SELECT id FROM users WHERE name = '${ATTACK}' /* ${tag} */`))).toMatchObject(blocked);
    });

    it('a nested sql.unsafe fragment', async () => {
      expect(await refused((tag) => sql`SELECT id FROM users WHERE name = 'x' ${sql.unsafe(`OR name = '${ATTACK}' /* ${tag} */`)}`)).toMatchObject(blocked);
    });

    it('an array of fragments', async () => {
      expect(await refused((tag) => sql`SELECT id FROM users WHERE name = 'x' ${[sql.unsafe(`OR name = '${ATTACK}'`), sql.unsafe(`/* ${tag} */`)]}`)).toMatchObject(blocked);
    });

    it('.execute() and .raw()', async () => {
      expect(await refused((tag) => sql.unsafe(`SELECT id FROM users WHERE name = '${ATTACK}' /* ${tag} */`).execute())).toMatchObject(blocked);
      expect(await refused((tag) => sql.unsafe(`SELECT id FROM users WHERE name = '${ATTACK}' /* ${tag} */`).raw())).toMatchObject(blocked);
    });

    it('.forEach(fn): no row is delivered', async () => {
      const rows: unknown[] = [];
      expect(await refused((tag) => sql.unsafe(`SELECT id FROM users WHERE name = '${ATTACK}' /* ${tag} */`).forEach((row) => void rows.push(row)))).toMatchObject(blocked);
      expect(rows).toEqual([]);
    });

    it('.cursor(): the iteration rejects', async () => {
      expect(
        await refused(async (tag) => {
          for await (const rows of sql.unsafe(`SELECT id FROM users WHERE name = '${ATTACK}' /* ${tag} */`).cursor(1)) void rows;
        }),
      ).toMatchObject(blocked);
    });

    it('inside sql.begin(): the refusal propagates, the transaction rolls back and rejects', async () => {
      expect(
        await refused((tag) =>
          sql.begin(async (tx) => {
            await tx`INSERT INTO audit VALUES ('pg-tx')`;
            return tx.unsafe(`SELECT id FROM users WHERE name = '${ATTACK}' /* ${tag} */`);
          }),
        ),
      ).toMatchObject(blocked);
      expect(await sql`SELECT marker FROM audit WHERE marker = 'pg-tx'`).toEqual([]);
    });

    it('a refused query is settled once: awaiting it again rejects with the same error and sends nothing', async () => {
      const seen = await refused(async (tag) => {
        const query = sql.unsafe(`SELECT id FROM users WHERE name = '${ATTACK}' /* ${tag} */`);
        const first = await query.then(() => undefined, (e: Error) => e);
        const second = await query.then(() => undefined, (e: Error) => e);
        expect(second).toBe(first);
        throw first;
      });
      expect(seen).toMatchObject(blocked);
    });
  });
});
