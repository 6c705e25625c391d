import type { ServerResponse } from 'node:http';
import { defineHook, firstBodyWriteOf, headRepeated, inspect, judgedHeadOf, noteResponseEnd, noteResponseEnds, rememberJudgedHead, requestToInspect, wouldJudge, wrap, type AnyFunction, type RequestContext } from '../src/hook-kit.js';

/**
 * SINK: every chunk of an HTML response body (`res.write`, `res.end`; so Express `res.send`/`res.render`,
 * Koa, Fastify and template engines, which all end there). A response is HTML when its `Content-Type` says so,
 * or when it has none and the chunk starts with `<` (browsers sniff it as HTML). Each chunk is judged as it is
 * written; nothing is buffered.
 *
 * A refused chunk is never written. When the agent answered the request (403) the call returns as if it
 * succeeded; when the app renders refusals itself (STEPGUARD_RESPOND=app) and nothing was sent yet, the call
 * throws; mid-stream (headers already sent) the response is destroyed so the page stops where it was.
 */

const SNIFF = 'sniff';

/**
 * `setType`: what `getHeader('content-type')` returned and `setTypeIsHtml` whether that is HTML when it is a string
 * (both worked out once per write, for this and the head check).
 */
function htmlType(res: ServerResponse, setType: unknown, setTypeIsHtml: boolean | undefined): boolean | typeof SNIFF {
  if (setTypeIsHtml !== undefined) return setTypeIsHtml;
  let type = setType;
  if (type === undefined) {
    // writeHead(status, headers) without earlier setHeader calls keeps its headers only in the sent block.
    const sent = (res as unknown as { _header?: unknown })._header;
    if (typeof sent === 'string') type = /\r\ncontent-type:[ \t]*([^\r\n]*)/i.exec(sent)?.[1];
  }
  if (type === undefined) return SNIFF;
  return isHtmlType(String(Array.isArray(type) ? (type[0] as unknown) : type));
}

/** Anchored, one quantifier: linear. A test, not a lower-cased copy, because it runs on every response's type. */
const HTML_TYPE = /^\s*(?:text\/html|application\/xhtml\+xml)/i;

/** Whether a `Content-Type` value is HTML (what HTML_TYPE matches); exported for its unit test. */
export function isHtmlType(type: string): boolean {
  // Express's own `text/html; charset=utf-8` without running the pattern (it matches whatever starts so).
  if (type.startsWith('text/html')) return true;
  // A type that starts with a letter has no leading space to skip, and the pattern's two prefixes are ASCII, which
  // `i` without `u` compares ASCII-caselessly: the same answer without running it (every JSON response came here).
  const first = type.charCodeAt(0) | 0x20;
  if (first >= 0x61 && first <= 0x7a) return startsWithCaseless(type, 'text/html') || startsWithCaseless(type, 'application/xhtml+xml');
  return HTML_TYPE.test(type);
}

/** `text` starts with `lowerPrefix` (lower-case ASCII), ASCII letters compared without case. */
function startsWithCaseless(text: string, lowerPrefix: string): boolean {
  if (text.length < lowerPrefix.length) return false;
  for (let i = 0; i < lowerPrefix.length; i++) {
    const want = lowerPrefix.charCodeAt(i);
    const got = text.charCodeAt(i);
    if (got !== want && !(want >= 0x61 && want <= 0x7a && got === want - 0x20)) return false;
  }
  return true;
}

const TEXT_ENCODINGS = new Set(['utf8', 'utf-8', 'latin1', 'ascii', 'binary']);

function textOf(chunk: unknown, encoding: unknown): string | undefined {
  if (typeof chunk === 'string') {
    // Express passes 'utf8': found as it is, without a lower-cased copy per response.
    const text = encoding === undefined || typeof encoding === 'function' || TEXT_ENCODINGS.has(encoding as string) || TEXT_ENCODINGS.has(String(encoding).toLowerCase());
    return text ? chunk : undefined;
  }
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  return undefined;
}

/** The chunk to judge, or undefined when this write is not HTML. Never throws. */
function htmlChunk(res: ServerResponse, setType: unknown, setTypeIsHtml: boolean | undefined, chunk: unknown, encoding: unknown): string | undefined {
  try {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return undefined;
    const type = htmlType(res, setType, setTypeIsHtml);
    if (type === false) return undefined;
    const text = textOf(chunk, encoding);
    if (text === undefined || text.length === 0) return undefined;
    if (type === SNIFF && !text.trimStart().startsWith('<')) return undefined;
    return text;
  } catch {
    return undefined;
  }
}

