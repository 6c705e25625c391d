/**
 * hooks/mysql2.ts against a real MariaDB, for every supported mysql2 copy: the root devDependency and the
 * pinned copies in test/versions (1.0.0 … 3.0.0).
 *
 * Each call form runs twice — outside any request, where the wrapper passes straight through to mysql2, and
 * inside `runWithContext` with benign input — and both runs must observe the same thing. Attack input fails
 * each form the way mysql2 fails a command; the server's general log shows the statement never arrived and
 * a pool of one connection is never left short of it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { REPO } from '../helpers/app.js';
import { resetMysql, StatementLog } from '../helpers/db.js';
import { requireMysql } from '../helpers/services.js';
import { startAgentInProcess } from '../helpers/agent.js';
import { ALICE, ATTACK, BENIGN, BLOCKED, MYSQL_OPTIONS as OPTIONS, kindOf, markers, versionOf, within } from '../helpers/observe.js';

const require = createRequire(import.meta.url);

/** The slice of mysql2's API these tests use, common to 1.0.0 … 3.x. */
type Callback = (this: unknown, err: (Error & { code?: string }) | null, rows?: unknown, fields?: Array<{ name: string }>) => void;
interface Command extends EventEmitter {
  stream(): Readable;
}
interface Statement {
  execute(values: unknown[], cb: Callback): unknown;
  close(): void;
}
type Values = unknown[] | Record<string, unknown>;
interface Connection {
  query(sql: string | { sql: string; values?: Values }, values?: Values | Callback, cb?: Callback): Command;
  execute(sql: string, values: Values, cb?: Callback): EventEmitter;
  prepare(sql: string, cb: (err: (Error & { code?: string }) | null, statement?: Statement) => void): EventEmitter;
  end(cb?: () => void): void;
}
interface PoolConnection extends Connection {
  release(): void;
}
interface Pool {
  query(sql: string, values?: Values | Callback, cb?: Callback): Command;
  execute(sql: string, values: Values, cb: Callback): void;
  getConnection(cb: (err: Error | null, conn: PoolConnection) => void): void;
  end(cb?: () => void): void;
}
interface Mysql2 {
  createConnection(options: object): Connection;
  createPool(options: object): Pool;
  Connection: { prototype: Record<string, unknown> };
}
type Rows = [unknown, Array<{ name: string }> | undefined];
interface PromiseConnection {
  query(sql: string, values?: unknown): Promise<Rows>;
  execute(sql: string, values?: unknown): Promise<Rows>;
  prepare?(sql: string): Promise<{ execute(values: unknown[]): Promise<Rows>; close(): void }>;
  release?(): void;
  end(): Promise<void>;
}
interface PromisePool {
  query(sql: string, values?: unknown): Promise<Rows>;
  execute(sql: string, values?: unknown): Promise<Rows>;
  getConnection(): Promise<PromiseConnection>;
  end(): Promise<void>;
}
interface Mysql2Promise {
  createConnection(options: object): Promise<PromiseConnection>;
  createPool(options: object): PromisePool;
}


const pinned = (version: string) => join(REPO, `test/versions/mysql2-${version}/node_modules/mysql2`);
const COPIES = [
  { label: 'root devDependency', dir: join(REPO, 'node_modules/mysql2') },
  ...['1.0.0', '1.7.0', '2.0.0', '2.3.3', '3.0.0'].map((version) => ({ label: 'pinned', dir: pinned(version) })),
].map((copy) => ({ ...copy, version: versionOf(copy.dir) }));

let runWithContext: <R>(input: { query: Record<string, string> }, fn: () => R) => R;
let isWrapped: (fn: unknown) => boolean;
let originalOf: <F>(fn: F) => F;
const asRequest = <R>(q: string, fn: () => R): R => runWithContext({ query: { q } }, fn);

beforeAll(async () => {
  await requireMysql();
  await resetMysql();
  ({ runWithContext, isWrapped, originalOf } = startAgentInProcess());
});

