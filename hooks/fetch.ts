import {
  defineHook,
  wrap,
  ownerOf,
  inspect,
  shouldInspect,
  currentOutgoing,
  runOutgoing,
  incomingServer,
  describeUrl,
  type AnyFunction,
  type HttpOutEvent,
  type OutgoingCall,
} from '../src/hook-kit.js';

/**
 * SINK http.out: the global `fetch` (Node's bundled undici) and the `undici` package.
 *
 * - `fetch(input, init)` (global and `undici.fetch`) is judged by its URL; a refusal is a rejected promise
 *   shaped like any network failure: `TypeError('fetch failed')` with the refusal as `cause`.
 * - Every undici request — `undici.request/stream/pipeline`, `Client`/`Pool`/`Agent`/`ProxyAgent#request`,
 *   and each hop fetch makes — ends in `Dispatcher#dispatch` (one method on undici's dispatcher base). Judged
 *   there by origin + path; a refusal goes to the handler's `onError`, as undici reports a dispatch it
 *   cannot perform. Inside a fetch, a dispatch to another URL than the one fetched is a redirect hop and is
 *   judged as part of the chain.
 * - The connection each dispatch opens is judged by its DNS answer in hooks/net.ts.
 * The bundled undici is not a module the app can require: its dispatcher class is reached through the global
 * dispatcher (`Symbol.for('undici.globalDispatcher.1')`) once fetch has loaded it.
 */

const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

interface DispatchOptions {
  origin?: unknown;
  path?: unknown;
  method?: unknown;
}

interface DispatchHandler {
  onError?: (error: Error) => void;
  onResponseError?: (controller: unknown, error: Error) => void;
}

/** The URL fetch will request: strings as written, URL and Request objects by their href. */
function fetchUrl(input: unknown): string | undefined {
  if (typeof input === 'string') return input;
  if (input instanceof URL) return input.href;
  const url = (input as { url?: unknown } | null)?.url;
  if (typeof url === 'string' && typeof (input as { headers?: unknown }).headers === 'object') return url; // a Request
  if (input && typeof input === 'object') {
    try {
      return String(input); // fetch stringifies anything else
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** A Client or Pool knows its origin (`this[Symbol('url')]`); requests made on it carry none. */
function ownOrigin(dispatcher: unknown): unknown {
  if (!dispatcher || typeof dispatcher !== 'object') return undefined;
  const key = Object.getOwnPropertySymbols(dispatcher).find((s) => s.description === 'url');
  return key ? (dispatcher as Record<symbol, unknown>)[key] : undefined;
}

function dispatchUrl(dispatcher: unknown, opts: DispatchOptions): string | undefined {
  const raw = opts.origin ?? ownOrigin(dispatcher);
  const origin = raw instanceof URL ? raw.origin : typeof raw === 'string' ? raw.replace(/\/+$/, '') : undefined;
  if (!origin) return undefined;
  const path = typeof opts.path === 'string' ? opts.path : '/';
  return `${origin}${path.startsWith('/') ? '' : '/'}${path}`;
}

function failDispatch(handler: DispatchHandler | undefined, error: Error): boolean {
  if (typeof handler?.onError === 'function') handler.onError(error);
  else if (typeof handler?.onResponseError === 'function') handler.onResponseError(null, error);
  else throw error;
  return false;
}

function wrapDispatch(proto: object | undefined): void {
  if (!proto) return;
  wrap(proto as { dispatch: AnyFunction }, 'dispatch', (original) =>
    function dispatch(this: unknown, ...args: unknown[]) {
      if (!shouldInspect()) return original.apply(this, args);
      const opts = args[0] as DispatchOptions | undefined;
      // CONNECT opens a proxy tunnel: the proxy is the app's infrastructure, the target was judged already.
      if (!opts || typeof opts !== 'object' || opts.method === 'CONNECT') return original.apply(this, args);
      const url = dispatchUrl(this, opts);
      if (!url) return original.apply(this, args);
      const { href } = describeUrl(url);
      const outer = currentOutgoing();
      if (outer && outer.href === href) return original.apply(this, args); // Agent → Pool → Client: the same hop
      const redirectFrom = outer?.follows ? (outer.redirectFrom ?? outer.url) : undefined;
      const op = outer?.follows ? outer.op : 'undici.dispatch';
      const event: HttpOutEvent = { kind: 'http.out', op, url, redirectFrom, server: incomingServer() };
      const verdict = inspect(event);
      if (verdict) return failDispatch(args[1] as DispatchHandler | undefined, verdict.error);
      const call: OutgoingCall = { op, url, host: '', href, redirectFrom, follows: outer?.follows ?? false };
      return runOutgoing(call, () => original.apply(this, args));
    },
  );
}

/** The dispatcher class behind the global dispatcher (the bundled undici's, unless the app installed its own). */
function hookDispatcherOf(dispatcher: unknown): void {
  if (dispatcher && typeof dispatcher === 'object') wrapDispatch(ownerOf(dispatcher, 'dispatch'));
}

function wrapFetch(target: object, op: string): void {
  wrap(target as { fetch: AnyFunction }, 'fetch', (original) =>
    function fetch(this: unknown, ...args: unknown[]) {
      if (!shouldInspect()) return original.apply(this, args);
      const url = fetchUrl(args[0]);
      if (url === undefined) return original.apply(this, args);
      const init = args[1] as { dispatcher?: unknown } | undefined;
      hookDispatcherOf(init?.dispatcher);
      hookDispatcherOf((globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER]);
      const verdict = inspect({ kind: 'http.out', op, url, server: incomingServer() });
      if (verdict) return Promise.reject(new TypeError('fetch failed', { cause: verdict.error }));
      const { href } = describeUrl(url);
      const result = runOutgoing({ op, url, host: '', href, redirectFrom: undefined, follows: true }, () => original.apply(this, args)) as unknown;
      // The bundled undici loads on the first call and creates the global dispatcher then; its first
      // dispatch is a few microtasks away.
      hookDispatcherOf((globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER]);
      return result;
    },
  );
}

export const globalFetch = defineHook({
  module: 'fetch',
  global: true,
  patch(global) {
    if (typeof (global as { fetch?: unknown }).fetch !== 'function') return;
    wrapFetch(global as object, 'fetch');
  },
});

export const undici = defineHook({
  module: 'undici',
  patch(exports) {
    const mod = exports as { fetch?: unknown; Agent?: { prototype: object }; Client?: { prototype: object } };
    const proto = ownerOf(mod.Agent?.prototype, 'dispatch');
    if (!proto) throw new Error('undici Dispatcher#dispatch not found');
    wrapDispatch(proto);
    wrapDispatch(ownerOf(mod.Client?.prototype, 'dispatch'));
    if (typeof mod.fetch === 'function') wrapFetch(mod, 'undici.fetch');
  },
});
