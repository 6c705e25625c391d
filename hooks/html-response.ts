import type { ServerResponse } from 'node:http';
import { defineHook, inspect, shouldInspect, wrap, type AnyFunction } from '../src/hook-kit.js';

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

function htmlType(res: ServerResponse): boolean | typeof SNIFF {
  let type: unknown = res.getHeader('content-type');
  if (type === undefined) {
    // writeHead(status, headers) without earlier setHeader calls keeps its headers only in the sent block.
    const sent = (res as unknown as { _header?: unknown })._header;
    if (typeof sent === 'string') type = /\r\ncontent-type:[ \t]*([^\r\n]*)/i.exec(sent)?.[1];
  }
  if (type === undefined) return SNIFF;
  const t = String(Array.isArray(type) ? (type[0] as unknown) : type).trimStart().toLowerCase();
  return t.startsWith('text/html') || t.startsWith('application/xhtml+xml');
}

const TEXT_ENCODINGS = new Set(['utf8', 'utf-8', 'latin1', 'ascii', 'binary']);

function textOf(chunk: unknown, encoding: unknown): string | undefined {
  if (typeof chunk === 'string') return encoding === undefined || typeof encoding === 'function' || TEXT_ENCODINGS.has(String(encoding).toLowerCase()) ? chunk : undefined;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  return undefined;
}

/** The chunk to judge, or undefined when this write is not HTML. Never throws. */
function htmlChunk(res: ServerResponse, chunk: unknown, encoding: unknown): string | undefined {
  try {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return undefined;
    const type = htmlType(res);
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
    const proto = (http as typeof import('node:http')).ServerResponse.prototype as unknown as Record<string, AnyFunction>;
    for (const method of ['write', 'end'] as const) {
      wrap(proto, method, (original) =>
        function (this: ServerResponse, chunk: unknown, encoding: unknown) {
          if (!shouldInspect()) return original.apply(this, arguments as unknown as unknown[]);
          const html = htmlChunk(this, chunk, encoding);
          if (html === undefined) return original.apply(this, arguments as unknown as unknown[]);
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
          const verdict = inspect({ kind: 'html', op: `res.${method}`, html });
          if (composedHead !== undefined && !this.headersSent) {
            internals._header = composedHead;
            internals.chunkedEncoding = chunked;
          }
          if (!verdict) return original.apply(this, arguments as unknown as unknown[]);
          if (!sentBefore && this.headersSent) return method === 'end' ? this : true; // the agent answered 403
          if (!this.headersSent) throw verdict.error;
          this.destroy();
          return method === 'end' ? this : false;
        },
      );
    }
  },
});
