import { defineHook, wrap, ownerOf, inspect, requestToInspect, bindToRequest, handDown, wasHandedDown, type AnyFunction, type RequestContext, type SqlEvent } from '../src/hook-kit.js';

/**
 * SINK sql: node-postgres. `Client.prototype.query` sees every statement (Pool.query delegates to it); a
 * statement `Pool.query` judged and let through is not judged again by the client query it becomes (handDown).
 * `Pool.prototype.connect` re-binds its callback so a query that waited for a pooled client is judged
 * in its own request, not in the one that released the client.
 */

interface Submittable {
  submit: AnyFunction;
  text?: unknown;
  cursor?: { text?: unknown };
  callback?: unknown;
  handleError?: AnyFunction;
  emit?: AnyFunction;
}

function isSubmittable(value: unknown): value is Submittable {
  return typeof value === 'object' && value !== null && typeof (value as Submittable).submit === 'function';
}

function statementOf(first: unknown): string | undefined {
  if (typeof first === 'string') return first;
  if (typeof first !== 'object' || first === null) return undefined;
  const text = (first as { text?: unknown }).text;
  if (typeof text === 'string') return text;
  const cursorText = (first as Submittable).cursor?.text;
  return typeof cursorText === 'string' ? cursorText : undefined;
}

/** Index of the callback pg will use: `query(text, cb)`, `query(text, values, cb)`. */
function callbackIndex(args: unknown[]): number {
  if (typeof args[2] === 'function') return 2;
  if (typeof args[1] === 'function') return 1;
  return -1;
}

/** The promise type the client or pool was configured with (`new Client({ Promise })`), as pg uses it. */
function promiseOf(target: unknown, key: '_Promise' | 'Promise'): PromiseConstructor {
  const configured = (target as Record<string, unknown> | null)?.[key];
  return typeof configured === 'function' ? (configured as PromiseConstructor) : Promise;
}

/** Fails a `Client.query` call exactly as pg reports a query error in the form the caller used. */
function failLikePg(client: unknown, error: Error, args: unknown[]): unknown {
  const first = args[0];
  if (isSubmittable(first)) {
    // pg adopts a callback passed next to a submittable (`query(new Query(text), cb)`) before failing it.
    const cbIndex = callbackIndex(args);
    if (typeof first.callback !== 'function' && cbIndex !== -1) first.callback = args[cbIndex];
    process.nextTick(() => {
      if (typeof first.handleError === 'function') first.handleError(error);
      else if (typeof first.callback === 'function') (first.callback as AnyFunction)(error);
      else first.emit?.('error', error);
    });
    return first;
  }
  const cbIndex = callbackIndex(args);
  if (cbIndex !== -1) {
    process.nextTick(args[cbIndex] as AnyFunction, error);
    return undefined;
  }
  const configCallback = (first as { callback?: unknown } | undefined)?.callback;
  if (typeof configCallback === 'function') {
    process.nextTick(configCallback as AnyFunction, error);
    return undefined;
  }
  return promiseOf(client, '_Promise').reject(error);
}

/** pg-pool's shape: the callback (`query(text, cb)`, `query(text, values, cb)`) on a later tick, else a rejected promise. */
function failLikePool(pool: unknown, error: Error, args: unknown[]): unknown {
  const cbIndex = callbackIndex(args);
  if (cbIndex !== -1) {
    process.nextTick(args[cbIndex] as AnyFunction, error);
    return undefined;
  }
  return promiseOf(pool, 'Promise').reject(error);
}

/**
 * Callbacks pg calls from the socket's async context (the request that opened the pooled connection):
 * re-bound to the calling request, including the one a submittable carries (`new Query(text, cb)`).
 */
function bindCallbacks(args: unknown[], ctx: RequestContext): void {
  const first = args[0];
  if (isSubmittable(first) && typeof first.callback === 'function') first.callback = bindToRequest(first.callback as AnyFunction, ctx);
  const cbIndex = callbackIndex(args);
  if (cbIndex !== -1) args[cbIndex] = bindToRequest(args[cbIndex] as AnyFunction, ctx);
}

/**
 * The statement of a `Pool.query` in promise form that pg-pool is dispatching right now, or undefined: set while
 * pg-pool's `query` runs (it connects synchronously, so wrapPoolConnect sees it) and again while pg-pool's connect
 * callback runs, which calls the client's query first thing; that query takes it.
 *
 * pg-pool answers `await pool.query(text, values)` by calling `client.query(text, values, cb)` with a callback of its
 * own that releases the client and settles the promise. pg calls that callback from the pooled socket, in the async
 * context of whichever request opened the connection; re-entering the calling request there made a new
 * AsyncLocalStorage frame per query on Node 24 (a copy of the socket's frame). Nothing in that callback needs the
 * request: a native promise runs each of its reactions in the context its `then` (or `await`) was called in, not the
 * one that settles it. So that one callback is passed as it is; every callback the app gives is still bound.
 */