export const htmlResponse = defineHook({
  module: 'http',
  builtin: true,
  patch(http) {
    outHeaders = outHeadersTableKey(http as typeof import('node:http'));
    const proto = (http as typeof import('node:http')).ServerResponse.prototype as unknown as Record<string, AnyFunction>;
    for (const method of ['write', 'end'] as const) {
      const op = method === 'write' ? 'res.write' : 'res.end';
      wrap(proto, method, (original) =>
        function (this: ServerResponse, chunk: unknown, encoding: unknown) {
          const ctx = requestToInspect();
          // The request counts as answered from here (src/context/live.ts), unless the app is left to render a refusal.
          const ending = method === 'end' && noteResponseEnd(this, ctx);
          if (ctx === undefined) return original.apply(this, arguments as unknown as unknown[]);
          // Read once for both checks: the reads of the response are a measurable part of what this hook costs on
          // every response (README, Benchmark results).
          const headers = safeHeaderTable(this);
          const setType = safeContentType(this, headers);
          const setTypeIsHtml = typeof setType === 'string' ? isHtmlType(setType) : undefined;
          judgeHeadOnce(ctx, this, headers, setType, setTypeIsHtml);
          const html = htmlChunk(this, setType, setTypeIsHtml, chunk, encoding);
          if (html === undefined) return original.apply(this, arguments as unknown as unknown[]);
          const event = { kind: 'html', op, html } as const;
          // Nothing would judge this chunk (no detector applies to it, no policy rule looks at HTML): the head is not
          // set aside for it.
          if (!wouldJudge(event)) return original.apply(this, arguments as unknown as unknown[]);
          // `writeHead` composes the head without flushing it: until the first body byte leaves, the agent can
          // still answer 403 instead, so the composed head is set aside while the chunk is judged.
          const internals = this as unknown as { _header?: unknown; _headerSent?: unknown; chunkedEncoding?: unknown };
          const composedHead = typeof internals._header === 'string' && internals._headerSent === false ? internals._header : undefined;
          const chunked = internals.chunkedEncoding;
          if (composedHead !== undefined) {
            internals._header = null;
            internals.chunkedEncoding = false; // the head decided it; the agent's answer decides its own
          }
          const sentBefore = this.headersSent;
          const verdict = inspect(event, ctx);
          if (composedHead !== undefined && !this.headersSent) {
            internals._header = composedHead;
            internals.chunkedEncoding = chunked;
          }
          if (!verdict) return original.apply(this, arguments as unknown as unknown[]);
          if (!sentBefore && this.headersSent) return method === 'end' ? this : true; // the agent answered 403
          if (!this.headersSent) {
            if (ending) ctx.responseEnded = false;
            throw verdict.error;
          }
          this.destroy();
          return method === 'end' ? this : false;
        },
      );
    }
    noteResponseEnds();
  },
});

// --- Insecure configuration of responses (issue #12 B6) -----------------------------------------------------
/*
 * Before a response's first body byte (its first `write`/`end`, the same wrappers as above) the head about to
 * be sent is read — only `Set-Cookie`, `Content-Type` and the security headers — and, when it sets a cookie
 * or is HTML, handed to the `insecure-config` detector as a `config` event. Cookie values never leave this
 * file: the event says `name=…; attributes`. Never refuses: the verdict is ignored (the shipped rule only
 * monitors). A response answered with no `write`/`end` at all (a destroyed socket) sends no head to judge.
 *
 * `Math.random()` tokens: `Math.random` is wrapped to keep its last RING outputs in a typed array (one store
 * per call, no allocation, no context lookup). Only when a response sets a cookie are they compared with the
 * cookie's value, in the forms apps write them: `toString(36)`, `toString(16)`, decimal digits (8 characters
 * of each after `0.`). A cookie that holds one is a predictable token.
 */

const RING = 32;
const recent = new Float64Array(RING);
let next = 0;

const SECURITY_HEADERS = ['content-security-policy', 'x-content-type-options', 'strict-transport-security'] as const;

/**
 * Values of header `name` in the head about to be sent: the composed head when `writeHead` already built it
 * (its headers argument lives only there), otherwise what `setHeader` stored.
 */
function valuesOf(res: ServerResponse, composed: string | undefined, name: string): string[] {
  const out: string[] = [];
  if (composed !== undefined) {
    for (const line of composed.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) out.push(line.slice(colon + 1).trim());
    }
    return out;
  }
  const v = res.getHeader(name);
  if (Array.isArray(v)) for (const x of v) out.push(String(x));
  else if (v !== undefined && v !== null) out.push(String(v));
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

/** `res.getHeader('content-type')`, or undefined when a broken response object throws. */
function safeContentType(res: ServerResponse, headers: HeaderSource): unknown {
  try {
    return headerOf(res, headers, 'content-type');
  } catch {
    return undefined;
  }
}

/** Node's header table of `res` (see headerTableOf), or GET_HEADER when a broken response object throws. */
function safeHeaderTable(res: ServerResponse): HeaderSource {
  try {
    return headerTableOf(res);
  } catch {
    return GET_HEADER;
  }
}

type OutHeadersTable = Record<string, [name: string, value: unknown] | undefined>;

