/**
 * hooks/pg.ts against a real PostgreSQL, for every supported pg copy: the root devDependency and the
 * oldest supported, pinned in test/versions/pg-8.0.3. The shared SQL driver suite (sql-drivers.shared.ts)
 * runs the common checks; this file is pg's adapter: its call forms (text, config, submittables, pool) and
 * the shapes pg fails them in.
 */
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as PgModule from 'pg';
import { REPO } from '../helpers/app.js';
import { StatementLog } from '../helpers/db.js';
import { PG_URL } from '../helpers/services.js';
import { ALICE, ATTACK, BENIGN, BLOCKED, kindOf, markers, versionOf } from '../helpers/observe.js';
import { attackSql, describeSqlDriver, errorOf, expectNeverReachedServer, sqlEvent, viaCallback as callbackForm, type Form, type Refusal } from './sql-drivers.shared.js';

const require = createRequire(import.meta.url);

type Pg = typeof PgModule;
type Client = PgModule.Client;
type Pool = PgModule.Pool;
type Callback = (this: unknown, err: Error | null, res?: PgModule.QueryResult) => void;
/** pg-cursor has no type declarations. */
interface Cursor {
  read(rows: number): Promise<unknown[]>;
  read(rows: number, cb: (err: Error | undefined, rows: unknown[]) => void): void;
  close(): Promise<void>;
}
type CursorClass = new (text: string, values?: unknown[]) => Cursor & PgModule.Submittable;
type QueryStreamClass = new (text: string, values?: unknown[]) => NodeJS.ReadableStream & PgModule.Submittable;

interface Fixture {
  pg: Pg;
  client: Client;
  pool: Pool;
  Cursor: CursorClass;
  QueryStream: QueryStreamClass;
}

const COPIES = [
  { label: 'root devDependency', dir: join(REPO, 'node_modules/pg'), root: true },
  { label: 'pinned', dir: join(REPO, 'test/versions/pg-8.0.3/node_modules/pg'), root: false },
].map((copy) => ({ ...copy, version: versionOf(copy.dir) }));

// ---- what a caller can observe ------------------------------------------------------------------------

function resultShape(res: PgModule.QueryResult | undefined) {
  return res && { class: kindOf(res), command: res.command, rowCount: res.rowCount, rows: res.rows, fields: res.fields.map((f) => f.name) };
}

function errorShape(err: unknown) {
  const e = err as { code?: unknown; message?: unknown; severity?: unknown };
  return { class: kindOf(err), code: e.code, message: e.message, severity: e.severity };
}

interface Observation {
  returned: string;
  sync?: boolean;
  self?: string;
  res?: ReturnType<typeof resultShape>;
  rows?: unknown[];
  err?: ReturnType<typeof errorShape>;
}

/** Calls a callback-style form; reports its return value, whether the callback came synchronously, `this` and the outcome. */
const viaCallback = (call: (cb: Callback) => unknown): Promise<Observation> =>
  callbackForm(call as (cb: (this: unknown, err: Error | null, res?: PgModule.QueryResult) => void) => unknown, (err, res) =>
    err ? { err: errorShape(err) } : { res: resultShape(res) },
  );

async function viaPromise(call: () => unknown): Promise<Observation> {
  const returned = call();
  try {
    return { returned: kindOf(returned), res: resultShape(await (returned as Promise<PgModule.QueryResult>)) };
  } catch (err) {
    return { returned: kindOf(returned), err: errorShape(err) };
  }
}

const byName = 'SELECT id, name FROM users WHERE name = $1';
const literal = "SELECT id, name FROM users WHERE name = 'alice'";
const pgEvent = (op: string, sql: string) => sqlEvent(op, sql, 'postgres', 'postgresql');

