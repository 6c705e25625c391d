import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { defineHook, wrap, ownerOf, inspect, shouldInspect, bindToRequest, type AnyFunction, type SqlEvent } from '../src/hook-kit.js';

/**
 * SINK sql: mysql2 (callback and `mysql2/promise`, which delegates to the same connection methods).
 * `query`/`execute`/`prepare` are judged on the statement template the app wrote, before mysql2
 * interpolates values. Pool `getConnection` re-binds its callback so a queued query is judged in its
 * own request. A refused command still emits 'end', otherwise the pool would never get the connection back.
 */

interface Command extends EventEmitter {
  sql?: unknown;
  onResult?: AnyFunction;
}

type CreateQuery = (sql: unknown, values: unknown, cb: unknown, config: unknown) => Command;

interface ConnectionClass {
  createQuery?: CreateQuery;
  super_?: ConnectionClass;
}

interface ConnectionLike {
  constructor: ConnectionClass;
  config?: unknown;
  _handshakePacket?: { serverVersion?: string };
}

function statementOf(first: unknown): string | undefined {
  if (typeof first === 'string') return first;
  if (typeof first === 'object' && first !== null) {
    const sql = (first as { sql?: unknown }).sql;
    if (typeof sql === 'string') return sql;
  }
  return undefined;
}

function systemOf(connection: ConnectionLike): SqlEvent['system'] {
  const version = connection._handshakePacket?.serverVersion;
  return typeof version === 'string' && /mariadb/i.test(version) ? 'mariadb' : 'mysql';
}

function isCommand(value: unknown): value is Command {
  return value instanceof EventEmitter && typeof (value as Command).sql === 'string';
}

function callbackOf(args: unknown[]): AnyFunction | undefined {
  if (typeof args[1] === 'function') return args[1] as AnyFunction;
  if (typeof args[2] === 'function') return args[2] as AnyFunction;
  return undefined;
}

/** Delivers `error` the way mysql2 reports a failed command, then 'end' so pools release the connection. */
function settle(command: Command, error: Error, callback: AnyFunction | undefined): Command {
  process.nextTick(() => {
    const onResult = callback ?? command.onResult;
    if (typeof onResult === 'function') onResult(error);
    else if (command.listenerCount('error') > 0) command.emit('error', error);
    command.emit('end');
  });
  return command;
}

/**
 * `Connection.createQuery`, looked up past subclasses: mysql2 1.0.x builds `PoolConnection` with
 * `util.inherits`, which does not inherit statics (`super_` points at `Connection`).
 */
function createQueryOf(connection: ConnectionLike): CreateQuery | undefined {
  for (let ctor: ConnectionClass | undefined = connection.constructor; ctor; ctor = ctor.super_) {
    if (typeof ctor.createQuery === 'function') return ctor.createQuery.bind(ctor);
  }
  return undefined;
}

function failQuery(connection: ConnectionLike, error: Error, args: unknown[]): Command {
  if (isCommand(args[0])) return settle(args[0], error, undefined);
  let command: Command | undefined;
  try {
    // A real Query object, so event- and stream-style callers get the object they expect.
    command = createQueryOf(connection)?.(args[0], typeof args[1] === 'function' ? undefined : args[1], undefined, connection.config);
  } catch {
    command = undefined;
  }
  return settle(command ?? (new EventEmitter() as Command), error, callbackOf(args));
}

function bindCallbacks(args: unknown[]): void {
  const first = args[0];
  if (isCommand(first) && typeof first.onResult === 'function') first.onResult = bindToRequest(first.onResult);
  if (typeof args[1] === 'function') args[1] = bindToRequest(args[1] as AnyFunction);
  else if (typeof args[2] === 'function') args[2] = bindToRequest(args[2] as AnyFunction);
}

function wrapStatementMethod(proto: object, method: 'query' | 'execute' | 'prepare'): void {
  wrap(proto as Record<typeof method, AnyFunction>, method, (original) =>
    function (this: ConnectionLike, ...args: unknown[]) {
      if (!shouldInspect()) return original.apply(this, args);
      const sql = statementOf(args[0]);
      if (sql !== undefined) {
        const verdict = inspect({ kind: 'sql', op: `mysql2.${method}`, dialect: 'mysql', system: systemOf(this), sql });
        if (verdict) {
          if (method === 'query') return failQuery(this, verdict.error, args);
          return settle(new EventEmitter() as Command, verdict.error, method === 'prepare' ? (typeof args[1] === 'function' ? (args[1] as AnyFunction) : undefined) : callbackOf(args));
        }
      }
      bindCallbacks(args);
      return original.apply(this, args);
    },
  );
}

function wrapGetConnection(proto: object): void {
  wrap(proto as { getConnection: AnyFunction }, 'getConnection', (original) =>
    function getConnection(this: unknown, ...args: unknown[]) {
      if (typeof args[0] === 'function' && shouldInspect()) args[0] = bindToRequest(args[0] as AnyFunction);
      return original.apply(this, args);
    },
  );
}

/**
 * mysql2 1.0.x does not export `Pool`; every pool it makes (createPool, createPoolCluster, mysql2/promise)
 * is a lib/pool.js instance, so its prototype is taken from there.
 */
function poolClassOf(mysql: { Pool?: { prototype: object } }, basedir: string | undefined): { prototype: object } | undefined {
  if (mysql.Pool || !basedir) return mysql.Pool;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the library's own module, by its install path
    return require(join(basedir, 'lib', 'pool.js')) as { prototype: object };
  } catch {
    return undefined;
  }
}

export const mysql2 = defineHook({
  module: 'mysql2',
  patch(exports, info) {
    const mysql = exports as { Connection?: { prototype: object }; Pool?: { prototype: object } };
    let patched = 0;
    for (const method of ['query', 'execute', 'prepare'] as const) {
      const owner = ownerOf(mysql.Connection?.prototype, method);
      if (owner) {
        wrapStatementMethod(owner, method);
        patched++;
      }
    }
    if (patched === 0) throw new Error('mysql2 Connection.prototype.query not found');
    const poolOwner = ownerOf(poolClassOf(mysql, info.basedir)?.prototype, 'getConnection');
    if (poolOwner) wrapGetConnection(poolOwner);
  },
});
