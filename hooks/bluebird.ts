import { defineHook, wrap, bindToRequest, shouldInspect, type AnyFunction } from '../src/hook-kit.js';

/**
 * PROPAGATION: bluebird. Bluebird runs every reaction from its own queue, drained once per tick from whichever
 * context settled the first promise of the batch, so without this a `.then` handler registered in request B
 * runs in request A's context (or in none) and the sinks it reaches are judged against the wrong input.
 *
 * The handlers are bound where they are handed over, in `Promise.prototype._then`: every public chaining method
 * (`then`, `catch`, `finally`, `spread`, `tap`, `asCallback`, coroutines, `map`…) registers through it, in
 * bluebird 2.x and 3.x alike, and the context at registration is exactly what a native promise would restore.
 * Binding later (at the queue drain) cannot work: by then the registering context is gone. Bluebird 3.7's own
 * `Promise.config({ asyncHooks: true })` is app-wide, opt-in and absent before 3.7, so it is not relied upon.
 */

type Then = AnyFunction;

function bound(handler: unknown): unknown {
  return typeof handler === 'function' ? bindToRequest(handler as AnyFunction) : handler;
}

function wrapThen(proto: object): boolean {
  return wrap(proto as { _then: Then }, '_then', (original) =>
    function _then(this: unknown, didFulfill: unknown, didReject: unknown, ...rest: unknown[]) {
      if (!shouldInspect()) return original.call(this, didFulfill, didReject, ...rest);
      // `reflect()` passes one internal handler twice and bluebird's cancellation path recognises it by identity:
      // it is never user code, so it stays as it is.
      if (didFulfill === didReject && rest[1] === this) return original.call(this, didFulfill, didReject, ...rest);
      let fulfill = didFulfill;
      let reject = didReject;
      try {
        fulfill = bound(didFulfill);
        reject = bound(didReject);
      } catch {
        // binding failed (it allocates only): the handlers run as without the agent
        fulfill = didFulfill;
        reject = didReject;
      }
      return original.call(this, fulfill, reject, ...rest);
    },
  );
}

/**
 * A bluebird class: its `_then`, and the classes it makes with `getNewLibraryCopy()` (Sequelize 4 and other
 * libraries take a private copy so that their config does not leak into the app's bluebird).
 */
function patchClass(Promise: unknown): void {
  const proto = (Promise as { prototype?: { _then?: unknown } } | undefined)?.prototype;
  if (!proto || typeof proto._then !== 'function') throw new Error('bluebird Promise.prototype._then not found');
  if (!wrapThen(proto)) throw new Error('bluebird Promise.prototype._then could not be patched');
  const owner = Promise as { getNewLibraryCopy?: AnyFunction };
  if (typeof owner.getNewLibraryCopy !== 'function') return;
  wrap(owner as { getNewLibraryCopy: AnyFunction }, 'getNewLibraryCopy', (original) =>
    function getNewLibraryCopy(this: unknown, ...args: unknown[]) {
      const copy: unknown = original.apply(this, args);
      try {
        patchClass(copy);
      } catch {
        // a copy of an unexpected shape: it works as before, unbound
      }
      return copy;
    },
  );
}

export const bluebird = defineHook({
  module: 'bluebird',
  patch(exports) {
    patchClass(exports);
  },
});
