import type { ServerResponse } from 'node:http';
import { defineHook, inspect, shouldInspect, wrap, type AnyFunction } from '../src/hook-kit.js';

/**
 * SINK: the `Location` header of a response (`res.setHeader`, `res.writeHead` headers, and so Express
 * `res.redirect`/`res.location`, Koa `ctx.redirect`, Fastify `reply.redirect`, which all end in one of them).
 * A refused redirect never sets the header.
 */

function hostOf(res: ServerResponse): string | undefined {
  const host = (res as { req?: { headers?: Record<string, unknown> } }).req?.headers?.host;
  return typeof host === 'string' ? host : undefined;
}

/**
 * True when the redirect was refused and the agent already answered the request: the call then returns as if
 * it had worked (throwing from a header call made in an async callback would crash the app). When the app
 * renders refusals itself (STEPGUARD_RESPOND=app), the call throws.
 */
function refusedAndAnswered(res: ServerResponse, op: string, value: unknown): boolean {
  const first = Array.isArray(value) ? (value[0] as unknown) : value;
  if (typeof first !== 'string' || first === '') return false;
  const sentBefore = res.headersSent;
  const verdict = inspect({ kind: 'redirect', op, location: first, self: hostOf(res) });
  if (!verdict) return false;
  if (!sentBefore && res.headersSent) return true;
  throw verdict.error;
}

/** The `Location` value among `writeHead`'s headers: an object, or a flat / paired array of raw headers. */
function locationIn(headers: unknown): unknown {
  if (!headers || typeof headers !== 'object') return undefined;
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) {
      for (const pair of headers as unknown[][]) if (String(pair[0]).toLowerCase() === 'location') return pair[1];
      return undefined;
    }
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'location') return headers[i + 1];
    return undefined;
  }
  for (const key of Object.keys(headers)) if (key.toLowerCase() === 'location') return (headers as Record<string, unknown>)[key];
  return undefined;
}

export const redirect = defineHook({
  module: 'http',
  builtin: true,
  patch(http) {
    const proto = (http as typeof import('node:http')).ServerResponse.prototype as unknown as Record<string, AnyFunction>;
    for (const method of ['setHeader', 'appendHeader'] as const) {
      if (typeof proto[method] !== 'function') continue; // appendHeader is Node ≥ 18.3
      wrap(proto, method, (original) =>
        function (this: ServerResponse, name: unknown, value: unknown) {
          if (typeof name === 'string' && name.length === 8 && name.toLowerCase() === 'location' && shouldInspect() && refusedAndAnswered(this, `res.${method}`, value)) return this;
          return original.apply(this, arguments as unknown as unknown[]);
        },
      );
    }
    wrap(proto, 'writeHead', (original) =>
      function writeHead(this: ServerResponse, _status: unknown, reason: unknown, headers: unknown) {
        // The headers first: most heads (every implicit one) carry no Location, and then the request context is not
        // read at all.
        let location: unknown;
        try {
          location = locationIn(typeof reason === 'string' ? headers : reason);
        } catch {
          location = undefined; // a headers object with throwing getters: Node will report it, not us
        }
        if (location !== undefined && shouldInspect() && refusedAndAnswered(this, 'res.writeHead', location)) return this;
        return original.apply(this, arguments as unknown as unknown[]);
      },
    );
  },
});
