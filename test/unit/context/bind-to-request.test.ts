import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { bindToRequest as bindInHooks } from '../../../src/hook-kit.js';
import { bindToRequest } from '../../../src/api.js';
import { currentContext, runInContext } from '../../../src/context/store.js';
import { RequestContext } from '../../../src/context/request-context.js';
import { DEFAULT_CONFIG } from '../../../src/config.js';

const request = (url: string): RequestContext =>
  new RequestContext({ method: 'GET', url, headers: {}, socket: {} } as unknown as IncomingMessage, undefined, DEFAULT_CONFIG);

/** Both take any function and give back one of the same type. */
type Binder = <F extends (...args: never[]) => unknown>(fn: F) => F;

describe.each<[string, Binder]>([
  ['the public API', bindToRequest],
  ['the hook kit', bindInHooks as unknown as Binder],
])('bindToRequest (%s)', (_where, bind) => {
  it('runs the callback in the request it was bound in, wherever it is called from', () => {
    const a = request('/a');
    const b = request('/b');
    const queued: (() => RequestContext | undefined)[] = [];
    runInContext(b, () => queued.push(bind(() => currentContext())));
    // A worker started by request A drains the queue.
    expect(runInContext(a, () => queued.map((job) => job()))).toEqual([b]);
    expect(queued[0]!()).toBe(b);
  });

  it('keeps this, arguments, return value, thrown errors and the arity (0 to 5 parameters)', () => {
    const ctx = request('/x');
    const fns = [
      function (this: unknown) {
        return [this, ...arguments];
      },
      function (this: unknown, a: unknown) {
        return [this, a, ...[...arguments].slice(1)];
      },
      (a: unknown, b: unknown) => [undefined, a, b],
      function (this: unknown, a: unknown, b: unknown, c: unknown) {
        return [this, a, b, c];
      },
      function (this: unknown, a: unknown, b: unknown, c: unknown, d: unknown) {
        return [this, a, b, c, d];
      },
      function (this: unknown, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown) {
        return [this, a, b, c, d, e];
      },
    ];
    for (const fn of fns) {
      const bound = runInContext(ctx, () => bind(fn as (...args: unknown[]) => unknown)) as (this: unknown, ...args: unknown[]) => unknown;
      expect(bound.length).toBe(fn.length);
      const self = { me: true };
      const result = bound.call(self, 1, 2, 3, 4, 5) as unknown[];
      expect(result.slice(1)).toEqual([1, 2, 3, 4, 5].slice(0, Math.max(result.length - 1, 0)));
      if (fn.length !== 2) expect(result[0]).toBe(self);
    }
    const failing = runInContext(ctx, () =>
      bind(() => {
        throw new RangeError('kept');
      }),
    );
    expect(() => failing()).toThrow(RangeError);
  });

  it('outside a request gives the function back unchanged', () => {
    const fn = (x: number) => x + 1;
    expect(bind(fn)).toBe(fn);
  });
});

it('the public API refuses what is not a function, with a message naming it', () => {
  expect(() => bindToRequest(42 as unknown as () => void)).toThrow(/stepguard\.bindToRequest: expected a function/);
});