function forms(copy: { root: boolean }): Array<Form<Fixture>> {
  const result = { class: 'Result', command: 'SELECT', rowCount: 1, rows: [ALICE], fields: ['id', 'name'] };
  const asCallback = { returned: 'undefined', sync: false, self: 'Query', res: result };
  const missingTable = { code: '42P01', message: 'relation "no_such_table" does not exist', severity: 'ERROR' };
  let nameSeq = 0;
  return [
    { form: 'query(text)', run: ({ client }) => viaPromise(() => client.query(literal)), expected: { returned: 'Promise', res: result } },
    { form: 'query(text, values)', run: ({ client }) => viaPromise(() => client.query(byName, [BENIGN])), expected: { returned: 'Promise', res: result } },
    { form: 'query(config)', run: ({ client }) => viaPromise(() => client.query({ text: byName, values: [BENIGN] })), expected: { returned: 'Promise', res: result } },
    {
      form: "query({ rowMode: 'array' })",
      run: ({ client }) => viaPromise(() => client.query({ text: byName, values: [BENIGN], rowMode: 'array' })),
      expected: { returned: 'Promise', res: { ...result, rows: [[1, 'alice']] } },
    },
    { form: 'query(text, cb)', run: ({ client }) => viaCallback((cb) => client.query(literal, cb)), expected: asCallback },
    { form: 'query(text, values, cb)', run: ({ client }) => viaCallback((cb) => client.query(byName, [BENIGN], cb)), expected: asCallback },
    { form: 'query(config, cb)', run: ({ client }) => viaCallback((cb) => client.query({ text: byName, values: [BENIGN] }, cb)), expected: asCallback },
    {
      form: 'query({ text, values, callback })',
      run: ({ client }) => viaCallback((cb) => client.query({ text: byName, values: [BENIGN], callback: cb } as PgModule.QueryConfig)),
      expected: asCallback,
    },
    {
      form: 'query(new Query(text, values, cb))',
      run: ({ pg, client }) => viaCallback((cb) => client.query(new pg.Query(byName, [BENIGN], cb as never))),
      expected: { ...asCallback, returned: 'Query' },
    },
    {
      form: 'query(new Query(text), cb)',
      run: ({ pg, client }) => viaCallback((cb) => client.query(new pg.Query(literal) as never, cb as never)),
      expected: { ...asCallback, returned: 'Query' },
    },
    {
      form: "query(new Query(text, values)) with 'row' and 'end' events",
      run: ({ pg, client }) =>
        new Promise<Observation>((resolve, reject) => {
          const rows: unknown[] = [];
          const query = new pg.Query(byName, [BENIGN]) as unknown as NodeJS.EventEmitter & PgModule.Submittable;
          const returned = client.query(query);
          query.on('row', (row: unknown) => rows.push(row));
          query.on('error', reject);
          query.on('end', (res: PgModule.QueryResult) => resolve({ returned: kindOf(returned), rows, res: resultShape(res) }));
        }),
      expected: { returned: 'Query', rows: [ALICE], res: { ...result, rows: [] } },
    },
    {
      form: 'named prepared statement: { name, text, values } then { name, values }',
      run: async ({ client }) => {
        const name = `sg-by-name-${++nameSeq}`;
        const first = await viaPromise(() => client.query({ name, text: byName, values: [BENIGN] }));
        const again = await viaPromise(() => client.query({ name, values: ['bob'] } as PgModule.QueryConfig));
        return { returned: first.returned, res: first.res, rows: again.res?.rows };
      },
      expected: { returned: 'Promise', res: result, rows: [{ id: 2, name: 'bob' }] },
    },
    { form: 'bad statement, promise', run: ({ client }) => viaPromise(() => client.query('SELECT * FROM no_such_table')), expected: { returned: 'Promise', err: missingTable } },
    {
      form: 'bad statement, callback',
      run: ({ client }) => viaCallback((cb) => client.query('SELECT * FROM no_such_table', cb)),
      expected: { returned: 'undefined', sync: false, self: 'Query', err: missingTable },
    },
    { form: 'Pool.query(text, values)', run: ({ pool }) => viaPromise(() => pool.query(byName, [BENIGN])), expected: { returned: 'Promise', res: result } },
    {
      form: 'Pool.query(text, values, cb)',
      run: ({ pool }) => viaCallback((cb) => pool.query(byName, [BENIGN], cb as never)),
      expected: { returned: 'undefined', sync: false, self: 'undefined', res: result },
    },
    {
      form: 'Pool.connect(cb), then client.query(text, cb)',
      run: ({ pool }) =>
        viaCallback((cb) =>
          pool.connect((err, pooled, release) => {
            if (err) return cb(err);
            pooled!.query(literal, function (this: unknown, error: Error | null, res?: PgModule.QueryResult) {
              release();
              cb.call(this, error, res);
            });
          }),
        ),
      expected: asCallback,
    },
    {
      form: 'Pool.connect() promise, then client.query(text)',
      run: async ({ pool }) => {
        const pooled = await pool.connect();
        try {
          return await viaPromise(() => pooled.query(literal));
        } finally {
          pooled.release();
        }
      },
      expected: { returned: 'Promise', res: result },
    },
    ...(copy.root
      ? ([
          {
            form: 'query(new Cursor(text, values)) then cursor.read',
            run: async ({ client, Cursor }) => {
              const cursor = new Cursor(byName, [BENIGN]);
              const returned = client.query(cursor);
              const rows = await cursor.read(10);
              await cursor.close();
              return { returned: returned === cursor ? 'the cursor' : kindOf(returned), rows };
            },
            expected: { returned: 'the cursor', rows: [ALICE] },
          },
          {
            form: 'query(new QueryStream(text, values)) streams its rows',
            run: async ({ client, QueryStream }) => {
              const stream = new QueryStream(byName, [BENIGN]);
              const returned = client.query(stream);
              const rows: unknown[] = [];
              for await (const row of stream) rows.push(row);
              return { returned: returned === stream ? 'the stream' : kindOf(returned), rows };
            },
            expected: { returned: 'the stream', rows: [ALICE] },
          },
        ] satisfies Array<Form<Fixture>>)
      : []),
  ];
}