/** Node's table of the headers set so far, keyed by lower-case name; undefined when this Node keeps it otherwise. */
let outHeaders: { readonly key: symbol; readonly getHeader: unknown } | undefined;

/**
 * Where `OutgoingMessage` keeps its headers (`getHeader` validates and lower-cases the name, then reads this table;
 * the names asked for here are lower-case constants, and that per-call work was a measurable part of each
 * response: README, Benchmark results). Found and checked once, at patch time.
 */
function outHeadersTableKey(http: typeof import('node:http')): typeof outHeaders {
  try {
    const probe = new http.OutgoingMessage();
    const key = Object.getOwnPropertySymbols(probe).find((s) => s.description === 'kOutHeaders');
    if (key === undefined) return undefined;
    probe.setHeader('X-Stepguard-Probe', 'yes');
    const entry = (probe as unknown as Record<symbol, OutHeadersTable | null>)[key]?.['x-stepguard-probe'];
    return Array.isArray(entry) && entry[1] === 'yes' ? { key, getHeader: http.OutgoingMessage.prototype.getHeader } : undefined;
  } catch {
    return undefined;
  }
}

/** Read the headers through `res.getHeader` (not Node's own, or this Node keeps them otherwise). */
const GET_HEADER = Symbol('getHeader');
/** Where a response's headers are read from in one wrapper call: Node's table (null: none set yet), or GET_HEADER. */
type HeaderSource = OutHeadersTable | null | typeof GET_HEADER;

/**
 * Read once per wrapper call and passed on: every property read of a response is a megamorphic load in an Express
 * app (it swaps the prototype of each response), which on Node 22 missed V8's stub cache about as often as not.
 */
function headerTableOf(res: ServerResponse): HeaderSource {
  if (outHeaders === undefined || res.getHeader !== outHeaders.getHeader) return GET_HEADER;
  const table = (res as unknown as Record<symbol, OutHeadersTable | null | undefined>)[outHeaders.key];
  return table === undefined ? GET_HEADER : table;
}

/** `res.getHeader(lowerName)`, read from Node's table when `getHeader` is Node's own (a framework may override it). */
function headerOf(res: ServerResponse, headers: HeaderSource, lowerName: string): unknown {
  if (headers === GET_HEADER) return res.getHeader(lowerName);
  if (headers === null) return undefined;
  return headers[lowerName]?.[1];
}

/** Once per response, before its first body byte: reads the head and reports what is insecure about it. Never throws. */
function judgeHeadOnce(ctx: RequestContext, res: ServerResponse, table: HeaderSource, setType: unknown, setTypeIsHtml: boolean | undefined): void {
  try {
    // The flag on the context first: a later write of the same response reads nothing of it. A head that already
    // left (`_headerSent`; `headersSent` is true as soon as writeHead composed it) was composed first, so `_header`
    // is read before `_headerSent`, which most responses (no writeHead) then never need: every property read of an
    // Express response is a megamorphic load.
    if (!firstBodyWriteOf(res, ctx)) return;
    const internals = res as unknown as { _header?: unknown; _headerSent?: unknown };
    const sent = internals._header;
    if (typeof sent === 'string' && internals._headerSent === true) return;
    const headers = typeof sent === 'string' ? sent : undefined;
    // The common case — headers set one by one, no cookie — is read without building anything: a head that is not
    // HTML shows nothing, and one that repeats the head last judged on its route is not judged again, nor read on
    // the route's next few responses (judgedHeadOf).
    let repeatable: [csp: unknown, nosniff: unknown, hsts: unknown, https: boolean] | undefined;
    if (headers === undefined && headerOf(res, table, 'set-cookie') === undefined) {
      const contentType = setType;
      if (contentType === undefined || typeof contentType === 'string') {
        if (contentType === undefined || setTypeIsHtml !== true) return;
        const last = judgedHeadOf(ctx);
        if (last !== undefined && last.unread > 0) {
          last.unread--;
          return;
        }
        const csp = headerOf(res, table, SECURITY_HEADERS[0]);
        const nosniff = headerOf(res, table, SECURITY_HEADERS[1]);
        const hsts = headerOf(res, table, SECURITY_HEADERS[2]);
        const https = isHttps(res);
        if (last !== undefined && last.csp === csp && last.nosniff === nosniff && last.hsts === hsts && last.https === https) {
          headRepeated(last);
          return;
        }
        repeatable = [csp, nosniff, hsts, https];
      }
    }
    const cookies = valuesOf(res, headers, 'set-cookie');
    const type = valuesOf(res, headers, 'content-type')[0] ?? '';
    const html = isHtmlType(type);
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
    const verdict = inspect({ kind: 'config', op: 'res.writeHead', check: 'response', text: lines.join('\n'), https: isHttps(res), randomCookies }, ctx);
    if (repeatable && verdict === undefined) rememberJudgedHead(ctx, ...repeatable);
  } catch {
    // a configuration report is never worth breaking a response
  }
}

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
