/**
 * src/instrument/wrap.ts, the one wrap helper every hook uses: code that looks at a wrapped function sees the
 * original (name, length, statics, symbols, `util.promisify.custom`, prototype), a second wrap changes nothing,
 * a pass-through wrapper keeps `this`, arguments, return values, throws and rejections exactly, and a target
 * that cannot be patched is left alone without an exception.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { promisify } from 'node:util';
import { isWrapped, originalOf, unwrap, wrap, type AnyFunction } from '../../../src/instrument/wrap.js';

/** The thinnest wrapper a hook can write: calls the original with the same `this` and arguments. */
const passThrough = (original: AnyFunction) =>
  function (this: unknown, ...args: unknown[]) {
    return original.apply(this, args);
  };

afterEach(() => {
  vi.restoreAllMocks();
});

describe('what code inspecting the wrapped function sees', () => {
  it('the original name and length, not the wrapper\'s', () => {
    const target = { query: function query(_text: string, _values: unknown[], _cb: () => void) {} };
    expect(wrap(target, 'query', passThrough)).toBe(true);
    expect(isWrapped(target.query)).toBe(true);
    expect(target.query.name).toBe('query');
    expect(target.query.length).toBe(3);
  });

  it('static properties and own symbols, util.promisify.custom included', async () => {
    const custom = () => Promise.resolve({ stdout: 'out', stderr: 'err' });
    const tag = Symbol('tag');
    const exec = Object.assign(function exec(_cmd: string, cb: (e: Error | null, out?: string) => void) {
      cb(null, 'callback');
    }, { [promisify.custom]: custom, [tag]: 'kept', flag: 42 });
    const target = { exec };
    wrap(target, 'exec', passThrough);
    expect(target.exec).not.toBe(exec);
    expect((target.exec as unknown as Record<symbol, unknown>)[promisify.custom]).toBe(custom);
    expect((target.exec as unknown as Record<symbol, unknown>)[tag]).toBe('kept');
    expect(target.exec.flag).toBe(42);
    // promisify finds the custom form on the wrapper, so it still resolves { stdout, stderr }.
    await expect((promisify(target.exec) as unknown as (cmd: string) => Promise<unknown>)('ls')).resolves.toEqual({ stdout: 'out', stderr: 'err' });
  });

  it('a property the wrapper defines itself wins over the copied one (hooks re-point promisify.custom)', () => {
    const originalCustom = () => 'original';
    const ownCustom = () => 'own';
    const fn = Object.assign(function fn() {}, { [promisify.custom]: originalCustom });
    const target = { fn };
    wrap(target, 'fn', (original) => Object.assign(passThrough(original), { [promisify.custom]: ownCustom }));
    expect((target.fn as unknown as Record<symbol, unknown>)[promisify.custom]).toBe(ownCustom);
  });

  it('a constructor keeps its prototype: instances made through the wrapper pass instanceof', () => {
    class Client {
      constructor(readonly url: string) {}
    }
    const target = { Client: Client as unknown as AnyFunction };
    wrap(target, 'Client', (original) =>
      function (this: unknown, ...args: unknown[]) {
        return Reflect.construct(original, args, new.target ?? original) as object;
      },
    );
    const Wrapped = target.Client as unknown as typeof Client;
    const made = new Wrapped('pg://x');
    expect(made).toBeInstanceOf(Client);
    expect(made).toBeInstanceOf(Wrapped);
    expect(made.url).toBe('pg://x');
    expect(Wrapped.prototype).toBe(Client.prototype);
  });

  it('originalOf reaches the unwrapped function, isWrapped tells ours from anyone else\'s', () => {
    const original = function original() {};
    const target = { fn: original };
    wrap(target, 'fn', passThrough);
    expect(originalOf(target.fn)).toBe(original);
    expect(originalOf(original)).toBe(original);
    expect(isWrapped(original)).toBe(false);
    expect(isWrapped(passThrough(original))).toBe(false);
    expect(isWrapped('not a function')).toBe(false);
  });
});

describe('idempotent', () => {
  it('a second wrap of the same property is a no-op: the first wrapper stays, the factory is not called again', () => {
    const target = { fn: () => 1 };
    wrap(target, 'fn', passThrough);
    const first = target.fn;
    const factory = vi.fn(passThrough);
    expect(wrap(target, 'fn', factory)).toBe(true);
    expect(factory).not.toHaveBeenCalled();
    expect(target.fn).toBe(first);
  });

  it('the same function reached through two objects is wrapped once (the wrapper is recognised)', () => {
    const shared = { fn: () => 1 };
    wrap(shared, 'fn', passThrough);
    const alias = { fn: shared.fn };
    const factory = vi.fn(passThrough);
    wrap(alias, 'fn', factory);
    expect(factory).not.toHaveBeenCalled();
    expect(alias.fn).toBe(shared.fn);
  });
});