// ---- refusal in pg's own shape -------------------------------------------------------------------------

function refusals(copy: { root: boolean }): Array<Refusal<Fixture>> {
  const callbackForms: Array<[string, (client: Client, sql: string, cb: Callback) => unknown]> = [
    ['query(text, cb)', (client, sql, cb) => client.query(sql, cb)],
    ['query(text, values, cb)', (client, sql, cb) => client.query(sql, [], cb)],
    ['query(config, cb)', (client, sql, cb) => client.query({ text: sql }, cb)],
    ['query({ text, callback })', (client, sql, cb) => client.query({ text: sql, callback: cb } as PgModule.QueryConfig)],
  ];
  const list: Array<Refusal<Fixture>> = [
    {
      name: 'query(text) → the promise rejects',
      run: async ({ client }, refused) => {
        const error = await refused(async (sql) => {
          const returned = client.query(sql);
          expect(returned).toBeInstanceOf(Promise);
          return (await returned.then(() => undefined, (e: unknown) => e)) as Error & { code?: string };
        });
        expect(error.code).toBe(BLOCKED);
      },
    },
    ...callbackForms.map(([form, call]): Refusal<Fixture> => ({
      name: `${form} → the callback gets the error on a later tick; the call returns undefined and does not throw`,
      run: async ({ client }, refused) => {
        const error = await refused(
          (sql) =>
            new Promise<Error & { code?: string }>((resolve) => {
              let sync = true;
              const returned = call(client, sql, (err) => {
                expect(sync).toBe(false);
                resolve(err as Error);
              });
              expect(returned).toBeUndefined();
              sync = false;
            }),
        );
        expect(error.code).toBe(BLOCKED);
      },
    })),
    {
      name: 'query(new Query(text, cb)) → returns the Query, whose callback gets the error',
      run: async ({ pg, client }, refused) => {
        const error = await refused((sql) =>
          errorOf((deliver) => {
            const query = new pg.Query(sql, [], deliver as never);
            expect(client.query(query)).toBe(query);
          }),
        );
        expect(error.code).toBe(BLOCKED);
      },
    },
    {
      name: 'query(new Query(text), cb) → the callback passed next to the submittable gets the error',
      run: async ({ pg, client }, refused) => {
        const error = await refused((sql) => errorOf((deliver) => void client.query(new pg.Query(sql) as never, deliver as never)));
        expect(error.code).toBe(BLOCKED);
      },
    },
    {
      name: "query(new Query(text)) → 'error' event",
      run: async ({ pg, client }, refused) => {
        const error = await refused((sql) =>
          errorOf((deliver) => {
            const query = new pg.Query(sql) as unknown as NodeJS.EventEmitter & PgModule.Submittable;
            query.on('error', deliver);
            query.on('end', () => deliver(undefined));
            expect(client.query(query)).toBe(query);
          }),
        );
        expect(error.code).toBe(BLOCKED);
      },
    },
  ];
  // Submittables from pg-cursor / pg-query-stream are installed against the root copy only.
  if (copy.root) {
    list.push(
      {
        name: 'pg-cursor: cursor.read gets the error (callback and promise)',
        run: async ({ client, Cursor }, refused) => {
          const error = await refused(async (sql) => {
            const cursor = new Cursor(sql);
            expect(client.query(cursor)).toBe(cursor);
            const viaCb = await errorOf((deliver) => cursor.read(10, deliver));
            expect(viaCb.code).toBe(BLOCKED);
            return (await cursor.read(10).then(() => undefined, (e: unknown) => e)) as Error & { code?: string };
          });
          expect(error.code).toBe(BLOCKED);
        },
      },
      {
        name: "pg-query-stream: the stream fails with 'error'",
        run: async ({ client, QueryStream }, refused) => {
          const error = await refused(async (sql) => {
            const stream = new QueryStream(sql);
            expect(client.query(stream)).toBe(stream);
            const failed = new Promise<Error & { code?: string }>((resolve) => stream.on('error', resolve));
            const rows: unknown[] = [];
            const iteration = (async () => {
              for await (const row of stream) rows.push(row);
            })().then(() => undefined, (e: unknown) => e);
            expect(await iteration).toBe(await failed);
            expect(rows).toEqual([]);
            return failed;
          });
          expect(error.code).toBe(BLOCKED);
        },
      },
    );
  }
  list.push(
    {
      name: 'Pool.query → rejects (promise) / calls back (callback), costs no connection, and the pool stays usable',
      run: async ({ pool }, _refused, asRequest) => {
        const log = new StatementLog('pg');
        const tags = markers();
        log.mark();
        const rejected = await asRequest(ATTACK, () => pool.query(attackSql(tags.refused)).then(() => undefined, (e: unknown) => e));
        expect(rejected).toMatchObject({ code: BLOCKED });
        const calledBack = await asRequest(ATTACK, () =>
          errorOf((deliver) => expect(pool.query(attackSql(tags.refused), [], deliver as never)).toBeUndefined()),
        );
        expect(calledBack.code).toBe(BLOCKED);
        // max: 1 — a leaked checkout would make this wait forever.
        const next = await asRequest(ATTACK, () => pool.query(`SELECT 2 AS ok /* ${tags.sentinel} */`));
        expect(next.rows).toEqual([{ ok: 2 }]);
        expect(pool.waitingCount).toBe(0);
        await expectNeverReachedServer(log, tags);
      },
    },
    {
      name: 'a pooled client refused mid-checkout is released normally and the next checkout gets it',
      run: async ({ pool }, _refused, asRequest) => {
        const log = new StatementLog('pg');
        const tags = markers();
        log.mark();
        const error = await asRequest(ATTACK, async () => {
          const pooled = await pool.connect();
          try {
            return await pooled.query(attackSql(tags.refused)).then(() => undefined, (e: unknown) => e);
          } finally {
            pooled.release();
          }
        });
        expect(error).toMatchObject({ code: BLOCKED });
        const next = await pool.query(`SELECT 3 AS ok /* ${tags.sentinel} */`);
        expect(next.rows).toEqual([{ ok: 3 }]);
        await expectNeverReachedServer(log, tags);
      },
    },
  );
  return list;
}

