/**
 * Outgoing-request hooks in-process, against the compiled agent in block mode: http/https request/get in every
 * argument form, global fetch, and undici (request, fetch, Client, Pool, Agent). Benign calls go to a public
 * (TEST-NET-3) host in a network namespace and must behave exactly as without the agent; refused calls must
 * fail the library's way (ClientRequest 'error' event, rejected promise), never by a synchronous throw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type * as Http from 'node:http';
import { fixture } from '../helpers/app.js';
import { startNetnsHost, type NetnsHost } from '../helpers/netns.js';

const require = createRequire(import.meta.url);
const agent = require('../../dist/src/agent.js') as { start(env: NodeJS.ProcessEnv): unknown };
agent.start({ ...process.env, STEPGUARD_MODE: 'block', STEPGUARD_TELEMETRY: 'false', STEPGUARD_RULES: '', STEPGUARD_LOG_LEVEL: 'silent' });
const { runWithContext } = require('../../dist/src/index.js') as { runWithContext<R>(input: object, fn: () => R): R };
const runtimeModule = require('../../dist/src/runtime.js') as typeof import('../../src/runtime.js');
/** Runs `fn` with the agent configured with STEPGUARD_SSRF_ALLOW=`entries` (the allow-list is configuration). */
async function withSsrfAllow<R>(entries: string[], fn: () => Promise<R>): Promise<R> {
  const runtime = runtimeModule.getRuntime()!;
  const config = { ...runtime.config, ssrfAllow: entries };
  runtimeModule.setRuntime({ ...runtime, config, detectorsByKind: runtimeModule.detectorSlots(runtime.engine, config) });
  try {
    return await fn();
  } finally {
    runtimeModule.setRuntime(runtime);
  }
}
const http = require('node:http') as typeof Http;
const https = require('node:https') as typeof import('node:https');
const undici = require('undici') as typeof import('undici');

let pub: NetnsHost;
let internal: Http.Server;
let internalPort: number;
let internalHits = 0;
/** A closed port on the public host: connection refused. */
let closedUrl: string;

const benign = { query: { q: 'hello' }, headers: { 'user-agent': 'test' } };
const inContext = <R>(fn: () => R, input: object = benign): R => runWithContext(input, fn);
const attack = (url: string) => ({ query: { url } });

interface Result {
  status?: number;
  headers?: Record<string, unknown>;
  body?: string;
  error?: string;
  events: string[];
}

/** Runs an http-style call and records what the app would observe. */
function observe(start: (cb: (res: Http.IncomingMessage) => void) => Http.ClientRequest): Promise<Result> {
  return new Promise((resolve) => {
    const result: Result = { events: [] };
    let req: Http.ClientRequest;
    try {
      req = start((res) => {
        result.events.push('response');
        result.status = res.statusCode;
        result.headers = { 'content-type': res.headers['content-type'] };
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          result.events.push('end');
          result.body = body;
        });
      });
    } catch (error) {
      result.error = `sync:${(error as { code?: string }).code}`;
      return resolve(result);
    }
    req.on('error', (e: NodeJS.ErrnoException) => {
      result.events.push('error');
      result.error = e.code ?? e.name;
    });
    req.on('close', () => {
      result.events.push('close');
      setImmediate(() => resolve(result));
    });
  });
}

beforeAll(async () => {
  pub = await startNetnsHost({ script: fixture('ssrf-public-host.cjs') });
  closedUrl = `http://${pub.address}:81/`;
  internal = http.createServer((_req, res) => {
    internalHits++;
    res.end('internal secret');
  });
  internal.listen(0, '::');
  await once(internal, 'listening');
  internalPort = (internal.address() as AddressInfo).port;
});

afterAll(async () => {
  await pub?.stop();
  internal?.close();
});

