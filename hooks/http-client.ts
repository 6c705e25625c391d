import type * as Http from 'node:http';
import type { Socket } from 'node:net';
import {
  defineHook,
  wrap,
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
 * SINK http.out: `http.request`/`http.get`/`https.request`/`https.get` in every argument form (URL string,
 * URL object, options object, (url, options, cb)). Each call is judged by its URL before anything happens;
 * it then runs inside an outgoing-call scope, so the connection it opens (hooks/net.ts checks the DNS
 * answer) and a request that follows its redirect (follow-redirects, axios, got, node-fetch issue a new
 * request from the 3xx response) are judged against it. A socket reused from the agent's keep-alive pool
 * never looks anything up: its peer address is judged when the request gets it.
 *
 * A refused call returns a real ClientRequest that emits 'error' (then 'close') on a later tick, exactly
 * like a connection the agent could not open — never a synchronous throw.
 */

type Options = Record<string, unknown>;

/** Node's own test (internal/url isURL): what http treats as a URL object. */
function isUrlLike(value: unknown): value is { href: string } {
  const v = value as { href?: unknown; protocol?: unknown; auth?: unknown; path?: unknown } | null;
  return Boolean(v && typeof v === 'object' && v.href && v.protocol && v.auth === undefined && v.path === undefined);
}

const TARGET_KEYS = ['protocol', 'hostname', 'host', 'port', 'path', 'socketPath'] as const;

/** Fields http takes from a URL (urlToHttpOptions). */
function urlFields(url: string): Options | undefined {
  try {
    const u = new URL(url);
    const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    return { protocol: u.protocol, hostname, ...(u.port !== '' ? { port: Number(u.port) } : {}), path: `${u.pathname}${u.search}` };
  } catch {
    return undefined;
  }
}

interface Target {
  readonly url: string;
  /** The host http passes to the connection (`hostname || host || 'localhost'`); '' when it is the URL's. */
  readonly host: string;
}

/**
 * The URL a call targets, as the app wrote it when it passed one and nothing overrides it; otherwise rebuilt
 * from the fields http merges (`{ ...urlToHttpOptions(url), ...options }`). Undefined for unix sockets and for
 * arguments http itself rejects (it then throws as usual).
 */
function targetOf(args: readonly unknown[], defaultProtocol: string): Target | undefined {
  const [first, second] = args;
  let raw: string | undefined;
  let options: Options | undefined;
  if (typeof first === 'string') raw = first;
  else if (isUrlLike(first)) raw = String(first.href);
  else if (first && typeof first === 'object') options = first as Options;
  else if (first !== undefined && typeof first !== 'function') return undefined;
  if (raw !== undefined && second && typeof second === 'object') options = second as Options;
  if (options?.socketPath) return undefined;

  if (raw !== undefined && (!options || !TARGET_KEYS.some((k) => options![k] !== undefined))) return { url: raw, host: '' };
  const fromUrl = raw !== undefined ? urlFields(raw) : {};
  if (!fromUrl) return undefined; // http will throw ERR_INVALID_URL
  const merged: Options = { ...fromUrl, ...options };
  const host = (typeof merged.hostname === 'string' && merged.hostname) || (typeof merged.host === 'string' && merged.host) || 'localhost';
  const protocol = typeof merged.protocol === 'string' ? merged.protocol : defaultProtocol;
  const port = merged.port !== undefined && merged.port !== null && merged.port !== '' ? `:${String(merged.port)}` : '';
  const path = typeof merged.path === 'string' && merged.path !== '' ? merged.path : '/';
  const hostText = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return { url: `${protocol}//${hostText}${port}${path.startsWith('/') ? '' : '/'}${path}`, host };
}

/**
 * A request started while handling the 3xx response of another one, to the URL its Location names, follows
 * that redirect: it belongs to the same chain, whose first URL is what the input may have decided.
 */
function redirectOrigin(outer: OutgoingCall | undefined, href: string): string | undefined {
  if (!outer || !href) return undefined;
  const res = (outer.request as { res?: { statusCode?: unknown; headers?: Record<string, unknown> } } | undefined)?.res;
  const status = typeof res?.statusCode === 'number' ? res.statusCode : 0;
  const location = res?.headers?.location;
  if (status < 300 || status > 399 || typeof location !== 'string') return undefined;
  try {
    const target = new URL(location, outer.url);
    target.hash = '';
    return target.href === href ? (outer.redirectFrom ?? outer.url) : undefined;
  } catch {
    return undefined;
  }
}

/** An agent that hands the request a connection error instead of a socket (what http does when connecting fails). */
function refusingAgent(base: object, error: Error): object {
  return Object.create(base, {
    addRequest: {
      value(req: { onSocket(socket: unknown, err: Error): void }) {
        req.onSocket(undefined, error);
      },
    },
  }) as object;
}

function refuse(mod: typeof Http, original: AnyFunction, self: unknown, args: unknown[], error: Error): unknown {
  const [first, second, third] = args;
  let urlArg: unknown;
  let options: Options | undefined;
  let cb: unknown;
  if (typeof first === 'string' || isUrlLike(first)) {
    urlArg = first;
    if (typeof second === 'function') cb = second;
    else {
      options = second as Options | undefined;
      cb = third;
    }
  } else {
    options = first as Options | undefined;
    cb = second;
  }
  const chosen = options?.agent;
  const base = (chosen && typeof chosen === 'object' ? chosen : (options?._defaultAgent as object | undefined)) ?? mod.globalAgent;
  const merged = { ...options, agent: refusingAgent(base, error) };
  const callArgs: unknown[] = urlArg !== undefined ? [urlArg, merged] : [merged];
  if (typeof cb === 'function') callArgs.push(cb);
  return original.apply(self, callArgs);
}

/** A keep-alive socket is already connected: judge the address it is connected to before the request is written. */
function judgeReusedSocket(req: unknown, event: HttpOutEvent): void {
  const request = req as { once?: AnyFunction; destroy?: AnyFunction } | undefined;
  if (typeof request?.once !== 'function') return;
  request.once('socket', (socket: Socket) => {
    if (socket.connecting || !socket.remoteAddress) return; // new connection: hooks/net.ts judges its DNS answer
    const verdict = inspect({ ...event, address: socket.remoteAddress });
    if (verdict) request.destroy?.(verdict.error);
  });
}

function patchClient(mod: typeof Http, name: 'http' | 'https'): void {
  const defaultProtocol = `${name}:`;
  for (const method of ['request', 'get'] as const) {
    const op = `${name}.${method}`;
    wrap(mod, method, (original) =>
      function (this: unknown, ...args: unknown[]) {
        if (!shouldInspect()) return original.apply(this, args);
        const target = targetOf(args, defaultProtocol);
        if (!target) return original.apply(this, args);
        const outer = currentOutgoing();
        const href = outer ? describeUrl(target.url).href : '';
        const redirectFrom = redirectOrigin(outer, href);
        const event: HttpOutEvent = { kind: 'http.out', op, url: target.url, redirectFrom, server: incomingServer() };
        const verdict = inspect(event);
        if (verdict) return refuse(mod, original, this, args, verdict.error);
        const call: OutgoingCall = { op, url: target.url, host: target.host, href, redirectFrom, follows: false };
        const req = runOutgoing(call, () => original.apply(this, args)) as unknown;
        call.request = req;
        judgeReusedSocket(req, event);
        return req;
      },
    );
  }
}

export const httpClient = defineHook({
  module: 'http',
  builtin: true,
  patch(http) {
    patchClient(http as typeof Http, 'http');
  },
});

export const httpsClient = defineHook({
  module: 'https',
  builtin: true,
  patch(https) {
    patchClient(https as typeof Http, 'https');
  },
});