// ---- the suite ------------------------------------------------------------------------------------------

describeSqlDriver<Fixture>({
  driver: 'pg',
  db: 'pg',
  copies: COPIES,
  async open(copy) {
    const pg = require(copy.dir) as Pg;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
    const root = copy.root;
    return {
      pg,
      client,
      pool,
      Cursor: (root ? require('pg-cursor') : undefined) as CursorClass,
      QueryStream: (root ? require('pg-query-stream') : undefined) as QueryStreamClass,
    };
  },
  async close({ client, pool }) {
    await client.end();
    await pool.end();
  },
  patchedTitle: "is patched: Client.query, Pool.query and Pool.connect are wrapped, with the originals' name and length",
  patched: ({ pg }) => [
    ['Client.query', pg.Client.prototype.query],
    ['Pool.query', pg.Pool.prototype.query],
    ['Pool.connect', pg.Pool.prototype.connect],
  ],
  forms,
  sentinel: async ({ client }, sql) => (await client.query(sql)).rows,
  refusalTitle: "refusal in pg's own shape (attack input, block mode)",
  refusals,
  events: (copy) => [
    { call: 'client.query(text, values)', run: ({ client }) => client.query(byName, [BENIGN]), expected: [pgEvent('pg.query', byName)] },
    { call: 'client.query(config)', run: ({ client }) => client.query({ text: literal }), expected: [pgEvent('pg.query', literal)] },
    {
      call: 'client.query(new Query(text, values))',
      run: ({ pg, client }) => new Promise((resolve) => client.query(new pg.Query(byName, [BENIGN], resolve as never))),
      expected: [pgEvent('pg.query', byName)],
    },
    {
      call: 'a named statement run again by name only carries no text: nothing new to judge',
      run: async ({ client }) => {
        await client.query({ name: 'sg-event-by-name', text: byName, values: [BENIGN] });
        await client.query({ name: 'sg-event-by-name', values: ['bob'] } as PgModule.QueryConfig);
      },
      expected: [pgEvent('pg.query', byName)],
    },
    // Pool.query delegates to Client.query with the same text: judged once, as the pool call the app made.
    { call: 'pool.query(text, values)', run: ({ pool }) => pool.query(byName, [BENIGN]), expected: [pgEvent('pg.pool.query', byName)] },
    {
      call: 'pool.connect(), then client.query(text)',
      run: async ({ pool }) => {
        const pooled = await pool.connect();
        await pooled.query(literal).finally(() => pooled.release());
      },
      expected: [pgEvent('pg.query', literal)],
    },
    { call: 'a refused statement', input: ATTACK, run: ({ client }) => client.query(attackSql('event')), expected: [pgEvent('pg.query', attackSql('event'))] },
    ...(copy.root
      ? [
          {
            call: 'client.query(new Cursor(text)): the text the cursor carries',
            run: async ({ client, Cursor }: Fixture) => {
              const cursor = client.query(new Cursor(byName, [BENIGN]));
              await cursor.read(1);
              await cursor.close();
            },
            expected: [pgEvent('pg.query', byName)],
          },
        ]
      : []),
  ],
  extra: {
    unchanged({ fx, asRequest }, copy) {
      it('a bad statement fails with the same error class inside and outside a request', async () => {
        const { pg, client } = fx();
        const outside = await client.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
        const inside = await asRequest(BENIGN, () => client.query('SELECT * FROM no_such_table').catch((e: unknown) => e));
        expect((outside as Error).constructor).toBe((inside as Error).constructor);
        if (copy.root) expect(inside).toBeInstanceOf(pg.DatabaseError);
      });

      it("the promise is the client's configured Promise type", async () => {
        const { pg } = fx();
        class TaggedPromise<T> extends Promise<T> {}
        const tagged = new pg.Client({ connectionString: PG_URL, Promise: TaggedPromise } as PgModule.ClientConfig);
        await tagged.connect();
        try {
          const outside = tagged.query('SELECT 1');
          const inside = asRequest(BENIGN, () => tagged.query('SELECT 1'));
          expect(outside).toBeInstanceOf(TaggedPromise);
          expect(inside).toBeInstanceOf(TaggedPromise);
          await Promise.all([outside, inside]);
          const refused = asRequest(ATTACK, () => tagged.query(attackSql('tagged')));
          expect(refused).toBeInstanceOf(TaggedPromise);
          await expect(refused).rejects.toMatchObject({ code: BLOCKED });
        } finally {
          await tagged.end();
        }
      });
    },
    copy: concurrency,
  },
});

