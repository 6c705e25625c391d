import { describe, expect, it } from 'vitest';
import { hasDecodedForms, InputCollector } from '../../../src/context/user-input.js';
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

  it('keeps one input per text, in the order first seen, past the point where it switches from comparing to indexing', () => {
    // 40 distinct texts, each first as a key and then as a value, then all of them once more: the value replaces the
    // key in place (on either side of the switch at 16), and nothing is kept twice.
    const inputs = collect((c) => {
      for (let i = 0; i < 40; i++) c.add('query', `query.k${i}`, `text-${i}`, true);
      for (let i = 0; i < 40; i++) c.add('body', `body.v${i}`, `text-${i}`);
      for (let i = 0; i < 40; i++) c.add('headers', `headers.h${i}`, `text-${i}`);
    });
    expect(values(inputs)).toEqual(Array.from({ length: 40 }, (_, i) => `text-${i}`));
    expect(inputs.every((input, i) => input.path === `body.v${i}` && input.isKey === undefined)).toBe(true);
    const c = new InputCollector({ maxInputs: 1000, maxInputBytes: 1 << 20 });
    for (let i = 0; i < 20; i++) c.add('query', `query.k${i}`, `t${i}`);
    expect([c.has('t0'), c.has('t19'), c.has('t20'), c.has('t')]).toEqual([true, true, false, false]);
    // The list handed out is a copy: changing it changes nothing kept.
    c.inputs.length = 0;
    expect(c.inputs).toHaveLength(20);
    // Long values switch to the index early: three of 3,000 characters, each also sent again as a copy.
    const long = (k: number) => `${'x'.repeat(2999)}${k}`;
    const longs = collect((l) => {
      for (let k = 0; k < 3; k++) l.add('body', `body.a${k}`, long(k));
      for (let k = 0; k < 3; k++) l.add('body', `body.b${k}`, long(k).split('').join(''));
    });
    expect(longs.map((input) => input.path)).toEqual(['body.a0', 'body.a1', 'body.a2']);
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

  it('cuts the path into segments numbered as split("/") numbers them, empty ones and the query left out', () => {
    const pathsOf = (url: string) => new RequestContext(request({ url, headers: {} }), undefined, DEFAULT_CONFIG).inputs().filter((i) => i.source === 'path').map((i) => [i.path, i.value]);
    expect(pathsOf('/a//b/?x=/c/d')).toEqual([['path.1', 'a'], ['path.3', 'b']]);
    expect(pathsOf('/users/42')).toEqual([['path.1', 'users'], ['path.2', '42']]);
    expect(pathsOf('no-slash')).toEqual([['path.0', 'no-slash']]);
    expect(pathsOf('/')).toEqual([]);
    expect(pathsOf('?only=query')).toEqual([]);
    expect(pathsOf('http://host/x')).toEqual([['path.0', 'http:'], ['path.2', 'host'], ['path.3', 'x']]);
  });

  it('reads every cookie of the header: spaces trimmed, quotes taken off, pieces without "=" and empty ones skipped', () => {
    const cookies = (cookie: string) => new RequestContext(request({ headers: { cookie } }), undefined, DEFAULT_CONFIG).inputs().filter((i) => i.source === 'cookies').map((i) => [i.path, i.value]);
    expect(cookies(' a=1 ;b="two words";;flag; c = =x= ;')).toEqual([['cookies.a', '1'], ['cookies.b', 'two words'], ['cookies.c', '=x=']]);
    expect(cookies('')).toEqual([]);
  });

  it('reads every header but the cookie header, repeated ones by position', () => {
    const ctx = new RequestContext(request({ headers: { cookie: 'sid=1', 'x-a': 'one', 'x-list': ['p', 'q'], 'x-none': undefined } }), undefined, DEFAULT_CONFIG);
    expect(ctx.inputs().filter((i) => i.source === 'headers').map((i) => [i.path, i.value])).toEqual([['headers.x-a', 'one'], ['headers.x-list.0', 'p'], ['headers.x-list.1', 'q']]);
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

  it('tells which values have a decoded form as the checks written one by one did (percent, JWT, base64)', () => {
    // The checks as they were written one by one, each in full: decodedFormsOf must give the same answer for every value.
    const base64Like = (text: string): boolean => {
      let end = text.length;
      while (end > 0 && text.charCodeAt(end - 1) === 61) end--;
      if (text.length - end > 2 || (end !== text.length && text.length % 4 !== 0)) return false;
      let digit = false, upper = false, lower = false;
      for (let i = 0; i < end; i++) {
        const c = text.charCodeAt(i);
        if (c >= 65 && c <= 90) upper = true;
        else if (c >= 97 && c <= 122) lower = true;
        else if (c >= 48 && c <= 57) digit = true;
        else if (c !== 43 && c !== 47 && c !== 45 && c !== 95) return false;
      }
      return (upper && lower) || (digit && (upper || lower));
    };
    const reference = (v: string): boolean =>
      v.includes('%') || (v.length >= 8 && (v.startsWith('eyJ') || v.startsWith('Bearer eyJ') || (v.length <= 64 * 1024 && base64Like(v))));
    const alphabet = ['a', 'Z', '7', '=', '%', '+', '/', '-', '_', '.', ' ', 'é', 'e', 'y', 'J', 'B'];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const samples = ['keep-alive', '127.0.0.1:3000', 'name=alice', 'aGVsbG8gd29ybGQ=', 'aGVsbG8gd29ybA==', 'aGVsbG8gd29yb===', 'abc%27', '%', 'eyJhbGciOi', 'Bearer eyJx', 'Bearer x', 'abcdefg=', 'abcdefgh=', 'a='.repeat(40), 'Ab1'.repeat(30), 'Ab1'.repeat(30) + '%', '========', 'QUJDREVGR0g', 'ABCDEFGH', '12345678', 'abcdefgh1', 'QUJDREVG', 'QUJDReV', 'eyJhbGci', 'Ab1'.repeat(21_845), 'Ab1'.repeat(21_845) + 'A', 'Ab1'.repeat(21_846)];
    for (let n = 0; n < 20_000; n++) {
      const length = Math.floor(random() * 80);
      let v = '';
      for (let i = 0; i < length; i++) v += alphabet[Math.floor(random() * alphabet.length)];
      samples.push(v);
    }
    const wrong = samples.filter((v) => hasDecodedForms(v) !== reference(v));
    expect(wrong).toEqual([]);
    expect(samples.filter((v) => hasDecodedForms(v)).length).toBeGreaterThan(1000); // the samples reach both answers
    expect(samples.filter((v) => !hasDecodedForms(v)).length).toBeGreaterThan(1000);
    // …and for base64 alone, values of 8 to 64 characters without '%' that are base64-like:
    expect(samples.filter((v) => v.length >= 8 && v.length <= 64 && !v.includes('%') && !v.startsWith('eyJ') && base64Like(v)).length).toBeGreaterThan(20);
  });

  it("joins a value's path only when it is read, and a value that outranks a key takes its path", () => {
    const c = new InputCollector({ maxInputs: 1000, maxInputBytes: 1 << 20 });
    c.addNamed('query', 'query', 'id', 'id', true);
    c.addNamed('path', 'path', 2, 'id');
    c.addNamed('headers', 'headers', 'x-a', 'one');
    c.addTree('body', 'body', { list: ['p', 7, { deep: 'q' }], flag: true });
    const byValue = Object.fromEntries(c.inputs.map((i) => [i.value, [i.path, i.isKey]]));
    expect(byValue).toEqual({
      id: ['path.2', undefined],
      one: ['headers.x-a', undefined],
      list: ['body.list', true],
      p: ['body.list.0', undefined],
      '7': ['body.list.1', undefined],
      deep: ['body.list.2.deep', true],
      q: ['body.list.2.deep', undefined],
      'p,7': ['body.list', undefined],
      flag: ['body.flag', true],
      true: ['body.flag', undefined],
    });
  });
});