describe('http/https client: every call form behaves as without the agent', () => {
  const forms: [string, (base: string) => (cb: (res: Http.IncomingMessage) => void) => Http.ClientRequest][] = [
    ['get(url string, cb)', (b) => (cb) => http.get(`${b}/json?q=1`, cb)],
    ['get(URL, cb)', (b) => (cb) => http.get(new URL(`${b}/echo`), cb)],
    ['get(options, cb)', (b) => (cb) => http.get({ host: new URL(b).hostname, port: 80, path: '/hello' }, cb)],
    ['get(url, options, cb)', (b) => (cb) => http.get(`${b}/echo`, { headers: { 'x-a': '1' } }, cb)],
    ['get(url, options overriding the path, cb)', (b) => (cb) => http.get(`${b}/ignored`, { path: '/json' }, cb)],
    ['request(url, cb).end()', (b) => (cb) => http.request(`${b}/stream`, cb).end()],
    [
      'request(options) with a streamed body',
      (b) => (cb) => {
        const req = http.request({ hostname: new URL(b).hostname, port: 8080, path: '/upload', method: 'POST' }, cb);
        req.write('part1;');
        req.end('part2');
        return req;
      },
    ],
    ['request(URL, options, cb) to a closed port', () => (cb) => http.request(new URL(closedUrl), { method: 'GET' }, cb).end()],
    [
      'get with a custom lookup that fails',
      () => (cb) =>
        http.get({ host: 'nowhere.example', lookup: ((_h: string, _o: unknown, done: (e: Error) => void) => done(Object.assign(new Error('nope'), { code: 'ENOTFOUND' }))) as unknown as Http.RequestOptions['lookup'] }, cb),
    ],
  ];

  it.each(forms)('%s', async (_name, form) => {
    const base = `http://${pub.address}`;
    const outside = await observe(form(base));
    const inside = await inContext(() => observe(form(base)));
    expect(inside).toEqual(outside);
    if (!outside.error) expect(outside.body).toBeTruthy();
  });

  it('the same for a URL the user chose, on a public host (reported, not blocked)', async () => {
    const url = `http://${pub.address}/json?q=2`;
    const outside = await observe((cb) => http.get(url, cb));
    const inside = await inContext(() => observe((cb) => http.get(url, cb)), attack(url));
    expect(inside).toEqual(outside);
    expect(inside.status).toBe(200);
  });

  it('https.request with an invalid protocol still throws synchronously, as without the agent', () => {
    expect(() => inContext(() => https.request('http://example.com/'))).toThrow(/Protocol "http:" not supported/);
    expect(() => inContext(() => http.get('not a url'))).toThrow(/Invalid URL/);
  });
});

describe('http/https client: refusals', () => {
  it('http.get of a user-chosen internal URL: a ClientRequest that emits error then close', async () => {
    const url = `http://127.0.0.1:${internalPort}/`;
    const before = internalHits;
    let req: Http.ClientRequest | undefined;
    const result = await inContext(
      () =>
        observe((cb) => {
          req = http.get(url, cb);
          return req;
        }),
      attack(url),
    );
    expect(req).toBeInstanceOf(http.ClientRequest);
    expect(result).toEqual({ error: 'ERR_STEPGUARD_BLOCKED', events: ['error', 'close'] });
    expect(internalHits).toBe(before);
  });

  it.each([
    ['string', (u: string) => http.request(u)],
    ['URL', (u: string) => http.request(new URL(u))],
    ['options', (u: string) => http.request({ host: new URL(u).hostname.replace(/^\[|\]$/g, ''), port: Number(new URL(u).port), path: '/' })],
    ['url + options + cb', (u: string) => http.request(u, { method: 'POST' }, () => undefined)],
    ['https string', (u: string) => https.request(u.replace('http:', 'https:'))],
  ])('http.request(%s) never throws synchronously', async (_name, make) => {
    for (const url of [`http://2130706433:${internalPort}/`, `http://[::1]:${internalPort}/`, `http://localhost:${internalPort}/`]) {
      const before = internalHits;
      const result = await inContext(() => observe(() => make(url).end() as unknown as Http.ClientRequest), attack(url));
      expect(result.error).toBe('ERR_STEPGUARD_BLOCKED');
      expect(internalHits).toBe(before);
    }
  });

  it('a user-chosen name resolving to loopback is refused at connection time (the lookup answer)', async () => {
    const lookup = (_h: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) =>
      opts?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
    const before = internalHits;
    const result = await inContext(
      () => observe((cb) => http.get({ host: 'svc.example', port: internalPort, path: '/', lookup } as Http.RequestOptions, cb)),
      { query: { host: 'svc.example' } },
    );
    expect(result.error).toBe('ERR_STEPGUARD_BLOCKED');
    expect(internalHits).toBe(before);
    // The same name, chosen by the app, resolves and connects as usual.
    const ok = await inContext(() => observe((cb) => http.get({ host: 'svc.example', port: internalPort, path: '/', lookup } as Http.RequestOptions, cb)));
    expect(ok.body).toBe('internal secret');
  });

  it('a keep-alive socket to an internal address is not reused for a user-chosen host', async () => {
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const lookup = (_h: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) =>
      opts?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
    const options = { host: 'pooled.example', port: internalPort, path: '/', agent: keepAlive, lookup } as Http.RequestOptions;
    const first = await observe((cb) => http.get(options, cb)); // the app's own call: opens the pooled socket
    expect(first.body).toBe('internal secret');
    const before = internalHits;
    const second = await inContext(() => observe((cb) => http.get(options, cb)), { query: { host: 'pooled.example' } });
    expect(second.error).toBe('ERR_STEPGUARD_BLOCKED');
    expect(internalHits).toBe(before);
    keepAlive.destroy();
  });

  it('a redirect followed with a new request (follow-redirects style) is refused', async () => {
    const start = `http://${pub.address}/redirect?to=${encodeURIComponent(`http://127.0.0.1:${internalPort}/`)}`;
    const before = internalHits;
    const result = await inContext(
      () =>
        new Promise<string>((resolve) => {
          http.get(start, (res) => {
            res.resume();
            const next = new URL(res.headers.location!, start);
            http.get(next, (r) => resolve(`followed ${r.statusCode}`)).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          });
        }),
      attack(start),
    );
    expect(result).toBe('ERR_STEPGUARD_BLOCKED');
    expect(internalHits).toBe(before);
  });

  it('an allow-listed internal destination is reachable', async () => {
    const url = `http://127.0.0.1:${internalPort}/`;
    const result = await withSsrfAllow(['127.0.0.1'], () => inContext(() => observe((cb) => http.get(url, cb)), attack(url)));
    expect(result.body).toBe('internal secret');
  });
});

