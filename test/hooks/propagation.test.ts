/**
 * Context propagation hooks (issue #9): bluebird and generic-pool hand work from one request to another. Each
 * case registers work in requests A and B and lets a third context (C) trigger it, the way a pooled socket or
 * another request's promise settles it in an app: every callback must run in the request that registered it,
 * and the library must behave exactly as without the agent (values, `this`, errors, `reflect`, `spread`).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { REPO } from '../helpers/app.js';
import { startAgentInProcess } from '../helpers/agent.js';

const require = createRequire(import.meta.url);

type Ctx = object | undefined;
let runWithContext: <R>(input: object, fn: () => R) => R;
let currentContext: () => Ctx;
let isWrapped: (fn: unknown) => boolean;

beforeAll(() => {
  ({ runWithContext, isWrapped } = startAgentInProcess());
  ({ currentContext } = require('../../dist/src/context/store.js') as { currentContext: () => Ctx });
});

const inRequest = <R>(name: string, fn: () => R): R => runWithContext({ query: { q: name } }, fn);

/* eslint-disable @typescript-eslint/no-explicit-any -- two majors of an untyped library */
type BluebirdLike = any;

const OLD = join(REPO, 'test/stacks/old-queues/node_modules');
const bluebirds: Array<[string, () => BluebirdLike]> = [
  ['bluebird 3.x', () => require('bluebird')],
  ['bluebird 3.x private copy (getNewLibraryCopy, as Sequelize 4)', () => require('bluebird').getNewLibraryCopy()],
  ['bluebird 2.x', () => require(join(OLD, 'bluebird'))],
];

describe.each(bluebirds)('%s', (_name, load) => {
  it('runs each handler in the request that registered it, whoever settles the promise', async () => {
    const P = load();
    expect(isWrapped(P.prototype._then)).toBe(true);
    let settle!: (v: number) => void;
    const shared = new P((resolve: (v: number) => void) => (settle = resolve));
    const seen: Array<[string, Ctx, unknown]> = [];
    const done: Array<Promise<unknown>> = [];
    let a: Ctx;
    let b: Ctx;
    inRequest('A', () => {
      a = currentContext();
      done.push(shared.then((v: number) => seen.push(['A.then', currentContext(), v])));
      done.push(shared.tap(() => seen.push(['A.tap', currentContext(), undefined])));
    });
    inRequest('B', () => {
      b = currentContext();
      done.push(shared.then((v: number) => [v, v + 1]).spread((x: number, y: number) => seen.push(['B.spread', currentContext(), x + y])));
      done.push(shared.then(() => P.reject(new Error('boom'))).catch((e: Error) => seen.push(['B.catch', currentContext(), e.message])));
      done.push(shared.finally(() => seen.push(['B.finally', currentContext(), undefined])));
    });
    inRequest('C', () => settle(20));
    await Promise.all(done);
    expect(a).toBeDefined();
    expect(a).not.toBe(b);
    const byName = Object.fromEntries(seen.map(([n, ctx, v]) => [n, { ctx, v }]));
    expect(byName['A.then']).toEqual({ ctx: a, v: 20 });
    expect(byName['A.tap']!.ctx).toBe(a);
    expect(byName['B.spread']).toEqual({ ctx: b, v: 41 });
    expect(byName['B.catch']).toEqual({ ctx: b, v: 'boom' });
    expect(byName['B.finally']!.ctx).toBe(b);
  });

  it('keeps bluebird’s behaviour: receivers, reflect, already settled promises, outside requests', async () => {
    const P = load();
    const receiver = { k: 7 };
    const bound = await inRequest('A', () => P.resolve(1).bind(receiver).then(function (this: typeof receiver, v: number) {
      return this.k + v;
    }));
    expect(bound).toBe(8);
    const inspection = await inRequest('A', () => P.reject(new Error('no')).reflect());
    expect(inspection.isRejected()).toBe(true);
    expect(inspection.reason().message).toBe('no');
    const settled = P.resolve(5);
    const ctxSeen = await inRequest('B', () => settled.then(() => currentContext()));
    expect(ctxSeen).toBeDefined();
    expect(await P.resolve(3).then((v: number) => v * 2)).toBe(6);
    expect(currentContext()).toBeUndefined();
  });
});

describe('generic-pool', () => {
  it('2.x: a queued acquire callback runs in the request that queued it, not in the releaser’s', async () => {
    const { Pool } = require(join(OLD, 'generic-pool')) as { Pool: new (o: object) => any };
    let n = 0;
    const pool = new Pool({ name: 't', create: (cb: (e: null, r: object) => void) => cb(null, { id: ++n }), destroy: () => undefined, max: 1, min: 0 });
    const first = await new Promise<object>((resolve) => inRequest('A', () => pool.acquire((_e: unknown, r: object) => resolve(r))));
    let b: Ctx;
    const second = new Promise<[Ctx, object]>((resolve) =>
      inRequest('B', () => {
        b = currentContext();
        pool.acquire((_e: unknown, r: object) => resolve([currentContext(), r]));
      }),
    );
    inRequest('C', () => pool.release(first));
    const [ctx, resource] = await second;
    expect(ctx).toBe(b);
    expect(resource).toBe(first);
    pool.release(resource);
    await new Promise<void>((resolve) => pool.drain(() => resolve()));
  });

  it('3.x: a waiter’s continuation runs in its own request (native promise), and acquire stays a promise', async () => {
    const { createPool } = require('generic-pool') as { createPool: (f: object, o: object) => any };
    let n = 0;
    const pool = createPool({ create: async () => ({ id: ++n }), destroy: async () => undefined }, { max: 1, min: 0 });
    expect(isWrapped(pool.acquire)).toBe(true);
    const first = await inRequest('A', () => pool.acquire());
    let b: Ctx;
    const second = inRequest('B', () => {
      b = currentContext();
      const acquired = pool.acquire();
      expect(acquired).toBeInstanceOf(Promise);
      return acquired.then((r: object) => [currentContext(), r] as const);
    });
    inRequest('C', () => pool.release(first));
    const [ctx, resource] = await second;
    expect(ctx).toBe(b);
    expect(resource).toBe(first);
    await pool.release(resource);
    await pool.drain();
    await pool.clear();
  });
});
