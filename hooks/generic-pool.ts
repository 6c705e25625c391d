import { defineHook, wrap, ownerOf, bindToRequest, shouldInspect, type AnyFunction } from '../src/hook-kit.js';

/**
 * PROPAGATION: generic-pool (Sequelize 4's pool and many hand-rolled ones). A request that waits for a resource
 * is answered from the context of the request that released it. 3.x answers with a promise (a native one keeps
 * the waiter's context by itself; bluebird's is bound by hooks/bluebird.ts); 2.x calls the `acquire(callback)`
 * stored in its queue, which is bound here to the request that queued it.
 */

function wrapAcquire(proto: object): void {
  wrap(proto as { acquire: AnyFunction }, 'acquire', (original) =>
    function acquire(this: unknown, ...args: unknown[]) {
      if (typeof args[0] === 'function' && shouldInspect()) {
        try {
          args[0] = bindToRequest(args[0] as AnyFunction);
        } catch {
          // binding failed (it allocates only): the callback runs as without the agent
        }
      }
      return original.apply(this, args);
    },
  );
}

export const genericPool = defineHook({
  module: 'generic-pool',
  patch(exports) {
    const Pool = (exports as { Pool?: { prototype?: object } }).Pool;
    const owner = ownerOf(Pool?.prototype, 'acquire');
    if (!owner) throw new Error('generic-pool Pool.prototype.acquire not found');
    wrapAcquire(owner);
  },
});
