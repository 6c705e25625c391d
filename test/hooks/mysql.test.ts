/**
 * hooks/mysql.ts against a real MariaDB, for the classic `mysql` driver: the root devDependency (2.18.x) and
 * the oldest copy that authenticates against MariaDB 10.11 (2.3.0, pinned in test/versions).
 *
 * Each call form runs twice — outside any request, where the wrappers pass straight through to mysql, and
 * inside `runWithContext` with benign input — and both runs must observe the same thing. Attack input fails
 * each form the way mysql fails a query it cannot enqueue; the server's general log shows the statement never
 * arrived, and a pool of one connection still serves the next statement.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

type Callback = (this: unknown, err: (Error & { code?: string }) | null, rows?: unknown, fields?: Array<{ name: string }>) => void;
interface Query extends EventEmitter {
  sql: string;
  stream(): Readable;
}
interface Connection {
  query(sql: string | Query | { sql: string; values?: unknown[] }, values?: unknown[] | Callback, cb?: Callback): Query;
  end(cb?: () => void): void;
}
interface PoolConnection extends Connection {
  release(): void;
}
interface Pool {
  query(sql: string, values?: unknown[] | Callback, cb?: Callback): Query;
  getConnection(cb: (err: Error | null, conn: PoolConnection) => void): void;
  end(cb?: () => void): void;
}
interface Cluster {
  add(id: string, options: object): void;
  of(pattern: string): { query(sql: string, cb?: Callback): Query };
  end(cb?: () => void): void;
}
interface Mysql {
  createConnection(options: object): Connection;
  createPool(options: object): Pool;
  createPoolCluster(options?: object): Cluster;
  createQuery(sql: string, values?: unknown[], cb?: Callback): Query;
}


const COPIES = [
  { label: 'root devDependency', dir: join(REPO, 'node_modules/mysql') },
  { label: 'pinned', dir: join(REPO, 'test/versions/mysql-2.3.0/node_modules/mysql') },
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

const plain = (rows: unknown) => JSON.parse(JSON.stringify(rows)) as unknown;

function errorShape(err: unknown) {
  const e = err as { code?: unknown; errno?: unknown; sqlState?: unknown; message?: unknown; fatal?: unknown };
  return { class: kindOf(err), code: e.code, errno: e.errno, sqlState: e.sqlState, message: e.message, fatal: e.fatal };
}

interface Observation {
  returned?: string;
  sync?: boolean;
  self?: string;
  rows?: unknown;
  fields?: string[];
  err?: ReturnType<typeof errorShape>;
  events?: string[];
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

/** Event-style use: the events in order, rows, and the error if any. */
function viaEvents(query: Query): Promise<Observation> {
  return new Promise((resolve) => {
    const events: string[] = [];
    const rows: unknown[] = [];
    let err: ReturnType<typeof errorShape> | undefined;
    query
      .on('error', (e: unknown) => (events.push('error'), (err = errorShape(e))))
      .on('fields', () => events.push('fields'))
      .on('result', (row: unknown) => (events.push('result'), rows.push(row)))
      .on('end', () => {
        events.push('end');
        setImmediate(() => resolve({ returned: kindOf(query), events, rows: plain(rows), ...(err ? { err } : {}) }));
      });
  });
}

/** Stream use: mysql's query stream emits 'error' for a failed query and then still ends. */
function viaStream(query: Query): Promise<Observation> {
  return new Promise((resolve) => {
    const rows: unknown[] = [];
    const events: string[] = [];
    let err: ReturnType<typeof errorShape> | undefined;
    query
      .stream()
      .on('data', (row: unknown) => rows.push(row))
      .on('error', (e: unknown) => (events.push('error'), (err = errorShape(e))))
      .on('end', () => (events.push('end'), resolve({ events, rows: plain(rows), ...(err ? { err } : {}) })));
  });
}

/** API differences across the 2.x line that the forms below depend on. */
const atLeast = (version: string, minor: number) => Number(version.split('.')[1]) >= minor;
const hasPoolQueryObject = (version: string) => atLeast(version, 5);
const hasClusterOf = (version: string) => atLeast(version, 5);


