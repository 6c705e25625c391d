/**
 * hooks/mysql.ts against a real MariaDB, for the classic `mysql` driver: the root devDependency (2.18.x) and
 * the oldest copy that authenticates against MariaDB 10.11 (2.3.0, pinned in test/versions). The shared SQL
 * driver suite (sql-drivers.shared.ts) runs the common checks; this file is mysql's adapter: its call forms
 * (callback, prebuilt Query, events, stream, pool, cluster) and the way mysql fails a query it cannot
 * enqueue — a pool of one connection still serves the next statement.
 */
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { REPO } from '../helpers/app.js';
import { ALICE, ATTACK, BENIGN, BLOCKED, MYSQL_OPTIONS as OPTIONS, kindOf, versionOf, within } from '../helpers/observe.js';
import { attackSql, callback, describeSqlDriver, plain, sqlEvent, viaCallback as callbackForm, type Form, type Refusal, type SuiteContext } from './sql-drivers.shared.js';

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


interface Fixture {
  mysql: Mysql;
  conn: Connection;
  pool: Pool;
  /** Made only where the tests use it (2.3's cluster.end(cb) never calls back). */
  cluster: Cluster | undefined;
}

const COPIES = [
  { label: 'root devDependency', dir: join(REPO, 'node_modules/mysql'), root: true },
  { label: 'pinned', dir: join(REPO, 'test/versions/mysql-2.3.0/node_modules/mysql'), root: false },
].map((copy) => ({ ...copy, version: versionOf(copy.dir) }));

// ---- what a caller can observe ------------------------------------------------------------------------

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

const viaCallback = (call: (cb: Callback) => unknown): Promise<Observation> =>
  callbackForm(call as (cb: (this: unknown, ...args: Parameters<Callback>) => void) => unknown, (err, rows, fields) =>
    err ? { err: errorShape(err) } : { rows: plain(rows), fields: fields?.map((f) => f.name) },
  );

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


const byName = 'SELECT id, name FROM users WHERE name = ?';
const literal = "SELECT id, name FROM users WHERE name = 'alice'";
const mysqlEvent = (sql: string) => sqlEvent('mysql.query', sql, 'mysql', 'mariadb');

