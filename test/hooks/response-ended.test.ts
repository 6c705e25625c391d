/**
 * A request counts as answered once the app calls `end` on its response: hooks/html-response.ts sets
 * `responseEnded` on its request context, which the list of requests in flight (src/context/live.ts) and
 * `finished` (src/context/stale.ts) read before the response. The response of another request, ended from this one
 * (long polling) or outside any request, marks that request, found among those in flight. Not while a page the
 * agent refused is left to the app to answer (STEPGUARD_RESPOND=app).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type * as HttpModule from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AsyncLocalStorage } from 'node:async_hooks';
import { startAgentInProcess } from '../helpers/agent.js';

const require = createRequire(import.meta.url);

interface Context {
  readonly responseEnded: boolean;
  readonly finished: boolean;
  readonly arrivedWithoutBody: boolean;
}

/** The agent's AsyncLocalStorage (src/context/store.ts keeps it on this global symbol). */
const storage = (): AsyncLocalStorage<unknown> => (globalThis as Record<symbol, AsyncLocalStorage<unknown>>)[Symbol.for('stepguard.context-store')]!;

/** What the handler saw of its own request's flag, at each step it took. */
const seen = new Map<string, Record<string, boolean>>();
/** The request context of each path, as its handler found it. */
const contexts = new Map<string, Context>();
let server: Server;
let base: string;
let held: ServerResponse | undefined;

beforeAll(async () => {
  startAgentInProcess({ STEPGUARD_RESPOND: 'app' });
  const http = require('node:http') as typeof HttpModule;
  const { currentContext } = require('../../dist/src/context/store.js') as { currentContext(): Context | undefined };
  server = http.createServer((req, res) => {
    const ctx = currentContext();
    const path = (req.url ?? '/').split('?')[0]!;
    const steps: Record<string, boolean> = { inContext: ctx !== undefined, atStart: ctx?.responseEnded ?? true };
    seen.set(path, steps);
    if (ctx) contexts.set(path, ctx);
    if (path === '/wait' || path === '/wait-outside') {
      held = res; // answered by /release, or outside any request
      if (path === '/wait-outside') setTimeout(() => storage().exit(() => held!.end('ended outside')), 20);
      return;
    }
    if (path === '/release') {
      held?.end('released');
      steps.afterEndingAnother = ctx!.responseEnded;
    }
    if (path === '/upload') {
      steps.withoutBody = ctx!.arrivedWithoutBody;
      req.resume();
      req.on('end', () => res.end('done'));
      return;
    }
    if (path === '/stream') {
      res.setHeader('content-type', 'text/html');
      res.write('<p>first');
      steps.afterWrite = ctx!.responseEnded;
    }
    if (path === '/reflect') {
      const q = new URL(req.url!, 'http://x').searchParams.get('q') ?? '';
      res.setHeader('content-type', 'text/html');
      try {
        res.end(`<p>${q}</p>`);
      } catch {
        steps.afterRefusal = ctx!.responseEnded;
        res.statusCode = 403;
        res.end('refused by the app');
        steps.afterEnd = ctx!.responseEnded;
        return;
      }
    }
    res.end('done');
    steps.afterEnd = ctx!.responseEnded;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

describe('a request counts as answered when the app ends its own response', () => {
  it('set by end, not by a write before it', async () => {
    expect(await (await fetch(`${base}/plain`)).text()).toBe('done');
    expect(seen.get('/plain')).toEqual({ inContext: true, atStart: false, afterEnd: true });
    // Finished is read from the response once it ended: the answer has left by now.
    expect(contexts.get('/plain')!.finished).toBe(true);
    expect(await (await fetch(`${base}/stream`)).text()).toBe('<p>firstdone');
    expect(seen.get('/stream')).toEqual({ inContext: true, atStart: false, afterWrite: false, afterEnd: true });
  });

  it("ending another request's response marks that request, found among those in flight, not the one ending it", async () => {
    const waiting = fetch(`${base}/wait`).then((r) => r.text());
    await expect.poll(() => seen.has('/wait')).toBe(true);
    expect(contexts.get('/wait')!.finished).toBe(false);
    expect(await (await fetch(`${base}/release`)).text()).toBe('done');
    expect(await waiting).toBe('released');
    expect(seen.get('/release')).toEqual({ inContext: true, atStart: false, afterEndingAnother: false, afterEnd: true });
    expect(contexts.get('/wait')!.responseEnded).toBe(true);
    expect(contexts.get('/wait')!.finished).toBe(true);
  });

  it('a response ended outside any request is found among the requests in flight', async () => {
    expect(await (await fetch(`${base}/wait-outside`)).text()).toBe('ended outside');
    expect(contexts.get('/wait-outside')!.responseEnded).toBe(true);
    expect(contexts.get('/wait-outside')!.finished).toBe(true);
  });

  it('a request that sent no body is known as one (its upload fields are not read); one with a body is not', async () => {
    expect(await (await fetch(`${base}/upload`)).text()).toBe('done');
    expect(seen.get('/upload')!.withoutBody).toBe(true);
    expect(await (await fetch(`${base}/upload`, { method: 'POST', body: 'a=1' })).text()).toBe('done');
    expect(seen.get('/upload')!.withoutBody).toBe(false);
  });

  it('a page the agent refused and left to the app is not answered until the app answers it', async () => {
    const reply = await fetch(`${base}/reflect?q=${encodeURIComponent('<img src=x onerror=alert(1)>')}`);
    expect(reply.status).toBe(403);
    expect(await reply.text()).toBe('refused by the app');
    expect(seen.get('/reflect')).toEqual({ inContext: true, atStart: false, afterRefusal: false, afterEnd: true });
  });
});