// ---- what a caller can observe ------------------------------------------------------------------------


/** Rows as plain data (mysql2 returns TextRow/BinaryRow instances depending on the version). */
const plain = (rows: unknown) => JSON.parse(JSON.stringify(rows)) as unknown;

function errorShape(err: unknown) {
  const e = err as { code?: unknown; errno?: unknown; sqlState?: unknown; message?: unknown };
  return { class: kindOf(err), code: e.code, errno: e.errno, sqlState: e.sqlState, message: e.message };
}

/** What a form must show; the two runs are compared in full. */
type Expected = { [K in keyof Observation]?: unknown };

interface Observation {
  returned?: string;
  sync?: boolean;
  self?: string;
  rows?: unknown;
  fields?: string[];
  err?: ReturnType<typeof errorShape>;
}

function viaCallback(call: (cb: Callback) => unknown): Promise<Observation> {
  return new Promise((resolve) => {
    let sync = true;
    let returned: unknown;
    returned = call(function (this: unknown, err, rows, fields) {
      const seen = { sync, self: kindOf(this), ...(err ? { err: errorShape(err) } : { rows: plain(rows), fields: fields?.map((f) => f.name) }) };
      setImmediate(() => resolve({ returned: kindOf(returned), ...seen }));
    });
    sync = false;
  });
}

async function viaPromise(call: () => Promise<Rows>): Promise<Observation> {
  const returned = call();
  try {
    const [rows, fields] = await returned;
    return { returned: kindOf(returned), rows: plain(rows), fields: fields?.map((f) => f.name) };
  } catch (err) {
    return { returned: kindOf(returned), err: errorShape(err) };
  }
}

/** Fails instead of hanging when a pool is left without its connection. */

/** The error a callback-style call delivers; fails the test if it succeeds. */
function errorOf(run: (deliver: (err: unknown) => void) => void): Promise<Error & { code?: string }> {
  return within(
    5000,
    'the refused call',
    new Promise((resolve, reject) =>
      run((err) => {
        if (err) resolve(err as Error);
        else reject(new Error('the call succeeded'));
      }),
    ),
  );
}

// ---- the server's view -----------------------------------------------------------------------------------

const attackSql = (tag: string) => `SELECT id, name FROM users WHERE name = '${ATTACK}' /* ${tag} */`;
const sentinelSql = (tag: string) => `SELECT 1 AS ok /* ${tag} */`;

async function expectNeverReachedServer(log: StatementLog, tags: ReturnType<typeof markers>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!log.since().includes(tags.sentinel)) {
    if (Date.now() > deadline) throw new Error(`the sentinel statement ${tags.sentinel} never appeared in the general log`);
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(log.since()).not.toContain(tags.refused);
}

