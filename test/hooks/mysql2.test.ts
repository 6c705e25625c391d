/**
 * hooks/mysql2.ts against a real MariaDB, for every supported mysql2 copy: the root devDependency and the
 * pinned copies in test/versions (1.0.0 … 3.0.0). The shared SQL driver suite (sql-drivers.shared.ts) runs
 * the common checks; this file is mysql2's adapter: its call forms (callback, events, stream, execute,
 * prepare, named placeholders, mysql2/promise, pools) and the shapes mysql2 fails a command in — a pool of
 * one connection is never left short of it.
 */
import { describe, expect, it, vi } from 'vitest';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { REPO } from '../helpers/app.js';
import { ALICE, ATTACK, BENIGN, BLOCKED, MYSQL_OPTIONS as OPTIONS, kindOf, versionOf, within } from '../helpers/observe.js';
import {
  attackSql,
  callback,
  describeSqlDriver,
  errorOf,
  plain,
  sqlEvent,
  viaCallback as callbackForm,
  type Form,
  type Refusal,
  type SuiteContext,
} from './sql-drivers.shared.js';

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


interface Fixture {
  mysql: Mysql2;
  conn: Connection;
  named: Connection;
  pool: Pool;
  promiseConn: PromiseConnection;
  promisePool: PromisePool;
}

const pinned = (version: string) => join(REPO, `test/versions/mysql2-${version}/node_modules/mysql2`);
const COPIES = [
  { label: 'root devDependency', dir: join(REPO, 'node_modules/mysql2'), root: true },
  ...['1.0.0', '1.7.0', '2.0.0', '2.3.3', '3.0.0'].map((version) => ({ label: 'pinned', dir: pinned(version), root: false })),
].map((copy) => ({ ...copy, version: versionOf(copy.dir) }));

// ---- what a caller can observe ------------------------------------------------------------------------

function errorShape(err: unknown) {
  const e = err as { code?: unknown; errno?: unknown; sqlState?: unknown; message?: unknown };
  return { class: kindOf(err), code: e.code, errno: e.errno, sqlState: e.sqlState, message: e.message };
}

interface Observation {
  returned?: string;
  sync?: boolean;
  self?: string;
  rows?: unknown;
  fields?: string[];
  err?: ReturnType<typeof errorShape>;
}

const viaCallback = (call: (cb: Callback) => unknown): Promise<Observation> =>
  callbackForm(call as (cb: (this: unknown, ...args: Parameters<Callback>) => void) => unknown, (err, rows, fields) =>
    err ? { err: errorShape(err) } : { rows: plain(rows), fields: fields?.map((f) => f.name) },
  );

async function viaPromise(call: () => Promise<Rows>): Promise<Observation> {
  const returned = call();
  try {
    const [rows, fields] = await returned;
    return { returned: kindOf(returned), rows: plain(rows), fields: fields?.map((f) => f.name) };
  } catch (err) {
    return { returned: kindOf(returned), err: errorShape(err) };
  }
}

const byName = 'SELECT id, name FROM users WHERE name = ?';
const literal = "SELECT id, name FROM users WHERE name = 'alice'";
const mysqlEvent = (op: string, sql: string) => sqlEvent(op, sql, 'mysql', 'mariadb');

