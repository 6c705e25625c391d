import { describe, expect, it } from 'vitest';
import { InputCollector } from '../../../src/context/user-input.js';
import { RequestContext } from '../../../src/context/request-context.js';
import { DEFAULT_CONFIG } from '../../../src/config.js';
import type { IncomingMessage } from 'node:http';

const collect = (fill: (c: InputCollector) => void, limits = { maxInputs: 1000, maxInputBytes: 1 << 20 }) => {
  const c = new InputCollector(limits);
  fill(c);
  return c.inputs;
};
const values = (inputs: ReadonlyArray<{ value: string }>) => inputs.map((i) => i.value);

describe('user input flattening', () => {
  it('walks nested objects and arrays: keys (marked) and values, arrays also joined', () => {
    const inputs = collect((c) => c.addTree('body', 'body', { user: { name: "O'Brien", tags: ['a', 'b'] }, n: 42 }));
    expect(values(inputs)).toEqual(expect.arrayContaining(['user', 'name', "O'Brien", 'tags', 'a', 'b', 'a,b', 'n', '42']));
    expect(inputs.find((i) => i.value === 'name')).toMatchObject({ isKey: true, path: 'body.user.name' });
    expect(inputs.find((i) => i.value === "O'Brien")).toMatchObject({ source: 'body', path: 'body.user.name' });
    expect(inputs.find((i) => i.value === "O'Brien")!.isKey).toBeUndefined();
  });

  it('adds URL-decoded variants, several levels deep', () => {
    const inputs = collect((c) => c.add('query', 'query.q', '%2527%2520OR%25201%253D1'));
    expect(values(inputs)).toEqual(expect.arrayContaining(['%27%20OR%201%3D1', "' OR 1=1"]));
  });

  it('adds JWT claims and base64-decoded text, but not decoded noise', () => {
    const payload = Buffer.from(JSON.stringify({ sub: "admin' --", role: 'x' })).toString('base64url');
    const jwt = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${payload}.c2lnbmF0dXJl`;
    const inputs = collect((c) => {
      c.add('headers', 'headers.authorization', `Bearer ${jwt}`);
      c.add('query', 'query.cursor', Buffer.from("page 2' OR '1'='1").toString('base64'));
      c.add('headers', 'headers.connection', 'keep-alive');
    });
    expect(inputs.find((i) => i.value === "admin' --")?.path).toBe('headers.authorization.jwt.sub');
    expect(values(inputs)).toContain("page 2' OR '1'='1");
    // Nothing else: "keep-alive" is not decoded into noise.
    expect(values(inputs).sort()).toEqual([`Bearer ${jwt}`, "admin' --", Buffer.from("page 2' OR '1'='1").toString('base64'), 'keep-alive', "page 2' OR '1'='1", 'role', 'sub', 'x'].sort());
  });

  it('is capped in count and size', () => {
    const many = collect((c) => { for (let i = 0; i < 100; i++) c.add('query', `query.k${i}`, `value-${i}`); }, { maxInputs: 10, maxInputBytes: 1 << 20 });
    expect(many).toHaveLength(10);
    const big = collect((c) => { c.add('body', 'body.a', 'x'.repeat(600)); c.add('body', 'body.b', 'y'.repeat(600)); }, { maxInputs: 10, maxInputBytes: 1000 });
    expect(values(big)).toEqual(['x'.repeat(600)]);
  });
});

describe('request context sources', () => {
  const request = (over: Record<string, unknown>) =>
    ({ method: 'POST', url: '/users/42?sort=name%20desc', headers: { cookie: 'sid=abc123; theme="dark"', 'x-trace': 'zzz' }, socket: {}, ...over }) as unknown as IncomingMessage;

  it('gathers query, path segments, cookies, headers, a framework-parsed body and multer files', () => {
    const ctx = new RequestContext(request({ body: { q: 'from-body' }, file: { originalname: '../evil.txt', buffer: Buffer.from('file text') } }), undefined, DEFAULT_CONFIG);
    const byPath = Object.fromEntries(ctx.inputs().filter((i) => !i.isKey).map((i) => [i.path, i.value]));
    expect(byPath).toMatchObject({ 'query.sort': 'name desc', 'path.2': '42', 'cookies.sid': 'abc123', 'cookies.theme': 'dark', 'headers.x-trace': 'zzz', 'body.q': 'from-body', 'files.file.name': '../evil.txt', 'files.file': 'file text' });
  });

  it('parses a raw body by content type when no framework did (JSON, urlencoded, multipart)', () => {
    const json = new RequestContext(request({ headers: { 'content-type': 'application/json' } }), undefined, DEFAULT_CONFIG);
    json.captureBodyChunk(Buffer.from('{"user":{"name":"raw-json"}}'));
    expect(json.inputs().find((i) => i.value === 'raw-json')?.path).toBe('body.user.name');

    const form = new RequestContext(request({ headers: { 'content-type': 'application/x-www-form-urlencoded' } }), undefined, DEFAULT_CONFIG);
    form.captureBodyChunk(Buffer.from('a=1%27+OR&b=2'));
    expect(form.inputs().find((i) => i.value === "1' OR")?.path).toBe('body.a');

    const multipart = new RequestContext(request({ headers: { 'content-type': 'multipart/form-data; boundary=XyZ' } }), undefined, DEFAULT_CONFIG);
    multipart.captureBodyChunk(Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello; rm -rf /\r\n--XyZ\r\nContent-Disposition: form-data; name="up"; filename="a;b.txt"\r\n\r\ncontent\r\n--XyZ--\r\n'));
    const found = Object.fromEntries(multipart.inputs().map((i) => [i.path, i.value]));
    expect(found).toMatchObject({ 'body.note': 'hello; rm -rf /', 'files.up.name': 'a;b.txt', 'files.up': 'content' });
  });

  it('stops keeping a raw body beyond the cap', () => {
    const ctx = new RequestContext(request({ headers: { 'content-type': 'text/plain' } }), undefined, { ...DEFAULT_CONFIG, maxBodyBytes: 8 });
    ctx.captureBodyChunk(Buffer.from('12345'));
    ctx.captureBodyChunk(Buffer.from('67890'));
    expect(ctx.bodyTruncated).toBe(true);
    expect(ctx.rawBody()?.toString()).toBe('12345');
  });
});