const callback = <T>(run: (cb: (err: Error | null, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => run((err, value) => (err ? reject(err) : resolve(value as T))));

// ---- per copy ----------------------------------------------------------------------------------------------

describe.each(COPIES)('mysql2 $version ($label)', (copy) => {
  let mysql: Mysql2;
  let mysqlPromise: Mysql2Promise;
  let conn: Connection;
  let named: Connection;
  let pool: Pool;
  let promiseConn: PromiseConnection;
  let promisePool: PromisePool;

  beforeAll(async () => {
    mysql = require(copy.dir) as Mysql2;
    mysqlPromise = require(join(copy.dir, 'promise')) as Mysql2Promise;
    conn = mysql.createConnection(OPTIONS);
    named = mysql.createConnection({ ...OPTIONS, namedPlaceholders: true });
    pool = mysql.createPool({ ...OPTIONS, connectionLimit: 1 });
    promiseConn = await mysqlPromise.createConnection(OPTIONS);
    promisePool = mysqlPromise.createPool({ ...OPTIONS, connectionLimit: 1 });
  });

  afterAll(async () => {
    await Promise.all([
      ...[conn, named].map((c) => c && new Promise<void>((r) => c.end(() => r()))),
      pool && new Promise<void>((r) => pool.end(() => r())),
      promiseConn?.end(),
      promisePool?.end(),
    ]);
  });

  it("is patched: Connection query/execute/prepare and Pool getConnection are wrapped, with the originals' name and length", () => {
    const poolProto = Object.getPrototypeOf(pool) as Record<string, unknown>;
    const methods: Array<[string, unknown]> = [
      ['Connection.query', mysql.Connection.prototype.query],
      ['Connection.execute', mysql.Connection.prototype.execute],
      ['Connection.prepare', mysql.Connection.prototype.prepare],
      ['Pool.getConnection', poolProto.getConnection],
    ];
    for (const [label, fn] of methods) {
      const original = originalOf(fn) as (...args: unknown[]) => unknown;
      expect(isWrapped(fn), label).toBe(true);
      expect(original, label).not.toBe(fn);
      expect((fn as typeof original).name, label).toBe(original.name);
      expect((fn as typeof original).length, label).toBe(original.length);
    }
  });

  describe('unpatched behaviour is preserved, outside and inside a request with benign input', () => {
    const byName = 'SELECT id, name FROM users WHERE name = ?';
    const literal = "SELECT id, name FROM users WHERE name = 'alice'";
    const fields = ['id', 'name'];
    const queried = { returned: 'Query', sync: false, self: 'Query', rows: [ALICE], fields };
    const promised = { returned: 'Promise', rows: [ALICE], fields };
    // (sqlState is '#42S02' in 1.0.0: compared between the two runs only)
    const missingTable = { code: 'ER_NO_SUCH_TABLE', errno: 1146, message: "Table 'stepguard.no_such_table' doesn't exist" };

    // mysql2 caches prepared statements per connection by text, and close() leaves the closed one cached:
    // each run prepares a text of its own so that both runs reach the server.
    let prepareSeq = 0;
    const uncached = (sql: string) => `${sql} /* run ${++prepareSeq} */`;

    const forms: Array<{ form: string; run: () => Promise<Observation>; expected: Expected }> = [
      { form: 'query(sql, cb)', run: () => viaCallback((cb) => conn.query(literal, cb)), expected: queried },
      { form: 'query(sql, values, cb)', run: () => viaCallback((cb) => conn.query(byName, [BENIGN], cb)), expected: queried },
      { form: 'query({ sql, values }, cb)', run: () => viaCallback((cb) => conn.query({ sql: byName, values: [BENIGN] }, cb)), expected: queried },
      {
        form: 'execute(sql, values, cb)',
        run: () => viaCallback((cb) => conn.execute(byName, [BENIGN], cb)),
        expected: { returned: 'Execute', sync: false, rows: [ALICE], fields },
      },
      {
        form: 'prepare(sql, cb), then statement.execute(values, cb)',
        run: () =>
          viaCallback((cb) =>
            conn.prepare(uncached(byName), (err, statement) => {
              if (err) return cb(err);
              statement!.execute([BENIGN], function (this: unknown, error, rows, f) {
                statement!.close();
                cb.call(this, error, rows, f);
              });
            }),
          ),
        expected: { returned: 'Prepare', sync: false, rows: [ALICE], fields },
      },
      {
        form: 'named placeholders: query(sql, { name }, cb)',
        run: () => viaCallback((cb) => named.query('SELECT id, name FROM users WHERE name = :name', { name: BENIGN }, cb)),
        expected: queried,
      },
      {
        form: 'named placeholders: execute(sql, { name }, cb)',
        run: () => viaCallback((cb) => named.execute('SELECT id, name FROM users WHERE name = :name', { name: BENIGN }, cb)),
        expected: { returned: 'Execute', sync: false, rows: [ALICE], fields },
      },
      {
        form: "events: query(sql).on('fields' | 'result' | 'end')",
        run: () =>
          new Promise<Observation>((resolve, reject) => {
            const rows: unknown[] = [];
            let names: string[] | undefined;
            const command = conn.query(byName, [BENIGN]);
            command
              .on('fields', (f: Array<{ name: string }>) => (names = f.map((x) => x.name)))
              .on('result', (row: unknown) => rows.push(row))
              .on('error', reject)
              .on('end', () => resolve({ returned: kindOf(command), rows: plain(rows), fields: names }));
          }),
        expected: { returned: 'Query', rows: [ALICE], fields },
      },
      {
        form: 'stream: query(sql).stream()',
        run: () =>
          new Promise<Observation>((resolve, reject) => {
            const rows: unknown[] = [];
            conn
              .query(byName, [BENIGN])
              .stream()
              .on('data', (row: unknown) => rows.push(row))
              .on('error', reject)
              .on('end', () => resolve({ rows: plain(rows) }));
          }),
        expected: { rows: [ALICE] },
      },
      {
        form: 'bad statement, callback',
        run: () => viaCallback((cb) => conn.query('SELECT * FROM no_such_table', cb)),
        expected: { returned: 'Query', sync: false, self: 'Query', err: missingTable },
      },
      { form: 'mysql2/promise connection.query', run: () => viaPromise(() => promiseConn.query(byName, [BENIGN])), expected: promised },
      { form: 'mysql2/promise connection.execute', run: () => viaPromise(() => promiseConn.execute(byName, [BENIGN])), expected: promised },
      {
        form: 'mysql2/promise connection.query, bad statement',
        run: () => viaPromise(() => promiseConn.query('SELECT * FROM no_such_table')),
        expected: { returned: 'Promise', err: missingTable },
      },
      {
        form: 'pool.query(sql, values, cb)',
        run: () => viaCallback((cb) => pool.query(byName, [BENIGN], cb)),
        // `this` differs across versions (compared between the two runs only)
        expected: { returned: 'Query', sync: false, rows: [ALICE], fields },
      },
      {
        form: 'pool.execute(sql, values, cb)',
        run: () => viaCallback((cb) => pool.execute(byName, [BENIGN], cb)),
        expected: { returned: 'undefined', sync: false, rows: [ALICE], fields },
      },
      {
        form: 'pool.getConnection(cb), then conn.query(sql, values, cb)',
        run: () =>
          viaCallback((cb) =>
            pool.getConnection((err, pooled) => {
              if (err) return cb(err);
              pooled.query(byName, [BENIGN], function (this: unknown, error, rows, f) {
                pooled.release();
                cb.call(this, error, rows, f);
              });
            }),
          ),
        expected: { ...queried, returned: 'undefined' },
      },
      { form: 'mysql2/promise pool.query', run: () => viaPromise(() => promisePool.query(byName, [BENIGN])), expected: promised },
      { form: 'mysql2/promise pool.execute', run: () => viaPromise(() => promisePool.execute(byName, [BENIGN])), expected: promised },
      {
        form: 'mysql2/promise pool.getConnection, then query',
        run: async () => {
          const pooled = await promisePool.getConnection();
          try {
            return await viaPromise(() => pooled.query(byName, [BENIGN]));
          } finally {
            pooled.release!();
          }
        },
        expected: promised,
      },
    ];
    // mysql2/promise connections gained prepare() after 1.0.0.
    if (copy.version !== '1.0.0') {
      forms.push({
        form: 'mysql2/promise connection.prepare, then statement.execute',
        run: async () => {
          const statement = await promiseConn.prepare!(uncached(byName));
          try {
            return await viaPromise(() => statement.execute([BENIGN]));
          } finally {
            statement.close();
          }
        },
        expected: promised,
      });
    }

    it.each(forms)('$form', async ({ run, expected }) => {
      const outside = await run();
      const inside = await asRequest(BENIGN, run);
      expect(outside).toMatchObject(expected);
      expect(inside).toEqual(outside);
    });

    it('parameterised values carrying the attack string are data, not structure: the statement runs', async () => {
      const rows = await asRequest(ATTACK, () => callback<unknown>((cb) => conn.query(byName, [ATTACK], cb)));
      expect(plain(rows)).toEqual([]);
    });
  });

  describe("refusal in mysql2's own shape (attack input, block mode)", () => {
    /** Runs `refuse` inside an attack request; the connection then runs the sentinel: it must still work. */
    async function refusedOn(
      sentinel: (sql: string) => Promise<unknown>,
      refuse: (sql: string) => Promise<Error & { code?: string }>,
    ): Promise<Error & { code?: string }> {
      const log = new StatementLog('mysql');
      const tags = markers();
      log.mark();
      const error = await asRequest(ATTACK, () => refuse(attackSql(tags.refused)));
      expect(plain(await within(5000, 'the next statement', sentinel(sentinelSql(tags.sentinel))))).toEqual([{ ok: 1 }]);
      await expectNeverReachedServer(log, tags);
      return error;
    }
    const onConn = (sql: string) => callback<unknown>((cb) => conn.query(sql, cb));
    const onPool = (sql: string) => callback<unknown>((cb) => pool.query(sql, cb));
    const onPromisePool = async (sql: string) => (await promisePool.query(sql))[0];

    it('query(sql, cb) → the callback gets the error on a later tick; a Query is returned', async () => {
      const error = await refusedOn(onConn, (sql) =>
        errorOf((deliver) => {
          let sync = true;
          const command = conn.query(sql, (err) => {
            expect(sync).toBe(false);
            deliver(err);
          });
          expect(kindOf(command)).toBe('Query');
          sync = false;
        }),
      );
      expect(error.code).toBe(BLOCKED);
    });

    it("events: query(sql) emits 'error' and then 'end'", async () => {
      const error = await refusedOn(onConn, (sql) =>
        errorOf((deliver) => {
          const seen: string[] = [];
          const command = conn.query(sql);
          command.on('result', () => seen.push('result'));
          command.on('error', (err: Error) => seen.push(`error:${(err as { code?: string }).code}`));
          command.on('end', () => {
            expect(seen).toEqual([`error:${BLOCKED}`]);
            deliver(Object.assign(new Error('refused'), { code: BLOCKED }));
          });
        }),
      );
      expect(error.code).toBe(BLOCKED);
    });

    it("stream: query(sql).stream() fails with 'error'", async () => {
      const error = await refusedOn(onConn, (sql) =>
        errorOf((deliver) => {
          const rows: unknown[] = [];
          conn
            .query(sql)
            .stream()
            .on('data', (row: unknown) => rows.push(row))
            .on('error', (err: Error) => {
              expect(rows).toEqual([]);
              deliver(err);
            })
            .on('end', () => deliver(undefined));
        }),
      );
      expect(error.code).toBe(BLOCKED);
    });

    it('execute(sql, values, cb) → the callback gets the error', async () => {
      const error = await refusedOn(onConn, (sql) => errorOf((deliver) => void conn.execute(sql, [], deliver)));
      expect(error.code).toBe(BLOCKED);
    });

    it('prepare(sql, cb) → the callback gets the error', async () => {
      const error = await refusedOn(onConn, (sql) => errorOf((deliver) => void conn.prepare(sql, deliver)));
      expect(error.code).toBe(BLOCKED);
    });

    it('mysql2/promise connection: query, execute (and prepare) reject', async () => {
      const onPromiseConn = async (sql: string) => (await promiseConn.query(sql))[0];
      const rejected = await refusedOn(onPromiseConn, async (sql) => {
        const calls: Array<Promise<unknown>> = [promiseConn.query(sql), promiseConn.execute(sql, [])];
        if (promiseConn.prepare) calls.push(promiseConn.prepare(sql));
        const errors = await Promise.all(calls.map((p) => p.then(() => undefined, (e: Error & { code?: string }) => e)));
        for (const e of errors) expect(e?.code).toBe(BLOCKED);
        return errors[0]!;
      });
      expect(rejected.code).toBe(BLOCKED);
    });

    describe('pool with connectionLimit: 1 — after a refused statement the next one still gets the connection', () => {
      it('pool.query(sql, cb)', async () => {
        const error = await refusedOn(onPool, (sql) => errorOf((deliver) => void pool.query(sql, deliver)));
        expect(error.code).toBe(BLOCKED);
      });

      it("pool.query(sql) events: 'error' then 'end'", async () => {
        const error = await refusedOn(onPool, (sql) =>
          errorOf((deliver) => {
            let failure: unknown;
            pool
              .query(sql)
              .on('error', (err: unknown) => (failure = err))
              .on('end', () => deliver(failure));
          }),
        );
        expect(error.code).toBe(BLOCKED);
      });

      it('pool.execute(sql, values, cb)', async () => {
        const error = await refusedOn(onPool, (sql) => errorOf((deliver) => pool.execute(sql, [], deliver)));
        expect(error.code).toBe(BLOCKED);
      });

      it('pool.getConnection(cb), refused conn.query, release', async () => {
        const error = await refusedOn(onPool, (sql) =>
          errorOf((deliver) =>
            pool.getConnection((err, pooled) => {
              if (err) return deliver(new Error(`getConnection failed: ${err.message}`));
              pooled.query(sql, (queryError) => {
                pooled.release();
                deliver(queryError);
              });
            }),
          ),
        );
        expect(error.code).toBe(BLOCKED);
      });

      it("pool.getConnection(cb), refused conn.query(sql).stream(): a real Query, whose stream fails with 'error'", async () => {
        const error = await refusedOn(onPool, (sql) =>
          errorOf((deliver) =>
            pool.getConnection((err, pooled) => {
              if (err) return deliver(new Error(`getConnection failed: ${err.message}`));
              const command = pooled.query(sql);
              expect(kindOf(command)).toBe('Query');
              command
                .stream()
                .on('error', (queryError: Error) => {
                  pooled.release();
                  deliver(queryError);
                })
                .on('end', () => deliver(undefined));
            }),
          ),
        );
        expect(error.code).toBe(BLOCKED);
      });

      it('mysql2/promise pool: query and execute reject', async () => {
        const error = await refusedOn(onPromisePool, async (sql) => {
          const viaQuery = await promisePool.query(sql).then(() => undefined, (e: Error) => e);
          const viaExecute = await promisePool.execute(sql, []).then(() => undefined, (e: Error) => e);
          expect(viaExecute).toMatchObject({ code: BLOCKED });
          return viaQuery!;
        });
        expect(error.code).toBe(BLOCKED);
      });

      it('several refusals in a row do not drain the pool', async () => {
        const error = await refusedOn(onPool, async (sql) => {
          let last: Error | undefined;
          for (let i = 0; i < 5; i++) last = await errorOf((deliver) => void pool.query(sql, deliver));
          return last!;
        });
        expect(error.code).toBe(BLOCKED);
      });
    });
  });

  describe('context under concurrency: two requests share a pool of one', () => {
    const A = "' OR 'a'='a";
    const B = "' OR 'b'='b";
    /** Matches every user when `payload` is spliced in: an attack when it is this request's input, plain SQL otherwise. */
    const probe = (payload: string) => `SELECT count(*) AS n FROM users WHERE name = '${payload}'`;

    interface ChainOutcome {
      first: Error | null;
      otherRows: unknown;
      otherViaExecute: unknown;
      ownError: (Error & { code?: string }) | null;
    }

    /** One request's work, each statement issued from the previous one's callback (called from the pooled socket). */
    function request(label: string, own: string, other: string, steps: string[], shared: Pool): Promise<ChainOutcome> {
      return asRequest(own, () =>
        new Promise<ChainOutcome>((resolve) => {
          shared.query('SELECT 1 AS one', (first) => {
            steps.push(`${label}:first`);
            shared.getConnection((err1, c1) => {
              if (err1) throw err1;
              c1.query(probe(other), (err, rows) => {
                if (err) steps.push(`${label}:other refused`);
                c1.execute(probe(other), [], (err2, rows2) => {
                  if (err2) steps.push(`${label}:other refused`);
                  steps.push(`${label}:released`);
                  c1.release();
                  shared.getConnection((err3, c2) => {
                    if (err3) throw err3;
                    steps.push(`${label}:own`);
                    c2.query(probe(own), (ownError) => {
                      c2.release();
                      resolve({ first, otherRows: plain(rows), otherViaExecute: plain(rows2), ownError });
                    });
                  });
                });
              });
            });
          });
        }),
      );
    }

    it('each statement is judged against its own request only, also after waiting for the pooled connection', async () => {
      const shared = mysql.createPool({ ...OPTIONS, connectionLimit: 1 });
      try {
        const steps: string[] = [];
        const both = Promise.all([request('A', A, B, steps, shared), request('B', B, A, steps, shared)]);
        const [a, b] = await within(10_000, 'both requests', both).catch((error: Error) => {
          throw new Error(`${error.message}; steps so far: ${steps.join(' ')}`);
        });
        for (const outcome of [a, b]) {
          expect(outcome.first).toBeNull();
          // The other request's attack string is not this request's input: the statement runs.
          expect(outcome.otherRows).toEqual([{ n: 3 }]);
          expect(outcome.otherViaExecute).toEqual([{ n: 3 }]);
          expect(outcome.ownError?.code).toBe(BLOCKED);
        }
        expect(steps).not.toContain('A:other refused');
        expect(steps).not.toContain('B:other refused');
        // The requests really interleaved: each one's own statement ran after the other had held the connection.
        expect(steps.indexOf('B:first')).toBeLessThan(steps.indexOf('A:released'));
        expect(steps.indexOf('B:released')).toBeLessThan(steps.indexOf('A:own'));
        expect(steps.indexOf('A:released')).toBeLessThan(steps.indexOf('B:own'));
      } finally {
        await new Promise<void>((r) => shared.end(() => r()));
      }
    });
  });
});

describe('a mysql2 copy outside the supported range (0.15.8)', () => {
  it('is announced once and left unpatched: its statements are not inspected', async () => {
    const { hookStatuses } = require('../../dist/src/instrument/install.js') as {
      hookStatuses(): Array<{ module: string; version?: string; state: string; detail?: string }>;
    };
    const stderr = vi.spyOn(process.stderr, 'write');
    let old: Mysql2;
    let written: string[];
    try {
      old = require(pinned('0.15.8')) as Mysql2;
    } finally {
      written = stderr.mock.calls.map(([chunk]) => String(chunk));
      stderr.mockRestore();
    }
    const announcements = written.filter((line) => line.includes('mysql2@0.15.8'));
    expect(announcements).toHaveLength(1);
    expect(announcements[0]).toContain('mysql2@0.15.8 is NOT protected: stepguard supports mysql2 >=1.0.0 <4');

    const statuses = hookStatuses().filter((s) => s.module === 'mysql2');
    expect(statuses).toContainEqual(expect.objectContaining({ version: '0.15.8', state: 'unsupported', detail: '>=1.0.0 <4' }));
    // The supported copies were patched: the status list tells them apart.
    for (const copy of COPIES) require(copy.dir);
    for (const copy of COPIES) expect(statuses).toContainEqual(expect.objectContaining({ version: copy.version, state: 'patched' }));
    expect(isWrapped(old.Connection.prototype.query)).toBe(false);
    expect(isWrapped(old.Connection.prototype.execute)).toBe(false);

    const conn = old.createConnection(OPTIONS);
    try {
      const rows = await asRequest(ATTACK, () => callback<unknown>((cb) => conn.query(`SELECT count(*) AS n FROM users WHERE name = '${ATTACK}'`, cb)));
      expect(plain(rows)).toEqual([{ n: 3 }]);
    } finally {
      conn.end();
    }
  });
});
