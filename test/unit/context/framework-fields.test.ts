/**
 * What gathering reads of the fields frameworks put on the request (src/context/request-context.ts collectInputs):
 * `req.cookies` when the request sent a Cookie header (a cookie parser has nothing else to fill it from), and the
 * upload fields `req.file` / `req.files` when it sent a body; the URL and the headers as the request arrived. A context made by
 * runWithContext (no response) has whatever it was given read, as before. Those fields are looked up on the request
 * itself first and through its prototypes only when a prototype defines them (a framework's request class).
 */
import { describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestContext } from '../../../src/context/request-context.js';
import { DEFAULT_CONFIG } from '../../../src/config.js';

type Fields = { url?: string; headers?: Record<string, string>; cookies?: unknown; file?: unknown; files?: unknown; body?: unknown };

function served(fields: Fields, withoutBody: boolean): RequestContext {
  const req = { method: 'GET', url: '/page', socket: {}, ...fields, headers: fields.headers ?? {} } as unknown as IncomingMessage;
  const ctx = new RequestContext(req, {} as ServerResponse, DEFAULT_CONFIG);
  ctx.arrivedWithoutBody = withoutBody; // what serveRequest sets from Content-Length / Transfer-Encoding
  return ctx;
}

const values = (ctx: RequestContext): string[] => ctx.inputs().map((input) => input.value);

describe('framework fields of a served request', () => {
  it('req.cookies is read when the request sent a Cookie header, not otherwise', () => {
    expect(values(served({ headers: { cookie: 'sid=from-header' }, cookies: { sid: 'from-header', parsed: 'parser-value' } }, true))).toEqual(expect.arrayContaining(['from-header', 'parser-value']));
    expect(values(served({ cookies: { sid: 'no-header-value' } }, true))).not.toContain('no-header-value');
  });

  it('req.file and req.files are read when the request sent a body, not otherwise', () => {
    const upload = { file: { originalname: 'single-upload.txt' }, files: [{ originalname: 'array-upload.txt' }] };
    expect(values(served(upload, false))).toEqual(expect.arrayContaining(['single-upload.txt', 'array-upload.txt']));
    const without = values(served(upload, true));
    expect(without).not.toContain('single-upload.txt');
    expect(without).not.toContain('array-upload.txt');
  });

  it('a parsed body is read either way (an app may fill req.body itself)', () => {
    expect(values(served({ body: { q: 'body-value' } }, true))).toContain('body-value');
    expect(values(served({ body: { q: 'body-value' } }, false))).toContain('body-value');
  });

  it("the URL's values are the ones the client sent, not what a router made of req.url while it dispatches", () => {
    const arrived = served({}, true);
    (arrived.req as { url: string }).url = '/api/items/abc?sort=name';
    const mounted = new RequestContext(arrived.req, {} as ServerResponse, DEFAULT_CONFIG);
    // What Express does under app.use('/api', router): the mount point cut from req.url until the router is done.
    (mounted.req as { url: string }).url = '/items/abc?sort=name';
    const byPath = Object.fromEntries(mounted.inputs().map((input) => [input.path, input.value]));
    expect(byPath).toMatchObject({ 'path.1': 'api', 'path.2': 'items', 'path.3': 'abc', 'query.sort': 'name' });
  });

  it('path segments and query pairs: empty segments skipped, a long URL cut up as a short one', () => {
    const segments = (url: string): Record<string, string> =>
      Object.fromEntries(served({ url }, true).inputs().filter((i) => i.source !== 'headers').map((input) => [input.path, input.value]));
    const short = segments('/api/items/abc?sort=name&x');
    const long = segments(`/api/items/abc?sort=name&x&pad=${'p'.repeat(60)}`);
    expect(short).toMatchObject({ 'path.1': 'api', 'path.2': 'items', 'path.3': 'abc', 'query.sort': 'name' });
    const { query: shortSearch, ...shortPairs } = short;
    expect(shortSearch).toBe('sort=name&x');
    expect(long).toMatchObject(shortPairs);
    expect(segments('/a//b/?q=1')).toMatchObject({ 'path.1': 'a', 'path.3': 'b', 'query.q': '1' });
    expect(segments(`/a//b/${'c'.repeat(70)}?q=1`)).toMatchObject({ 'path.1': 'a', 'path.3': 'b', 'path.4': 'c'.repeat(70), 'query.q': '1' });
  });

  it('the headers are the object the request arrived with: changed in place they are seen, a replacement is not', () => {
    const ctx = served({ headers: { 'x-sent': 'sent-value' } }, true);
    ctx.req.headers['x-added'] = 'added-in-place';
    (ctx.req as { headers: Record<string, string> }).headers = { 'x-replaced': 'replacement-value' };
    const gathered = values(ctx);
    expect(gathered).toEqual(expect.arrayContaining(['sent-value', 'added-in-place']));
    expect(gathered).not.toContain('replacement-value');
  });

  it('a body, cookies or uploads that a request class defines on its prototype are read through it', () => {
    // A framework's request class (http.createServer({ IncomingMessage })) may define these as accessors.
    class FrameworkRequest {
      method = 'POST';
      url = '/upload';
      socket = {};
      headers: Record<string, string> = { cookie: 'sid=1', 'content-type': 'application/json' };
      get body(): unknown {
        return { comment: 'body-from-accessor' };
      }
      get cookies(): unknown {
        return { sid: 'cookie-from-accessor' };
      }
      get file(): unknown {
        return { originalname: 'file-from-accessor.txt' };
      }
    }
    class Subclass extends FrameworkRequest {}
    for (const make of [() => new FrameworkRequest(), () => new Subclass(), () => new FrameworkRequest()]) {
      const ctx = new RequestContext(make() as unknown as IncomingMessage, {} as ServerResponse, DEFAULT_CONFIG);
      expect(values(ctx)).toEqual(expect.arrayContaining(['body-from-accessor', 'cookie-from-accessor', 'file-from-accessor.txt']));
    }
    // A request without them, served after (another prototype): nothing read, nothing thrown.
    expect(values(served({ headers: { cookie: 'sid=2' } }, false))).not.toContain('body-from-accessor');
  });

  it('a context made by runWithContext has its cookies read without a Cookie header', () => {
    const req = { method: 'GET', url: '/', headers: {}, socket: {}, cookies: { sid: 'given-cookie' } } as unknown as IncomingMessage;
    expect(values(new RequestContext(req, undefined, DEFAULT_CONFIG))).toContain('given-cookie');
  });
});