function forms(copy: { version: string }): Array<Form<Fixture>> {
  const fields = ['id', 'name'];
  const queried = { returned: 'Query', sync: false, self: 'Query', rows: [ALICE], fields };
  const promised = { returned: 'Promise', rows: [ALICE], fields };
  // (sqlState is '#42S02' in 1.0.0: compared between the two runs only)
  const missingTable = { code: 'ER_NO_SUCH_TABLE', errno: 1146, message: "Table 'stepguard.no_such_table' doesn't exist" };

  // mysql2 caches prepared statements per connection by text, and close() leaves the closed one cached:
  // each run prepares a text of its own so that both runs reach the server.
  let prepareSeq = 0;
  const uncached = (sql: string) => `${sql} /* run ${++prepareSeq} */`;

  const list: Array<Form<Fixture>> = [
    { form: 'query(sql, cb)', run: ({ conn }) => viaCallback((cb) => conn.query(literal, cb)), expected: queried },
    { form: 'query(sql, values, cb)', run: ({ conn }) => viaCallback((cb) => conn.query(byName, [BENIGN], cb)), expected: queried },
    { form: 'query({ sql, values }, cb)', run: ({ conn }) => viaCallback((cb) => conn.query({ sql: byName, values: [BENIGN] }, cb)), expected: queried },
    {
      form: 'execute(sql, values, cb)',
      run: ({ conn }) => viaCallback((cb) => conn.execute(byName, [BENIGN], cb)),
      expected: { returned: 'Execute', sync: false, rows: [ALICE], fields },
    },
    {
      form: 'prepare(sql, cb), then statement.execute(values, cb)',
      run: ({ conn }) =>
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
      run: ({ named }) => viaCallback((cb) => named.query('SELECT id, name FROM users WHERE name = :name', { name: BENIGN }, cb)),
      expected: queried,
    },
    {
      form: 'named placeholders: execute(sql, { name }, cb)',
      run: ({ named }) => viaCallback((cb) => named.execute('SELECT id, name FROM users WHERE name = :name', { name: BENIGN }, cb)),
      expected: { returned: 'Execute', sync: false, rows: [ALICE], fields },
    },
    {
      form: "events: query(sql).on('fields' | 'result' | 'end')",
      run: ({ conn }) =>
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
      run: ({ conn }) =>
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
      run: ({ conn }) => viaCallback((cb) => conn.query('SELECT * FROM no_such_table', cb)),
      expected: { returned: 'Query', sync: false, self: 'Query', err: missingTable },
    },
    { form: 'mysql2/promise connection.query', run: ({ promiseConn }) => viaPromise(() => promiseConn.query(byName, [BENIGN])), expected: promised },
    { form: 'mysql2/promise connection.execute', run: ({ promiseConn }) => viaPromise(() => promiseConn.execute(byName, [BENIGN])), expected: promised },
    {
      form: 'mysql2/promise connection.query, bad statement',
      run: ({ promiseConn }) => viaPromise(() => promiseConn.query('SELECT * FROM no_such_table')),
      expected: { returned: 'Promise', err: missingTable },
    },
    {
      form: 'pool.query(sql, values, cb)',
      run: ({ pool }) => viaCallback((cb) => pool.query(byName, [BENIGN], cb)),
      // `this` differs across versions (compared between the two runs only)
      expected: { returned: 'Query', sync: false, rows: [ALICE], fields },
    },
    {
      form: 'pool.execute(sql, values, cb)',
      run: ({ pool }) => viaCallback((cb) => pool.execute(byName, [BENIGN], cb)),
      expected: { returned: 'undefined', sync: false, rows: [ALICE], fields },
    },
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
    { form: 'mysql2/promise pool.query', run: ({ promisePool }) => viaPromise(() => promisePool.query(byName, [BENIGN])), expected: promised },
    { form: 'mysql2/promise pool.execute', run: ({ promisePool }) => viaPromise(() => promisePool.execute(byName, [BENIGN])), expected: promised },
    {
      form: 'mysql2/promise pool.getConnection, then query',
      run: async ({ promisePool }) => {
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
    list.push({
      form: 'mysql2/promise connection.prepare, then statement.execute',
      run: async ({ promiseConn }) => {
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

  return list;
}

// ---- refusal in mysql2's own shape -----------------------------------------------------------------------

const onConn = ({ conn }: Fixture) => (sql: string) => callback<unknown>((cb) => conn.query(sql, cb));
const onPool = ({ pool }: Fixture) => (sql: string) => callback<unknown>((cb) => pool.query(sql, cb));
const onPromisePool = ({ promisePool }: Fixture) => async (sql: string) => (await promisePool.query(sql))[0];

const refusals: Array<Refusal<Fixture>> = [
  {
    name: 'query(sql, cb) → the callback gets the error on a later tick; a Query is returned',
    run: async (fx, refused) => {
      const error = await refused(
        (sql) =>
          errorOf((deliver) => {
            let sync = true;
            const command = fx.conn.query(sql, (err) => {
              expect(sync).toBe(false);
              deliver(err);
            });
            expect(kindOf(command)).toBe('Query');
            sync = false;
          }),
        onConn(fx),
      );
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: "events: query(sql) emits 'error' and then 'end'",
    run: async (fx, refused) => {
      const error = await refused(
        (sql) =>
          errorOf((deliver) => {
            const seen: string[] = [];
            const command = fx.conn.query(sql);
            command.on('result', () => seen.push('result'));
            command.on('error', (err: Error) => seen.push(`error:${(err as { code?: string }).code}`));
            command.on('end', () => {
              expect(seen).toEqual([`error:${BLOCKED}`]);
              deliver(Object.assign(new Error('refused'), { code: BLOCKED }));
            });
          }),
        onConn(fx),
      );
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: "stream: query(sql).stream() fails with 'error'",
    run: async (fx, refused) => {
      const error = await refused(
        (sql) =>
          errorOf((deliver) => {
            const rows: unknown[] = [];
            fx.conn
              .query(sql)
              .stream()
              .on('data', (row: unknown) => rows.push(row))
              .on('error', (err: Error) => {
                expect(rows).toEqual([]);
                deliver(err);
              })
              .on('end', () => deliver(undefined));
          }),
        onConn(fx),
      );
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: 'execute(sql, values, cb) → the callback gets the error',
    run: async (fx, refused) => {
      const error = await refused((sql) => errorOf((deliver) => void fx.conn.execute(sql, [], deliver)), onConn(fx));
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: 'prepare(sql, cb) → the callback gets the error',
    run: async (fx, refused) => {
      const error = await refused((sql) => errorOf((deliver) => void fx.conn.prepare(sql, deliver)), onConn(fx));
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: 'mysql2/promise connection: query, execute (and prepare) reject',
    run: async ({ promiseConn }, refused) => {
      const onPromiseConn = async (sql: string) => (await promiseConn.query(sql))[0];
      const rejected = await refused(async (sql) => {
        const calls: Array<Promise<unknown>> = [promiseConn.query(sql), promiseConn.execute(sql, [])];
        if (promiseConn.prepare) calls.push(promiseConn.prepare(sql));
        const errors = await Promise.all(calls.map((p) => p.then(() => undefined, (e: Error & { code?: string }) => e)));
        for (const e of errors) expect(e?.code).toBe(BLOCKED);
        return errors[0]!;
      }, onPromiseConn);
      expect(rejected.code).toBe(BLOCKED);
    },
  },
];

const poolRefusals: Array<Refusal<Fixture>> = [
  {
    name: 'pool.query(sql, cb)',
    run: async (fx, refused) => {
      const error = await refused((sql) => errorOf((deliver) => void fx.pool.query(sql, deliver)), onPool(fx));
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: "pool.query(sql) events: 'error' then 'end'",
    run: async (fx, refused) => {
      const error = await refused(
        (sql) =>
          errorOf((deliver) => {
            let failure: unknown;
            fx.pool
              .query(sql)
              .on('error', (err: unknown) => (failure = err))
              .on('end', () => deliver(failure));
          }),
        onPool(fx),
      );
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: 'pool.execute(sql, values, cb)',
    run: async (fx, refused) => {
      const error = await refused((sql) => errorOf((deliver) => fx.pool.execute(sql, [], deliver)), onPool(fx));
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: 'pool.getConnection(cb), refused conn.query, release',
    run: async (fx, refused) => {
      const error = await refused(
        (sql) =>
          errorOf((deliver) =>
            fx.pool.getConnection((err, pooled) => {
              if (err) return deliver(new Error(`getConnection failed: ${err.message}`));
              pooled.query(sql, (queryError) => {
                pooled.release();
                deliver(queryError);
              });
            }),
          ),
        onPool(fx),
      );
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: "pool.getConnection(cb), refused conn.query(sql).stream(): a real Query, whose stream fails with 'error'",
    run: async (fx, refused) => {
      const error = await refused(
        (sql) =>
          errorOf((deliver) =>
            fx.pool.getConnection((err, pooled) => {
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
        onPool(fx),
      );
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: 'mysql2/promise pool: query and execute reject',
    run: async (fx, refused) => {
      const error = await refused(async (sql) => {
        const viaQuery = await fx.promisePool.query(sql).then(() => undefined, (e: Error & { code?: string }) => e);
        const viaExecute = await fx.promisePool.execute(sql, []).then(() => undefined, (e: Error) => e);
        expect(viaExecute).toMatchObject({ code: BLOCKED });
        return viaQuery!;
      }, onPromisePool(fx));
      expect(error.code).toBe(BLOCKED);
    },
  },
  {
    name: 'several refusals in a row do not drain the pool',
    run: async (fx, refused) => {
      const error = await refused(async (sql) => {
        let last: (Error & { code?: string }) | undefined;
        for (let i = 0; i < 5; i++) last = await errorOf((deliver) => void fx.pool.query(sql, deliver));
        return last!;
      }, onPool(fx));
      expect(error.code).toBe(BLOCKED);
    },
  },
];

// ---- the suite ------------------------------------------------------------------------------------------

const agent = describeSqlDriver<Fixture>({
  driver: 'mysql2',
  db: 'mysql',
  copies: COPIES,
  async open(copy) {
    const mysql = require(copy.dir) as Mysql2;
    const mysqlPromise = require(join(copy.dir, 'promise')) as Mysql2Promise;
    return {
      mysql,
      conn: mysql.createConnection(OPTIONS),
      named: mysql.createConnection({ ...OPTIONS, namedPlaceholders: true }),
      pool: mysql.createPool({ ...OPTIONS, connectionLimit: 1 }),
      promiseConn: await mysqlPromise.createConnection(OPTIONS),
      promisePool: mysqlPromise.createPool({ ...OPTIONS, connectionLimit: 1 }),
    };
  },
  close: ({ conn, named, pool, promiseConn, promisePool }) =>
    Promise.all([
      ...[conn, named].map((c) => new Promise<void>((r) => c.end(() => r()))),
      new Promise<void>((r) => pool.end(() => r())),
      promiseConn.end(),
      promisePool.end(),
    ]),
  patchedTitle: "is patched: Connection query/execute/prepare and Pool getConnection are wrapped, with the originals' name and length",
  patched: ({ mysql, pool }) => [
    ['Connection.query', mysql.Connection.prototype.query],
    ['Connection.execute', mysql.Connection.prototype.execute],
    ['Connection.prepare', mysql.Connection.prototype.prepare],
    ['Pool.getConnection', (Object.getPrototypeOf(pool) as Record<string, unknown>).getConnection],
  ],
  forms,
  sentinel: (fx, sql) => onConn(fx)(sql),
  refusalTitle: "refusal in mysql2's own shape (attack input, block mode)",
  refusals: () => refusals,
  poolRefusals: () => poolRefusals,
  events: () => [
    { call: 'query(sql, values, cb)', run: ({ conn }) => callback((cb) => conn.query(byName, [BENIGN], cb)), expected: [mysqlEvent('mysql2.query', byName)] },
    { call: 'query({ sql }, cb)', run: ({ conn }) => callback((cb) => conn.query({ sql: literal }, cb)), expected: [mysqlEvent('mysql2.query', literal)] },
    { call: 'execute(sql, values, cb)', run: ({ conn }) => callback((cb) => conn.execute(byName, [BENIGN], cb)), expected: [mysqlEvent('mysql2.execute', byName)] },
    {
      call: 'prepare(sql, cb)',
      run: ({ conn }) => callback<Statement>((cb) => conn.prepare(`${byName} /* event */`, cb)).then((statement) => statement.close()),
      expected: [mysqlEvent('mysql2.prepare', `${byName} /* event */`)],
    },
    {
      call: 'named placeholders: the text as written, placeholders and all',
      run: ({ named }) => callback((cb) => named.query('SELECT id FROM users WHERE name = :name', { name: BENIGN }, cb)),
      expected: [mysqlEvent('mysql2.query', 'SELECT id FROM users WHERE name = :name')],
    },
    { call: 'pool.query(sql, values, cb): the pooled connection\'s query', run: ({ pool }) => callback((cb) => pool.query(byName, [BENIGN], cb)), expected: [mysqlEvent('mysql2.query', byName)] },
    { call: 'mysql2/promise connection.execute', run: ({ promiseConn }) => promiseConn.execute(byName, [BENIGN]), expected: [mysqlEvent('mysql2.execute', byName)] },
    { call: 'mysql2/promise pool.query', run: ({ promisePool }) => promisePool.query(literal), expected: [mysqlEvent('mysql2.query', literal)] },
    { call: 'a refused statement', input: ATTACK, run: ({ conn }) => callback((cb) => conn.query(attackSql('event'), cb)), expected: [mysqlEvent('mysql2.query', attackSql('event'))] },
  ],
  extra: {
    unchanged({ fx, asRequest }) {
      it('parameterised values carrying the attack string are data, not structure: the statement runs', async () => {
        const { conn } = fx();
        const rows = await asRequest(ATTACK, () => callback<unknown>((cb) => conn.query(byName, [ATTACK], cb)));
        expect(plain(rows)).toEqual([]);
      });
    },
    copy: concurrency,
  },
});

function concurrency({ fx, asRequest }: SuiteContext<Fixture>): void {
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
      const shared = fx().mysql.createPool({ ...OPTIONS, connectionLimit: 1 });
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
}

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
    expect(agent.isWrapped(old.Connection.prototype.query)).toBe(false);
    expect(agent.isWrapped(old.Connection.prototype.execute)).toBe(false);

    const conn = old.createConnection(OPTIONS);
    try {
      const rows = await agent.asRequest(ATTACK, () => callback<unknown>((cb) => conn.query(`SELECT count(*) AS n FROM users WHERE name = '${ATTACK}'`, cb)));
      expect(plain(rows)).toEqual([{ n: 3 }]);
    } finally {
      conn.end();
    }
  });
});
