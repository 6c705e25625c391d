import { defineHook, wrap, inspect, shouldInspect, bindToRequest, type AnyFunction, type SqlEvent } from '../src/hook-kit.js';

/**
 * SINK sql: the classic `mysql` driver (2.x). Its classes load lazily from `lib/`, so the hooks attach to
 * those files: `Connection.prototype.query` sees every statement (pool and cluster queries end there), and
 * `Pool.prototype.getConnection` re-binds its callback so a query that waited for a pooled connection is
 * judged in its own request. `Pool.prototype.query` is left alone on purpose: how it returns and releases
 * changed across 2.x (2.3 returns nothing and releases from the callback, 2.18 returns the Query and
 * releases on 'end'), and judging at the connection lets each version's own pool code do both.
 *
 * The statement judged is the template the app wrote, before mysql replaces `?` with escaped values. A
 * refused query never reaches the socket and fails the way mysql fails a query it cannot enqueue: a real
 * `Query` object (so `.on('result')`, `.stream()` and `.once('end')` work) that, on the next tick, emits
 * 'error' to the app's listeners, calls the callback with the error, and emits 'end' — which is what
 * releases a pooled connection. Like mysql's own pool failures, an error nobody listens to is dropped
 * rather than escalated to the connection's 'error' event.
 */

interface Query {
  sql?: unknown;
  _callback?: AnyFunction;
  on(event: string, listener: AnyFunction): Query;
  end(error: Error): void;
}

type CreateQuery = (sql: unknown, values: unknown, callback: unknown) => Query;

interface ConnectionLike {
  _protocol?: { _handshakeInitializationPacket?: { serverVersion?: unknown } | null };
}

/** `Connection.createQuery`, captured when lib/Connection.js loads. */
let createQuery: CreateQuery | undefined;

function isQuery(value: unknown): value is Query {
  return typeof value === 'object' && value !== null && typeof (value as Query).end === 'function' && typeof (value as Query).on === 'function';
}

function statementOf(first: unknown): string | undefined {
  if (typeof first === 'string') return first;
  if (typeof first === 'object' && first !== null) {
    const sql = (first as { sql?: unknown }).sql;
    if (typeof sql === 'string') return sql;
  }
  return undefined;
}

function systemOf(connection: ConnectionLike | undefined): SqlEvent['system'] {
  const version = connection?._protocol?._handshakeInitializationPacket?.serverVersion;
  return typeof version === 'string' && /mariadb/i.test(version) ? 'mariadb' : 'mysql';
}

function noop(): void {}

/** A Query that never ran: built as the original would build it, then failed on the next tick. */
function refusedQuery(args: unknown[], error: Error): Query {
  const query = isQuery(args[0]) ? args[0] : createQuery!(args[0], args[1], args[2]);
  process.nextTick(() => {
    query.on('error', noop);
    query.end(error);
  });
  return query;
}

/** Callbacks mysql calls from the socket's async context, re-bound to the calling request. */
function bindCallbacks(args: unknown[]): void {
  const first = args[0];
  if (isQuery(first) && typeof first._callback === 'function') first._callback = bindToRequest(first._callback);
  if (typeof args[1] === 'function') args[1] = bindToRequest(args[1] as AnyFunction);
  else if (typeof args[2] === 'function') args[2] = bindToRequest(args[2] as AnyFunction);
}

export const mysqlConnection = defineHook({
  module: 'mysql/lib/Connection',
  patch(exports) {
    const Connection = exports as { createQuery?: unknown; prototype?: { query?: unknown } };
    if (typeof Connection.createQuery !== 'function' || typeof Connection.prototype?.query !== 'function') {
      throw new Error('mysql Connection.createQuery / Connection.prototype.query not found');
    }
    createQuery = (Connection.createQuery as CreateQuery).bind(Connection);
    wrap(Connection.prototype as { query: AnyFunction }, 'query', (original) =>
      function query(this: ConnectionLike, ...args: unknown[]) {
        if (!shouldInspect()) return original.apply(this, args);
        const sql = statementOf(args[0]);
        if (sql !== undefined) {
          const verdict = inspect({ kind: 'sql', op: 'mysql.query', dialect: 'mysql', system: systemOf(this), sql });
          if (verdict) return refusedQuery(args, verdict.error);
        }
        bindCallbacks(args);
        return original.apply(this, args);
      },
    );
  },
});

export const mysqlPool = defineHook({
  module: 'mysql/lib/Pool',
  patch(exports) {
    const Pool = exports as { prototype?: { query?: unknown; getConnection?: unknown } };
    if (typeof Pool.prototype?.getConnection !== 'function') throw new Error('mysql Pool.prototype.getConnection not found');
    wrap(Pool.prototype as { getConnection: AnyFunction }, 'getConnection', (original) =>
      function getConnection(this: unknown, ...args: unknown[]) {
        if (typeof args[0] === 'function' && shouldInspect()) args[0] = bindToRequest(args[0] as AnyFunction);
        return original.apply(this, args);
      },
    );
  },
});