/**
 * A minimal promise type that runs its reactions synchronously where it is settled (as some promise libraries of old
 * did), not in the context they were registered in.
 */
class EagerPromise<T> {
  private settled: { ok: boolean; value: unknown } | undefined;
  private readonly waiting: Array<() => void> = [];

  constructor(executor: (resolve: (value: T) => void, reject: (error: unknown) => void) => void) {
    const settle = (ok: boolean, value: unknown) => {
      if (this.settled) return;
      this.settled = { ok, value };
      for (const run of this.waiting.splice(0)) run();
    };
    executor(
      (value) => settle(true, value),
      (error) => settle(false, error),
    );
  }

  then<R>(onValue?: (value: T) => R, onError?: (error: unknown) => R): EagerPromise<R> {
    return new EagerPromise<R>((resolve, reject) => {
      const run = () => {
        const { ok, value } = this.settled!;
        try {
          if (ok) (onValue ? resolve(onValue(value as T)) : resolve(value as R));
          else if (onError) resolve(onError(value));
          else reject(value);
        } catch (error) {
          reject(error);
        }
      };
      if (this.settled) run();
      else this.waiting.push(run);
    });
  }

  /** The agent refuses a statement with the pool's Promise type, as pg-pool would fail it. */
  static reject(error: unknown): EagerPromise<never> {
    return new EagerPromise<never>((_resolve, reject) => reject(error));
  }