let promiseQueryStatement: string | undefined;

/** `fn.apply(self, args)` with promiseQueryStatement set to `sql` meanwhile. */
function callDispatching(sql: string, fn: AnyFunction, self: unknown, args: unknown[]): unknown {
  const outer = promiseQueryStatement;
  promiseQueryStatement = sql;
  try {
    return fn.apply(self, args);
  } finally {
    promiseQueryStatement = outer;
  }
}

function wrapClientQuery(proto: object): void {
  wrap(proto as { query: AnyFunction }, 'query', (original) =>
    function query(this: unknown, ...args: unknown[]) {
      const ctx = requestToInspect();
      if (ctx === undefined) return original.apply(this, args);
      const sql = statementOf(args[0]);
      const fromPromiseQuery = promiseQueryStatement !== undefined && promiseQueryStatement === sql;
      promiseQueryStatement = undefined;
      if (sql !== undefined && !wasHandedDown('sql', sql, ctx)) {
        const event: SqlEvent = { kind: 'sql', op: 'pg.query', dialect: 'postgres', system: 'postgresql', sql };
        const verdict = inspect(event, ctx);
        if (verdict) return failLikePg(this, verdict.error, args);
      }
      if (!fromPromiseQuery) bindCallbacks(args, ctx);
      return original.apply(this, args);
    },
  );
}

/**
 * `pool.query(text)` / `pool.query(text, values)` with no callback, on a pool whose promises are native ones: the
 * callback pg-pool then hands its client's query only settles that promise (see promiseQueryStatement). A text or
 * a plain config, never a submittable (it may carry a callback of the app's) nor a config with a callback.
 */
function settlesNativePromise(pool: unknown, args: unknown[]): boolean {
  if (typeof args[1] === 'function' || typeof args[2] === 'function') return false;
  const first = args[0];
  if (typeof first !== 'string' && (typeof first !== 'object' || first === null || isSubmittable(first) || typeof (first as { callback?: unknown }).callback === 'function')) return false;
  return promiseOf(pool, 'Promise') === Promise;
}

/** Judged before a client is checked out, so a refused query costs no connection. */
function wrapPoolQuery(proto: object): void {
  wrap(proto as { query: AnyFunction }, 'query', (original) =>
    function query(this: unknown, ...args: unknown[]) {
      const ctx = requestToInspect();
      if (ctx === undefined) return original.apply(this, args);
      const sql = statementOf(args[0]);
      if (sql !== undefined) {
        const verdict = inspect({ kind: 'sql', op: 'pg.pool.query', dialect: 'postgres', system: 'postgresql', sql }, ctx);
        if (verdict) return failLikePool(this, verdict.error, args);
        handDown(sql, ctx);
        if (settlesNativePromise(this, args)) return callDispatching(sql, original, this, args);
      }
      return original.apply(this, args);
    },
  );
}

function wrapPoolConnect(proto: object): void {
  wrap(proto as { connect: AnyFunction }, 'connect', (original) =>
    function connect(this: unknown, ...args: unknown[]) {
      if (typeof args[0] === 'function') {
        const ctx = requestToInspect();
        if (ctx !== undefined) {
          args[0] = bindToRequest(args[0] as AnyFunction, ctx);
          // pg-pool's `query` connects synchronously: this callback is its own, which calls the client's query.
          if (promiseQueryStatement !== undefined) args[0] = handingOver(args[0] as AnyFunction, promiseQueryStatement);
        }
      }
      return original.apply(this, args);
    },
  );
}

/**
 * pg-pool's connect callback for a statement in promise form: the client query it calls (synchronously, first thing)
 * is told so through promiseQueryStatement. The callback is pg-pool's own, called only by pg-pool, which does not
 * read its arity.
 */
function handingOver(callback: AnyFunction, sql: string): AnyFunction {
  return function (this: unknown, ...args: unknown[]) {
    return callDispatching(sql, callback, this, args);
  };
}

export const pg = defineHook({
  module: 'pg',
  patch(exports) {
    const pgModule = exports as { Client?: { prototype: object }; Pool?: { prototype: object } };
    const clientProto = ownerOf(pgModule.Client?.prototype, 'query');
    if (!clientProto) throw new Error('pg.Client.prototype.query not found');
    wrapClientQuery(clientProto);
    const poolProto = ownerOf(pgModule.Pool?.prototype, 'connect');
    if (poolProto) wrapPoolConnect(poolProto);
    const poolQueryProto = ownerOf(pgModule.Pool?.prototype, 'query');
    if (poolQueryProto) wrapPoolQuery(poolQueryProto);
  },
});