describe('global fetch', () => {
  it('resolves as without the agent (text, json, status, redirect, streams)', async () => {
    const run = async () => {
      const a = await fetch(`http://${pub.address}/json?q=3`);
      const b = await fetch(new URL(`http://${pub.address}/redirect?to=/hello`));
      const c = await fetch(new Request(`http://${pub.address}:8080/status?code=418`));
      const d = await fetch(`http://${pub.address}/stream`);
      let streamed = '';
      for await (const chunk of d.body as unknown as AsyncIterable<Uint8Array>) streamed += Buffer.from(chunk).toString();
      return { a: [a.status, await a.json()], b: [b.status, b.redirected, b.url.replace(pub.address, 'PUB'), await b.text()], c: [c.status, await c.text()], streamed };
    };
    const outside = await run();
    expect(await inContext(run)).toEqual(outside);
  });

  it('a network error rejects the same way', async () => {
    const reason = (p: Promise<unknown>) => p.then(() => 'resolved', (e: Error & { cause?: { code?: string } }) => `${e.name}: ${e.message} (${e.cause?.code})`);
    expect(await inContext(() => reason(fetch(closedUrl)))).toBe(await reason(fetch(closedUrl)));
  });

  it('a refused fetch is a rejected promise: TypeError("fetch failed") with the refusal as cause', async () => {
    for (const url of [`http://127.0.0.1:${internalPort}/`, `http://0x7f000001:${internalPort}/`, `http://[::ffff:127.0.0.1]:${internalPort}/`]) {
      const before = internalHits;
      let promise: Promise<Response> | undefined;
      expect(() => inContext(() => (promise = fetch(url)), attack(url))).not.toThrow();
      const error = (await promise!.catch((e: unknown) => e)) as TypeError & { cause?: { code?: string } };
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe('fetch failed');
      expect(error.cause?.code).toBe('ERR_STEPGUARD_BLOCKED');
      expect(internalHits).toBe(before);
    }
  });

  it('a redirect to an internal address is refused mid-chain', async () => {
    const url = `http://${pub.address}/redirect?to=${encodeURIComponent(`http://127.0.0.1:${internalPort}/`)}`;
    const before = internalHits;
    const error = (await inContext(() => fetch(url), attack(url)).catch((e: unknown) => e)) as TypeError & { cause?: { code?: string } };
    expect(error.cause?.code).toBe('ERR_STEPGUARD_BLOCKED');
    expect(internalHits).toBe(before);
    // The same redirect chain started by the app itself is followed.
    const ok = await inContext(() => fetch(url));
    expect(await ok.text()).toBe('internal secret');
  });
});

describe('undici package', () => {
  it('request / fetch / Client / Pool / Agent behave as without the agent', async () => {
    const run = async () => {
      const base = `http://${pub.address}`;
      const r1 = await undici.request(`${base}/json?q=4`);
      const client = new undici.Client(base);
      const r2 = await client.request({ path: '/echo', method: 'GET' });
      const pool = new undici.Pool(`${base}:8080`);
      const r3 = await pool.request({ path: '/hello', method: 'GET' });
      const ag = new undici.Agent();
      const r4 = await ag.request({ origin: base, path: '/status?code=404', method: 'GET' });
      const r5 = await undici.fetch(`${base}/redirect?to=/json`);
      const out = [r1.statusCode, await r1.body.json(), r2.statusCode, await r2.body.text(), r3.statusCode, await r3.body.text(), r4.statusCode, await r4.body.text(), r5.status, await r5.json()];
      await Promise.all([client.close(), pool.close(), ag.close()]);
      return out;
    };
    const outside = await run();
    expect(await inContext(run)).toEqual(outside);
  });

  it('refusals reject, through each API', async () => {
    const url = `http://127.0.0.1:${internalPort}/`;
    const before = internalHits;
    const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: Error & { code?: string; cause?: { code?: string } }) => e.code ?? e.cause?.code);
    const client = new undici.Client(url);
    const results = await inContext(
      () => Promise.all([code(undici.request(url)), code(undici.fetch(url)), code(client.request({ path: '/', method: 'GET' })), code(new undici.Agent().request({ origin: url, path: '/', method: 'GET' }))]),
      attack(url),
    );
    expect(results).toEqual(['ERR_STEPGUARD_BLOCKED', 'ERR_STEPGUARD_BLOCKED', 'ERR_STEPGUARD_BLOCKED', 'ERR_STEPGUARD_BLOCKED']);
    expect(internalHits).toBe(before);
    await client.close();
  });
});
