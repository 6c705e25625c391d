import shimmer from 'shimmer';
import { warnOnce, errorMessage } from '../log.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- wrappers are generic over arbitrary library functions */
export type AnyFunction = (this: any, ...args: any[]) => any;

const WRAPPED = Symbol.for('stepguard.wrapped');
const ORIGINAL = Symbol.for('stepguard.original');

/** True when `fn` is one of our wrappers. */
export function isWrapped(fn: unknown): boolean {
  return typeof fn === 'function' && (fn as unknown as Record<symbol, unknown>)[WRAPPED] === true;
}

export function originalOf<F extends AnyFunction>(fn: F): F {
  let current: unknown = fn;
  while (isWrapped(current)) current = (current as unknown as Record<symbol, unknown>)[ORIGINAL];
  return current as F;
}

/**
 * Replaces `target[name]` by `makeWrapper(original)`. Idempotent (a second wrap is a no-op), keeps the
 * original's `name`, `length`, own symbol properties (e.g. `util.promisify.custom`, so `promisify(exec)` still
 * resolves `{ stdout, stderr }`) and static properties, so code that inspects the function sees no difference. Never throws: a target that
 * cannot be patched (getter-only, frozen) is reported once and left alone.
 */
export function wrap<T extends object, K extends keyof T>(
  target: T,
  name: K,
  makeWrapper: (original: T[K] & AnyFunction) => AnyFunction,
): boolean {
  try {
    const original = target[name] as unknown;
    if (typeof original !== 'function') return false;
    if (isWrapped(original)) return true;
    const wrapper = makeWrapper(original as T[K] & AnyFunction);
    copyFunctionProperties(original as AnyFunction, wrapper);
    Object.defineProperty(wrapper, WRAPPED, { value: true });
    Object.defineProperty(wrapper, ORIGINAL, { value: original });
    shimmer.wrap(target as any, name as string, () => wrapper as any);
    // shimmer logs instead of throwing for some failures; verify the patch actually landed.
    return target[name] === (wrapper as unknown);
  } catch (error) {
    warnOnce(`wrap:${String(name)}`, `could not patch ${String(name)}: ${errorMessage(error)}; it runs unprotected`);
    return false;
  }
}

/** Restores the original (tests, and `stepguard.stop()`). */
export function unwrap<T extends object, K extends keyof T>(target: T, name: K): void {
  const current = target[name] as unknown;
  if (!isWrapped(current)) return;
  try {
    Object.defineProperty(target, name, {
      value: (current as unknown as Record<symbol, unknown>)[ORIGINAL],
      writable: true,
      configurable: true,
      enumerable: Object.prototype.propertyIsEnumerable.call(target, name),
    });
  } catch {
    // not restorable: leave the (transparent) wrapper in place
  }
}

function copyFunctionProperties(from: AnyFunction, to: AnyFunction): void {
  for (const key of ['name', 'length'] as const) {
    const descriptor = Object.getOwnPropertyDescriptor(from, key);
    if (descriptor) Object.defineProperty(to, key, descriptor);
  }
  for (const key of Reflect.ownKeys(from)) {
    if (key === 'name' || key === 'length' || key === 'prototype' || key === 'arguments' || key === 'caller') continue;
    const descriptor = Object.getOwnPropertyDescriptor(from, key);
    if (descriptor && !Object.getOwnPropertyDescriptor(to, key)) {
      try {
        Object.defineProperty(to, key, descriptor);
      } catch {
        // non-configurable on the target: skip
      }
    }
  }
  if (Object.getOwnPropertyDescriptor(from, 'prototype')) {
    // Constructors (e.g. `new Function`) must keep `instanceof` working.
    try {
      Object.defineProperty(to, 'prototype', Object.getOwnPropertyDescriptor(from, 'prototype')!);
    } catch {
      // arrow/method targets have a non-writable prototype slot: fine
    }
  }
}
