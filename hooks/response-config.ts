import type { ServerResponse } from 'node:http';
import { defineHook, inspect, shouldInspect, wrap, type AnyFunction } from '../src/hook-kit.js';

/**
 * Insecure configuration of responses (issue #12 B6): at `writeHead` (which `res.end`/`res.write` call
 * implicitly when the app did not) the head about to be sent is read — only `Set-Cookie`, `Content-Type` and
 * the security headers — and, when it sets a cookie or is HTML, handed to the `insecure-config` detector as a
 * `config` event. Cookie values never leave this file: the event says `name=…; attributes`. Never refuses:
 * the verdict is ignored (a header cannot be half-written), and the shipped rule only monitors.
 *
 * `Math.random()` tokens: `Math.random` is wrapped to keep its last RING outputs in a typed array (one store
 * per call, no allocation, no context lookup). Only when a response sets a cookie are they compared with the
 * cookie's value, in the forms apps write them: `toString(36)`, `toString(16)`, decimal digits (8 characters
 * of each). A cookie that holds one is a predictable token.
 */

const RING = 32;
const recent = new Float64Array(RING);
let next = 0;

const SECURITY_HEADERS = ['content-security-policy', 'x-content-type-options', 'strict-transport-security'] as const;

/** Values of `name` among writeHead's headers: an object, or a flat / paired array of raw headers. */
function fromArgs(headers: unknown, name: string): unknown[] {
  const out: unknown[] = [];
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as unknown[][]) if (String(pair[0]).toLowerCase() === name) out.push(pair[1]);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) out.push(headers[i + 1]);
    }
  } else if (headers && typeof headers === 'object') {
    for (const key of Object.keys(headers)) if (key.toLowerCase() === name) out.push((headers as Record<string, unknown>)[key]);
  }
  return out;
}

function valuesOf(res: ServerResponse, headers: unknown, name: string): string[] {
  const out: string[] = [];
  const push = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) out.push(String(x));
    else if (v !== undefined && v !== null) out.push(String(v));
  };
  push(res.getHeader(name));
  for (const v of fromArgs(headers, name)) push(v);
  return out;
}

/** `sid=abc; Path=/; HttpOnly` → `sid=…; Path=/; HttpOnly`, plus the value for the Math.random check. */
function splitCookie(cookie: string): { shown: string; value: string } {
  const eq = cookie.indexOf('=');
  const semi = cookie.indexOf(';');
  const end = semi < 0 ? cookie.length : semi;
  if (eq < 0 || eq > end) return { shown: cookie.slice(0, end) + '=…' + cookie.slice(end), value: '' };
  return { shown: `${cookie.slice(0, eq + 1)}…${cookie.slice(end)}`, value: cookie.slice(eq + 1, end).trim() };
}

/** Does `value` hold one of the recent Math.random outputs, written as apps write tokens? */
function holdsRecentRandom(value: string): boolean {
  if (value.length < 8) return false;
  let decoded = value;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    // keep the raw value
  }
  for (let k = 0; k < RING; k++) {
    const r = recent[k]!;
    if (r === 0) continue;
    for (const text of [r.toString(36), r.toString(16), String(r)]) {
      const digits = text.slice(2, 10); // after `0.`
      if (digits.length === 8 && decoded.includes(digits)) return true;
    }
  }
  return false;
}

function isHttps(res: ServerResponse): boolean {
  const req = (res as unknown as { req?: { socket?: { encrypted?: boolean }; headers?: Record<string, unknown> } }).req;
  if (req?.socket?.encrypted === true) return true;
  const proto = req?.headers?.['x-forwarded-proto'];
  return typeof proto === 'string' && proto.split(',')[0]!.trim().toLowerCase() === 'https';
}

/** Reads the head and reports what is insecure about it. Never throws. */
function judgeHead(res: ServerResponse, headers: unknown): void {
  try {
    const cookies = valuesOf(res, headers, 'set-cookie');
    const type = valuesOf(res, headers, 'content-type')[0] ?? '';
    const lower = type.trimStart().toLowerCase();
    const html = lower.startsWith('text/html') || lower.startsWith('application/xhtml+xml');
    if (cookies.length === 0 && !html) return;
    const lines: string[] = [];
    if (type) lines.push(`content-type: ${type}`);
    const randomCookies: string[] = [];
    for (const cookie of cookies) {
      const { shown, value } = splitCookie(cookie);
      lines.push(`set-cookie: ${shown}`);
      if (holdsRecentRandom(value)) randomCookies.push(shown.slice(0, shown.indexOf('=')));
    }
    if (html) for (const name of SECURITY_HEADERS) for (const v of valuesOf(res, headers, name)) lines.push(`${name}: ${v}`);
    inspect({ kind: 'config', op: 'res.writeHead', check: 'response', text: lines.join('\n'), https: isHttps(res), randomCookies });
  } catch {
    // a configuration report is never worth breaking a response
  }
}

export const responseConfig = defineHook({
  module: 'http',
  builtin: true,
  patch(http) {
    const proto = (http as typeof import('node:http')).ServerResponse.prototype as unknown as Record<string, AnyFunction>;
    wrap(proto, 'writeHead', (original) =>
      function writeHead(this: ServerResponse, _status: unknown, reason: unknown, headers: unknown) {
        if (shouldInspect() && !this.headersSent) judgeHead(this, typeof reason === 'string' ? headers : reason);
        return original.apply(this, arguments as unknown as unknown[]);
      },
    );
  },
});

/** `Math.random`, recording its outputs for the token check above. */
export const mathRandom = defineHook({
  module: 'Math.random',
  global: true,
  patch(global) {
    const math = (global as { Math: Record<string, AnyFunction> }).Math;
    wrap(math, 'random', (original) =>
      function random(this: unknown) {
        const r = original.apply(this, arguments as unknown as unknown[]) as number;
        recent[next] = r;
        next = (next + 1) % RING;
        return r;
      },
    );
  },
});
