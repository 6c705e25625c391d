import { ServerResponse } from 'node:http';
import type { RespondMode } from '../config.js';
import type { RequestContext } from '../context/request-context.js';
import { warnOnce, errorMessage } from '../log.js';
import { stepUpUnavailableResponse, type StandardResponse } from './responses.js';

/**
 * The only code that writes agent responses. Two paths:
 * - a refused request: the agent claims the app's response object and answers it itself, so the client
 *   gets the same standard response in Express, Fastify, Koa and plain `http` whether the app's error
 *   handler would have sent a 500, nothing, or swallowed the error. Once claimed, that one response object
 *   ignores the app's later writes; every other response is untouched, so normal traffic pays nothing.
 * - a request to an endpoint the agent serves itself (step-up verification): written directly.
 */

const SILENCED = Symbol.for('stepguard.silenced');

/** Headers of every agent response, in this order; the response's own headers override the defaults. */
function headersOf(response: StandardResponse): Array<[string, string | string[]]> {
  const headers: Record<string, string | string[]> = { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...response.headers };
  headers['content-length'] = String(Buffer.byteLength(response.body));
  return Object.entries(headers);
}

/** An agent endpoint's answer. Nothing when the response already started. */
export function writeResponse(res: ServerResponse, response: StandardResponse): void {
  if (res.headersSent || res.writableEnded) return;
  res.writeHead(response.status, Object.fromEntries(headersOf(response)));
  res.end(response.body);
}

/**
 * Answers a refused request with `response` — or, for a function, with what it resolves to (the step-up
 * answer depends on the store) — unless the app renders refusals itself (`respond: app`), the app already
 * started its response, or the agent answered this request before.
 */
export function refuse(ctx: RequestContext, mode: RespondMode, response: StandardResponse | (() => Promise<StandardResponse>)): void {
  if (mode !== 'agent') return;
  const claimed = claimResponse(ctx);
  if (!claimed) return;
  if (typeof response !== 'function') return claimed.send(response);
  response().then(
    (built) => claimed.send(built),
    (error: unknown) => {
      warnOnce('enforce:build', `could not build the refusal response; answering 503: ${errorMessage(error)}`);
      claimed.send(stepUpUnavailableResponse('0'));
    },
  );
}

interface ClaimedResponse {
  send(response: StandardResponse): void;
}

/** Takes over `ctx.res`. Undefined when the app already started its response or the agent answered before. */
function claimResponse(ctx: RequestContext): ClaimedResponse | undefined {
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
        for (const [name, value] of headersOf(response)) real.setHeader(name, value);
        real.writeHead(response.status);
        real.end(response.body);
      } catch {
        // the socket went away; nothing to answer
      }
    },
  };
}

interface RealMethods {
  getHeaderNames(): string[];
  removeHeader(name: string): void;
  setHeader(name: string, value: string | string[]): void;
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