const callback = <T>(run: (cb: (err: Error | null, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => run((err, value) => (err ? reject(err) : resolve(value as T))));

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

// ---- per copy ----------------------------------------------------------------------------------------------

describe.each(COPIES)('mysql $version ($label)', (copy) => {
  let mysql: Mysql;
  let conn: Connection;
  let pool: Pool;
  let cluster: Cluster;

  beforeAll(() => {
    mysql = require(copy.dir) as Mysql;
    conn = mysql.createConnection(OPTIONS);
    pool = mysql.createPool({ ...OPTIONS, connectionLimit: 1 });
    // (2.3's cluster.end(cb) never calls back: the cluster is only made where the tests use it)
    if (hasClusterOf(copy.version)) {
      cluster = mysql.createPoolCluster();
      cluster.add('only', { ...OPTIONS, connectionLimit: 1 });
    }
  });

  afterAll(async () => {
    await Promise.all([
      conn && new Promise<void>((r) => conn.end(() => r())),
      pool && new Promise<void>((r) => pool.end(() => r())),
      cluster && new Promise<void>((r) => cluster.end(() => r())),
    ]);
  });

  it("is patched: Connection.query and Pool.getConnection are wrapped, with the originals' name and length", () => {
    const Connection = require(join(copy.dir, 'lib/Connection')) as { prototype: Record<string, unknown> };
    const Pool = require(join(copy.dir, 'lib/Pool')) as { prototype: Record<string, unknown> };
    expect(Object.getPrototypeOf(conn)).toBe(Connection.prototype);
    const methods: Array<[string, unknown]> = [
      ['Connection.query', Connection.prototype.query],
      ['Pool.getConnection', Pool.prototype.getConnection],
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
    const missingTable = { code: 'ER_NO_SUCH_TABLE', errno: 1146 };

    const forms: Array<{ form: string; run: () => Promise<Observation>; expected: Observation }> = [
      { form: 'query(sql, cb)', run: () => viaCallback((cb) => conn.query(literal, cb)), expected: queried },
      { form: 'query(sql, values, cb)', run: () => viaCallback((cb) => conn.query(byName, [BENIGN], cb)), expected: queried },
      { form: 'query({ sql, values }, cb)', run: () => viaCallback((cb) => conn.query({ sql: byName, values: [BENIGN] }, cb)), expected: queried },
      { form: 'query(mysql.createQuery(sql, values, cb))', run: () => viaCallback((cb) => conn.query(mysql.createQuery(byName, [BENIGN], cb))), expected: queried },
      {
        form: "events: query(sql, values).on('fields' | 'result' | 'end')",
        run: () => viaEvents(conn.query(byName, [BENIGN])),
        expected: { returned: 'Query', events: ['fields', 'result', 'end'], rows: [ALICE] },
      },
      { form: 'stream: query(sql, values).stream()', run: () => viaStream(conn.query(byName, [BENIGN])), expected: { events: ['end'], rows: [ALICE] } },
      {
        form: 'bad statement, callback',
        run: () => viaCallback((cb) => conn.query('SELECT * FROM no_such_table', cb)),
        expected: { returned: 'Query', sync: false, self: 'Query', err: { class: 'Error', ...missingTable, message: expect.stringContaining('no_such_table') } as never },
      },
      {
        form: "bad statement, events: 'error' then 'end'",
        run: () => viaEvents(conn.query('SELECT * FROM no_such_table')),
        expected: { returned: 'Query', events: ['error', 'end'], rows: [] },
      },
      {
        form: 'bad statement, stream',
        run: () => viaStream(conn.query('SELECT * FROM no_such_table')),
        expected: { events: ['error', 'end'], rows: [] },
      },
      // pool.query returns the Query from 2.5 on (nothing before): compared between the two runs only.
      { form: 'pool.query(sql, values, cb)', run: () => viaCallback((cb) => pool.query(byName, [BENIGN], cb)), expected: { sync: false, rows: [ALICE], fields } },
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
    ];
    if (hasPoolQueryObject(copy.version)) {
      forms.push({
        form: 'pool.query events',
        run: () => viaEvents(pool.query(byName, [BENIGN])),
        expected: { returned: 'Query', events: ['fields', 'result', 'end'], rows: [ALICE] },
      });
    }
    if (hasClusterOf(copy.version)) {
      forms.push({ form: "cluster.of('*').query(sql, cb)", run: () => viaCallback((cb) => cluster.of('*').query(literal, cb)), expected: queried });
    }

    it.each(forms)('$form', async ({ run, expected }) => {
      const outside = await run();
      const inside = await asRequest(BENIGN, run);
      expect(outside).toMatchObject(expected);
      expect(inside).toEqual(outside);
    });

    it('values carrying the attack string are escaped by mysql: data, not structure, and the statement runs', async () => {
      const rows = await asRequest(ATTACK, () => callback<unknown>((cb) => conn.query(byName, [ATTACK], cb)));
      expect(plain(rows)).toEqual([]);
    });
  });

  describe("refusal in mysql's own shape (attack input, block mode)", () => {
    async function refusedOn(sentinel: (sql: string) => Promise<unknown>, refuse: (sql: string) => Promise<Observation>): Promise<Observation> {
      const log = new StatementLog('mysql');
      const tags = markers();
      log.mark();
      const seen = await within(5000, 'the refused call', asRequest(ATTACK, () => refuse(attackSql(tags.refused))));
      expect(plain(await within(5000, 'the next statement', sentinel(sentinelSql(tags.sentinel))))).toEqual([{ ok: 1 }]);
      await expectNeverReachedServer(log, tags);
      return seen;
    }
    const onConn = (sql: string) => callback<unknown>((cb) => conn.query(sql, cb));
    const onPool = (sql: string) => callback<unknown>((cb) => pool.query(sql, cb));
    const refused = { class: 'BlockedError', code: BLOCKED };

    it('query(sql, cb) → the callback gets the error on a later tick, with the Query as `this`; a Query is returned', async () => {
      const seen = await refusedOn(onConn, (sql) => viaCallback((cb) => conn.query(sql, cb)));
      expect(seen).toMatchObject({ returned: 'Query', sync: false, self: 'Query', err: refused });
    });

    it('query(sql, values, cb) and query({ sql }, cb) and a prebuilt Query', async () => {
      await refusedOn(onConn, async (sql) => {
        for (const form of [
          () => viaCallback((cb) => conn.query(sql, [], cb)),
          () => viaCallback((cb) => conn.query({ sql }, cb)),
          () => viaCallback((cb) => conn.query(mysql.createQuery(sql, [], cb))),
        ]) {
          expect(await form()).toMatchObject({ returned: 'Query', sync: false, err: refused });
        }
        return {};
      });
    });

    it("events: 'error' then 'end', no rows", async () => {
      const seen = await refusedOn(onConn, (sql) => viaEvents(conn.query(sql)));
      expect(seen).toMatchObject({ returned: 'Query', events: ['error', 'end'], rows: [], err: refused });
    });

    it("stream: the stream fails with 'error'", async () => {
      const seen = await refusedOn(onConn, (sql) => viaStream(conn.query(sql)));
      expect(seen).toMatchObject({ events: ['error', 'end'], rows: [], err: refused });
    });

    it('no callback and no listener: nothing is thrown, the connection keeps working', async () => {
      await refusedOn(onConn, async (sql) => {
        const query = conn.query(sql);
        await new Promise((r) => query.once('end', r));
        return {};
      });
    });

    describe('pool with connectionLimit: 1 — after a refused statement the next one still gets the connection', () => {
      it('pool.query(sql, cb)', async () => {
        const seen = await refusedOn(onPool, (sql) => viaCallback((cb) => pool.query(sql, cb)));
        expect(seen).toMatchObject({ returned: hasPoolQueryObject(copy.version) ? 'Query' : 'undefined', sync: false, self: 'Query', err: refused });
      });

      // Older 2.x pools return no Query object: the form does not exist there, so neither does the test.
      if (hasPoolQueryObject(copy.version)) it("pool.query(sql) events: 'error' then 'end'", async () => {
        const seen = await refusedOn(onPool, (sql) => viaEvents(pool.query(sql)));
        expect(seen).toMatchObject({ returned: 'Query', events: ['error', 'end'], err: refused });
      });

      if (hasPoolQueryObject(copy.version)) it('pool.query(sql) with no listener at all', async () => {
        await refusedOn(onPool, async (sql) => {
          const query = pool.query(sql);
          await new Promise((r) => query.once('end', r));
          return {};
        });
      });

      it('pool.getConnection(cb), refused conn.query, release', async () => {
        const seen = await refusedOn(onPool, (sql) =>
          viaCallback((cb) =>
            pool.getConnection((err, pooled) => {
              if (err) return cb(err);
              pooled.query(sql, function (this: unknown, error, rows) {
                pooled.release();
                cb.call(this, error, rows);
              });
            }),
          ),
        );
        expect(seen).toMatchObject({ self: 'Query', err: refused });
      });

      if (hasClusterOf(copy.version)) it("cluster.of('*').query(sql, cb): the cluster's pool is released too", async () => {
        const onCluster = (sql: string) => callback<unknown>((cb) => cluster.of('*').query(sql, cb));
        const seen = await refusedOn(onCluster, (sql) => viaCallback((cb) => cluster.of('*').query(sql, cb)));
        expect(seen).toMatchObject({ returned: 'Query', err: refused });
      });

      it('several refusals in a row do not drain the pool', async () => {
        await refusedOn(onPool, async (sql) => {
          for (let i = 0; i < 5; i++) expect(await viaCallback((cb) => pool.query(sql, cb))).toMatchObject({ err: refused });
          return {};
        });
      });
    });
  });

  describe('context: a request that waited for the pooled connection is judged as itself', () => {
    it('a callback queued behind another request runs in its own request', async () => {
      const shared = mysql.createPool({ ...OPTIONS, connectionLimit: 1 });
      // Plain SQL for request B, but an attack if judged against request A's input.
      const tautology = `SELECT count(*) AS n FROM users WHERE name = '${ATTACK}'`;
      try {
        let releaseA!: () => void;
        const aHolds = new Promise<void>((held) =>
          asRequest(ATTACK, () =>
            shared.getConnection((err, c) => {
              if (err) throw err;
              releaseA = () => asRequest(ATTACK, () => c.release());
              held();
            }),
          ),
        );
        await aHolds;
        // B asks while A holds the only connection; B's callback is called from A's release.
        const b = asRequest(BENIGN, () =>
          callback<unknown>((cb) =>
            shared.getConnection((err, c) => {
              if (err) return cb(err);
              c.query(tautology, (error, rows) => {
                c.release();
                cb(error, rows);
              });
            }),
          ),
        );
        releaseA();
        expect(plain(await within(5000, 'request B', b))).toEqual([{ n: 3 }]);
        // …and the same statement in request A is refused.
        const a = await asRequest(ATTACK, () => viaCallback((cb) => shared.query(tautology, cb)));
        expect(a).toMatchObject({ err: { code: BLOCKED } });
      } finally {
        await new Promise<void>((r) => shared.end(() => r()));
      }
    });
  });
});
