import { ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { RequestContext } from './context/request-context.js';

/**
 * The agent answers a refused request itself, so the client gets the same standard response in Express,
 * Fastify, Koa and plain `http` whether the app's error handler would have sent a 500, nothing, or
 * swallowed the error. Once claimed, that one response object ignores the app's later writes; every
 * other response is untouched, so normal traffic pays nothing.
 */

export interface StandardResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface ClaimedResponse {
  send(response: StandardResponse): void;
}

const SILENCED = Symbol.for('stepguard.silenced');

/**
 * Takes over `ctx.res`. Returns undefined when the app already started its response (headers sent),
 * when the agent answered this request before, or when configured to let the app respond.
 */
export function claimResponse(ctx: RequestContext): ClaimedResponse | undefined {
  const res = ctx.res;
  if (!res || ctx.responded || res.headersSent || res.writableEnded) return undefined;
  ctx.responded = true;
  const real = captureRealMethods(res);
  silence(res);
  let sent = false;
  return {
    send(response) {
      if (sent) return;
      sent = true;
      try {
        for (const name of real.getHeaderNames()) real.removeHeader(name);
        real.setHeader('content-type', 'application/problem+json');
        real.setHeader('cache-control', 'no-store');
        real.setHeader('content-length', String(Buffer.byteLength(response.body)));
        for (const [name, value] of Object.entries(response.headers)) real.setHeader(name, value);
        real.writeHead(response.status);
        real.end(response.body);
      } catch {
        // the socket went away; nothing to answer
      }
    },
  };
}

/** 403 that says nothing about why: no rule, detector or stack reaches the client. */
export function forbiddenResponse(incidentId: string): StandardResponse {
  return problem(403, {
    type: 'about:blank',
    title: 'Forbidden',
    status: 403,
    detail: 'The request was refused.',
    instance: `urn:stepguard:incident:${incidentId}`,
  });
}

export function unavailableResponse(incidentId: string, retryAfterSeconds = 5): StandardResponse {
  return problem(
    503,
    {
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'This operation needs an additional verification that is temporarily unavailable. Please retry shortly.',
      instance: `urn:stepguard:incident:${incidentId}`,
    },
    { 'retry-after': String(retryAfterSeconds) },
  );
}

export function problem(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): StandardResponse {
  return { status, headers, body: JSON.stringify(body) };
}

export function newIncidentId(): string {
  return randomBytes(8).toString('hex');
}

interface RealMethods {
  getHeaderNames(): string[];
  removeHeader(name: string): void;
  setHeader(name: string, value: string): void;
  writeHead(status: number): void;
  end(body: string): void;
}

function captureRealMethods(res: ServerResponse): RealMethods {
  // Node's own methods, not the instance's: the app or a middleware (compression…) may have replaced those.
  const proto = ServerResponse.prototype;
  return {
    getHeaderNames: () => proto.getHeaderNames.call(res),
    removeHeader: (n) => proto.removeHeader.call(res, n),
    setHeader: (n, v) => void proto.setHeader.call(res, n, v),
    writeHead: (s) => void (proto.writeHead as (this: ServerResponse, status: number) => unknown).call(res, s),
    end: (b) => void (proto.end as (this: ServerResponse, body: string) => unknown).call(res, b),
  };
}

function silence(res: ServerResponse): void {
  if ((res as unknown as Record<symbol, unknown>)[SILENCED]) return;
  const self = res;
  const callLast = (args: unknown[]) => {
    const cb = args[args.length - 1];
    if (typeof cb === 'function') process.nextTick(cb as () => void);
  };
  const define = (name: string, value: unknown) =>
    Object.defineProperty(res, name, { value, configurable: true, writable: true, enumerable: false });
  define('writeHead', () => self);
  define('setHeader', () => self);
  define('appendHeader', () => self);
  define('removeHeader', () => undefined);
  define('flushHeaders', () => undefined);
  define('writeContinue', () => undefined);
  define('addTrailers', () => undefined);
  define('write', (...args: unknown[]) => {
    callLast(args);
    return true;
  });
  define('end', (...args: unknown[]) => {
    callLast(args);
    return self;
  });
  // Error handlers that see "headers sent" destroy the socket (finalhandler does), which could cut our
  // answer short; this response object reports "not sent" so they write into the silenced methods instead.
  Object.defineProperty(res, 'headersSent', { get: () => false, configurable: true });
  Object.defineProperty(res, SILENCED, { value: true });
}