  /** pg-pool marks its promises handled with `catch`. */
  catch<R>(onError: (error: unknown) => R): EagerPromise<unknown> {
    return this.then(undefined, onError);
  }
}

function concurrency({ fx, asRequest }: { fx(): Fixture; asRequest<R>(q: string, fn: () => R): R }): void {
  describe('context under concurrency: two requests share a pool of one', () => {
    const A = "' OR 'a'='a";
    const B = "' OR 'b'='b";
    /** Matches every user when `payload` is spliced in: an attack when it is this request's input, plain SQL otherwise. */
    const probe = (payload: string) => `SELECT count(*)::int AS n FROM users WHERE name = '${payload}'`;

    interface ChainOutcome {
      first: Error | null;
      otherRows: unknown[] | undefined;
      otherViaQuery: unknown[] | undefined;
      ownError: (Error & { code?: string }) | null;
    }

    /**
     * One request's work, each query issued from the previous one's callback — callbacks that pg calls from
     * the pooled socket, whose async context belongs to whichever request opened the connection.
     */
    function request(label: string, own: string, other: string, steps: string[], sharedPool: Pool): Promise<ChainOutcome> {
      const { pg } = fx();
      return asRequest(own, () =>
        new Promise<ChainOutcome>((resolve) => {
          sharedPool.query('SELECT 1 AS one', (first) => {
            steps.push(`${label}:first`);
            sharedPool.connect((err1, c1, release1) => {
              if (err1) throw err1;
              c1!.query(probe(other), (err, res) => {
                if (err) steps.push(`${label}:other refused`);
                const otherRows = res?.rows;
                c1!.query(new pg.Query(probe(other), [], ((err2: Error | null, res2?: PgModule.QueryResult) => {
                  steps.push(`${label}:released`);
                  release1();
                  sharedPool.connect((err3, c2, release2) => {
                    if (err3) throw err3;
                    steps.push(`${label}:own`);
                    c2!.query(probe(own), (ownError) => {
                      release2();
                      resolve({ first: first ?? null, otherRows, otherViaQuery: err2 ? undefined : res2?.rows, ownError });
                    });
                  });
                }) as never));
              });
            });
          });
        }),
      );
    }

    it('each statement is judged against its own request only, also after waiting for the pooled connection', async () => {
      const shared = new (fx().pg.Pool)({ connectionString: PG_URL, max: 1 });
      try {
        const steps: string[] = [];
        const [a, b] = await Promise.all([request('A', A, B, steps, shared), request('B', B, A, steps, shared)]);
        for (const outcome of [a, b]) {
          expect(outcome.first).toBeNull();
          // The other request's attack string is not this request's input: the statement runs.
          expect(outcome.otherRows).toEqual([{ n: 3 }]);
          expect(outcome.otherViaQuery).toEqual([{ n: 3 }]);
          expect(outcome.ownError?.code).toBe(BLOCKED);
        }
        expect(steps).not.toContain('A:other refused');
        expect(steps).not.toContain('B:other refused');
        // The requests really interleaved: each one's own statement ran after the other had held the connection.
        expect(steps.indexOf('B:released')).toBeLessThan(steps.indexOf('A:own'));
        expect(steps.indexOf('A:released')).toBeLessThan(steps.indexOf('B:own'));
        expect(steps.indexOf('B:first')).toBeLessThan(steps.indexOf('A:released'));
      } finally {
        await shared.end();
      }
    });

    // pg-pool settles `pool.query`'s promise from the pooled socket, in the context of whichever request opened the
    // connection; the agent does not re-enter the caller's request for that (a native promise runs each reaction in
    // the context its `then` or `await` was called in). The caller's code after it must still be its own.
    it('pool.query in promise form: each request goes on in its own context after every await, whoever settles it', async () => {
      const shared = new (fx().pg.Pool)({ connectionString: PG_URL, max: 1 });
      try {
        const steps: string[] = [];
        const run = (label: string, own: string, other: string) =>
          asRequest(own, async () => {
            await shared.query('SELECT 1 AS one');
            steps.push(`${label}:first`);
            const otherRows = (await shared.query(probe(other))).rows;
            steps.push(`${label}:other`);
            const viaThen = await shared.query('SELECT 2 AS two').then(() => shared.query(probe(own)).then(() => null, (e: Error & { code?: string }) => e));
            const ownError = await shared.query(probe(own)).then(() => null, (e: Error & { code?: string }) => e);
            steps.push(`${label}:own`);
            return { otherRows, viaThen, ownError };
          });
        const [a, b] = await Promise.all([run('A', A, B), run('B', B, A)]);
        for (const outcome of [a, b]) {
          expect(outcome.otherRows).toEqual([{ n: 3 }]);
          expect(outcome.viaThen?.code).toBe(BLOCKED);
          expect(outcome.ownError?.code).toBe(BLOCKED);
        }
        // The requests took turns on the one connection (A opened it: B's queries were settled from A's socket).
        expect(steps.indexOf('B:first')).toBeLessThan(steps.indexOf('A:own'));
        expect(steps.indexOf('A:first')).toBeLessThan(steps.indexOf('B:own'));
      } finally {
        await shared.end();
      }
    });

    // A promise type of the app's own may run its reactions where it is settled; the agent then keeps re-entering the
    // caller's request for pg-pool's callback, as for every callback-style call.
    it("pool.query with the pool's own Promise type: reactions it runs where it is settled are in the caller's request", async () => {
      const pool = new (fx().pg.Pool)({ connectionString: PG_URL, max: 1, Promise: EagerPromise } as PgModule.PoolConfig);
      try {
        // B opens the pool's one connection: its socket carries B's request from then on.
        await asRequest(B, () => pool.query('SELECT 1 AS one'));
        const ownError = await asRequest(
          A,
          () =>
            new Promise<(Error & { code?: string }) | null>((resolve) => {
              (pool.query('SELECT 1 AS one') as unknown as EagerPromise<unknown>).then(() => {
                pool.query(probe(A)).then(
                  () => resolve(null),
                  (e: Error & { code?: string }) => resolve(e),
                );
              });
            }),
        );
        expect(ownError?.code).toBe(BLOCKED);
      } finally {
        await pool.end();
      }
    });
  });
}