function forms(copy: { version: string }): Array<Form<Fixture>> {
  const fields = ['id', 'name'];
  const queried = { returned: 'Query', sync: false, self: 'Query', rows: [ALICE], fields };
  const missingTable = { code: 'ER_NO_SUCH_TABLE', errno: 1146 };

  const list: Array<Form<Fixture>> = [
    { form: 'query(sql, cb)', run: ({ conn }) => viaCallback((cb) => conn.query(literal, cb)), expected: queried },
    { form: 'query(sql, values, cb)', run: ({ conn }) => viaCallback((cb) => conn.query(byName, [BENIGN], cb)), expected: queried },
    { form: 'query({ sql, values }, cb)', run: ({ conn }) => viaCallback((cb) => conn.query({ sql: byName, values: [BENIGN] }, cb)), expected: queried },
    { form: 'query(mysql.createQuery(sql, values, cb))', run: ({ conn, mysql }) => viaCallback((cb) => conn.query(mysql.createQuery(byName, [BENIGN], cb))), expected: queried },
    {
      form: "events: query(sql, values).on('fields' | 'result' | 'end')",
      run: ({ conn }) => viaEvents(conn.query(byName, [BENIGN])),
      expected: { returned: 'Query', events: ['fields', 'result', 'end'], rows: [ALICE] },
    },
    { form: 'stream: query(sql, values).stream()', run: ({ conn }) => viaStream(conn.query(byName, [BENIGN])), expected: { events: ['end'], rows: [ALICE] } },
    {
      form: 'bad statement, callback',
      run: ({ conn }) => viaCallback((cb) => conn.query('SELECT * FROM no_such_table', cb)),
      expected: { returned: 'Query', sync: false, self: 'Query', err: { class: 'Error', ...missingTable, message: expect.stringContaining('no_such_table') } as never },
    },
    {
      form: "bad statement, events: 'error' then 'end'",
      run: ({ conn }) => viaEvents(conn.query('SELECT * FROM no_such_table')),
      expected: { returned: 'Query', events: ['error', 'end'], rows: [] },
    },
    {
      form: 'bad statement, stream',
      run: ({ conn }) => viaStream(conn.query('SELECT * FROM no_such_table')),
      expected: { events: ['error', 'end'], rows: [] },
    },
    // pool.query returns the Query from 2.5 on (nothing before): compared between the two runs only.
    { form: 'pool.query(sql, values, cb)', run: ({ pool }) => viaCallback((cb) => pool.query(byName, [BENIGN], cb)), expected: { sync: false, rows: [ALICE], fields } },
    {
      form: 'pool.getConnection(cb), then conn.query(sql, values, cb)',
      run: ({ pool }) =>
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
    list.push({
      form: 'pool.query events',
      run: ({ pool }) => viaEvents(pool.query(byName, [BENIGN])),
      expected: { returned: 'Query', events: ['fields', 'result', 'end'], rows: [ALICE] },
    });
  }
  if (hasClusterOf(copy.version)) {
    list.push({ form: "cluster.of('*').query(sql, cb)", run: ({ cluster }) => viaCallback((cb) => cluster!.of('*').query(literal, cb)), expected: queried });
  }

  return list;
}

// ---- refusal in mysql's own shape -----------------------------------------------------------------------

const blocked = { class: 'BlockedError', code: BLOCKED };
const onConn = ({ conn }: Fixture) => (sql: string) => callback<unknown>((cb) => conn.query(sql, cb));
const onPool = ({ pool }: Fixture) => (sql: string) => callback<unknown>((cb) => pool.query(sql, cb));

const refusals: Array<Refusal<Fixture>> = [
  {
    name: 'query(sql, cb) → the callback gets the error on a later tick, with the Query as `this`; a Query is returned',
    run: async (fx, refused) => {
      const seen = await refused((sql) => viaCallback((cb) => fx.conn.query(sql, cb)), onConn(fx));
      expect(seen).toMatchObject({ returned: 'Query', sync: false, self: 'Query', err: blocked });
    },
  },
  {
    name: 'query(sql, values, cb) and query({ sql }, cb) and a prebuilt Query',
    run: async (fx, refused) => {
      const { conn, mysql } = fx;
      await refused(async (sql) => {
        for (const form of [
          () => viaCallback((cb) => conn.query(sql, [], cb)),
          () => viaCallback((cb) => conn.query({ sql }, cb)),
          () => viaCallback((cb) => conn.query(mysql.createQuery(sql, [], cb))),
        ]) {
          expect(await form()).toMatchObject({ returned: 'Query', sync: false, err: blocked });
        }
        return {};
      }, onConn(fx));
    },
  },
  {
    name: "events: 'error' then 'end', no rows",
    run: async (fx, refused) => {
      const seen = await refused((sql) => viaEvents(fx.conn.query(sql)), onConn(fx));
      expect(seen).toMatchObject({ returned: 'Query', events: ['error', 'end'], rows: [], err: blocked });
    },
  },
  {
    name: "stream: the stream fails with 'error'",
    run: async (fx, refused) => {
      const seen = await refused((sql) => viaStream(fx.conn.query(sql)), onConn(fx));
      expect(seen).toMatchObject({ events: ['error', 'end'], rows: [], err: blocked });
    },
  },
  {
    name: 'no callback and no listener: nothing is thrown, the connection keeps working',
    run: async (fx, refused) => {
      await refused(async (sql) => {
        const query = fx.conn.query(sql);
        await new Promise((r) => query.once('end', r));
        return {};
      }, onConn(fx));
    },
  },
];

function poolRefusals(copy: { version: string }): Array<Refusal<Fixture>> {
  const list: Array<Refusal<Fixture>> = [
    {
      name: 'pool.query(sql, cb)',
      run: async (fx, refused) => {
        const seen = await refused((sql) => viaCallback((cb) => fx.pool.query(sql, cb)), onPool(fx));
        expect(seen).toMatchObject({ returned: hasPoolQueryObject(copy.version) ? 'Query' : 'undefined', sync: false, self: 'Query', err: blocked });
      },
    },
  ];
  // Older 2.x pools return no Query object: the form does not exist there, so neither does the test.
  if (hasPoolQueryObject(copy.version)) {
    list.push(
      {
        name: "pool.query(sql) events: 'error' then 'end'",
        run: async (fx, refused) => {
          const seen = await refused((sql) => viaEvents(fx.pool.query(sql)), onPool(fx));
          expect(seen).toMatchObject({ returned: 'Query', events: ['error', 'end'], err: blocked });
        },
      },
      {
        name: 'pool.query(sql) with no listener at all',
        run: async (fx, refused) => {
          await refused(async (sql) => {
            const query = fx.pool.query(sql);
            await new Promise((r) => query.once('end', r));
            return {};
          }, onPool(fx));
        },
      },
    );
  }
  list.push({
    name: 'pool.getConnection(cb), refused conn.query, release',
    run: async (fx, refused) => {
      const seen = await refused(
        (sql) =>
          viaCallback((cb) =>
            fx.pool.getConnection((err, pooled) => {
              if (err) return cb(err);
              pooled.query(sql, function (this: unknown, error, rows) {
                pooled.release();
                cb.call(this, error, rows);
              });
            }),
          ),
        onPool(fx),
      );
      expect(seen).toMatchObject({ self: 'Query', err: blocked });
    },
  });
  if (hasClusterOf(copy.version)) {
    list.push({
      name: "cluster.of('*').query(sql, cb): the cluster's pool is released too",
      run: async ({ cluster }, refused) => {
        const onCluster = (sql: string) => callback<unknown>((cb) => cluster!.of('*').query(sql, cb));
        const seen = await refused((sql) => viaCallback((cb) => cluster!.of('*').query(sql, cb)), onCluster);
        expect(seen).toMatchObject({ returned: 'Query', err: blocked });
      },
    });
  }
  list.push({
    name: 'several refusals in a row do not drain the pool',
    run: async (fx, refused) => {
      await refused(async (sql) => {
        for (let i = 0; i < 5; i++) expect(await viaCallback((cb) => fx.pool.query(sql, cb))).toMatchObject({ err: blocked });
        return {};
      }, onPool(fx));
    },
  });
  return list;
}

// ---- the suite ------------------------------------------------------------------------------------------

describeSqlDriver<Fixture>({
  driver: 'mysql',
  db: 'mysql',
  copies: COPIES,
  open(copy) {
    const mysql = require(copy.dir) as Mysql;
    let cluster: Cluster | undefined;
    if (hasClusterOf(copy.version)) {
      cluster = mysql.createPoolCluster();
      cluster.add('only', { ...OPTIONS, connectionLimit: 1 });
    }
    return { mysql, conn: mysql.createConnection(OPTIONS), pool: mysql.createPool({ ...OPTIONS, connectionLimit: 1 }), cluster };
  },
  close: ({ conn, pool, cluster }) =>
    Promise.all([
      new Promise<void>((r) => conn.end(() => r())),
      new Promise<void>((r) => pool.end(() => r())),
      cluster && new Promise<void>((r) => cluster.end(() => r())),
    ]),
  patchedTitle: "is patched: Connection.query and Pool.getConnection are wrapped, with the originals' name and length",
  patched: ({ conn }, copy) => {
    const Connection = require(join(copy.dir, 'lib/Connection')) as { prototype: Record<string, unknown> };
    const Pool = require(join(copy.dir, 'lib/Pool')) as { prototype: Record<string, unknown> };
    expect(Object.getPrototypeOf(conn)).toBe(Connection.prototype);
    return [
      ['Connection.query', Connection.prototype.query],
      ['Pool.getConnection', Pool.prototype.getConnection],
    ];
  },
  forms,
  sentinel: (fx, sql) => onConn(fx)(sql),
  refusalTitle: "refusal in mysql's own shape (attack input, block mode)",
  refusals: () => refusals,
  poolRefusals,
  events: (copy) => [
    { call: 'query(sql, values, cb): the text as written, placeholders and all', run: ({ conn }) => callback((cb) => conn.query(byName, [BENIGN], cb)), expected: [mysqlEvent(byName)] },
    { call: 'query({ sql }, cb)', run: ({ conn }) => callback((cb) => conn.query({ sql: literal }, cb)), expected: [mysqlEvent(literal)] },
    {
      call: 'query(mysql.createQuery(sql))',
      run: ({ conn, mysql }) => callback((cb) => conn.query(mysql.createQuery(literal, [], cb))),
      expected: [mysqlEvent(literal)],
    },
    { call: 'pool.query(sql, values, cb): the pooled connection\'s query', run: ({ pool }) => callback((cb) => pool.query(byName, [BENIGN], cb)), expected: [mysqlEvent(byName)] },
    ...(hasClusterOf(copy.version)
      ? [{ call: "cluster.of('*').query(sql, cb)", run: ({ cluster }: Fixture) => callback((cb) => cluster!.of('*').query(literal, cb)), expected: [mysqlEvent(literal)] }]
      : []),
    { call: 'a refused statement', input: ATTACK, run: ({ conn }) => callback((cb) => conn.query(attackSql('event'), cb)), expected: [mysqlEvent(attackSql('event'))] },
  ],
  extra: {
    unchanged({ fx, asRequest }) {
      it('values carrying the attack string are escaped by mysql: data, not structure, and the statement runs', async () => {
        const rows = await asRequest(ATTACK, () => callback<unknown>((cb) => fx().conn.query(byName, [ATTACK], cb)));
        expect(plain(rows)).toEqual([]);
      });
    },
    copy: concurrency,
  },
});

function concurrency({ fx, asRequest }: SuiteContext<Fixture>): void {
  describe('context: a request that waited for the pooled connection is judged as itself', () => {
    it('a callback queued behind another request runs in its own request', async () => {
      const shared = fx().mysql.createPool({ ...OPTIONS, connectionLimit: 1 });
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
}