describe('a pass-through wrapper changes nothing the caller can observe', () => {
  it('this, arguments and the return value (synchronous: no promise appears)', () => {
    const target = {
      base: 10,
      add(this: { base: number }, a: number, b: number) {
        return { self: this, sum: this.base + a + b };
      },
    };
    wrap(target, 'add', passThrough);
    const result = target.add(1, 2);
    expect(result).not.toBeInstanceOf(Promise);
    expect(result.self).toBe(target);
    expect(result.sum).toBe(13);
    const other = { base: 100 };
    expect(target.add.call(other, 1, 2)).toEqual({ self: other, sum: 103 });
  });

  it('a synchronous throw stays synchronous, with the very same error', () => {
    const error = new Error('boom');
    const target = {
      fail() {
        throw error;
      },
    };
    wrap(target, 'fail', passThrough);
    expect(() => target.fail()).toThrow(error);
  });

  it('an async function still returns its promise: resolution and rejection are the original\'s', async () => {
    const error = new Error('async boom');
    const target = {
      async ok(x: number) {
        return x * 2;
      },
      async fail(): Promise<never> {
        throw error;
      },
    };
    wrap(target, 'ok', passThrough);
    wrap(target, 'fail', passThrough);
    const pending = target.ok(21);
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).resolves.toBe(42);
    let thrownSynchronously = false;
    let rejection: Promise<never> | undefined;
    try {
      rejection = target.fail();
    } catch {
      thrownSynchronously = true;
    }
    expect(thrownSynchronously).toBe(false);
    await expect(rejection).rejects.toBe(error);
  });

  it('callbacks get the original\'s arguments and `this`', async () => {
    const emitter = {
      read(this: unknown, cb: (this: unknown, err: null, value: string) => void) {
        setImmediate(() => cb.call(this, null, 'value'));
      },
    };
    wrap(emitter, 'read', passThrough);
    const seen = await new Promise<{ self: unknown; args: unknown[] }>((resolve) =>
      emitter.read(function (this: unknown, ...args: unknown[]) {
        resolve({ self: this, args });
      }),
    );
    expect(seen).toEqual({ self: emitter, args: [null, 'value'] });
  });
});

describe('never throws', () => {
  it('a missing property or a non-function is not wrapped and reported as such', () => {
    const target: Record<string, unknown> = { value: 42 };
    expect(wrap(target, 'value', passThrough)).toBe(false);
    expect(wrap(target, 'missing', passThrough)).toBe(false);
    expect(target.value).toBe(42);
    expect('missing' in target).toBe(false);
  });

  it('a frozen target or a getter-only property: false, the original left in place, one warning', () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const fn = function frozenFn() {};
    const frozen = Object.freeze({ frozenFn: fn });
    expect(wrap(frozen, 'frozenFn', passThrough)).toBe(false);
    expect(frozen.frozenFn).toBe(fn);
    const getterOnly = Object.defineProperty({}, 'getterFn', { get: () => fn, enumerable: true }) as { getterFn: AnyFunction };
    expect(wrap(getterOnly, 'getterFn', passThrough)).toBe(false);
    expect(getterOnly.getterFn).toBe(fn);
    const lines = stderr.mock.calls.map(([chunk]) => String(chunk));
    expect(lines.filter((l) => l.includes('could not patch frozenFn'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('could not patch getterFn'))).toHaveLength(1);
  });

  it('a factory that throws leaves the original in place', () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const fn = function throwingFactoryFn() {};
    const target = { fn };
    expect(
      wrap(target, 'fn', () => {
        throw new Error('factory failed');
      }),
    ).toBe(false);
    expect(target.fn).toBe(fn);
  });
});

describe('unwrap', () => {
  it('restores the original with its enumerability; unwrapping something not wrapped is a no-op', () => {
    const original = () => 'original';
    const target = { fn: original };
    Object.defineProperty(target, 'hidden', { value: () => 'hidden', enumerable: false, writable: true, configurable: true });
    wrap(target, 'fn', passThrough);
    wrap(target as unknown as { hidden: AnyFunction }, 'hidden', passThrough);
    unwrap(target, 'fn');
    unwrap(target as unknown as { hidden: AnyFunction }, 'hidden');
    expect(target.fn).toBe(original);
    expect(isWrapped((target as unknown as { hidden: AnyFunction }).hidden)).toBe(false);
    expect(Object.keys(target)).toEqual(['fn']);
    unwrap(target, 'fn');
    expect(target.fn).toBe(original);
  });
});
