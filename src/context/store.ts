import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestContext } from './request-context.js';

/**
 * One AsyncLocalStorage for the whole agent. Kept on a global symbol so that two copies of stepguard
 * in one process (an app that bundles its own) share a single request context.
 */
const STORE_KEY = Symbol.for('stepguard.context-store');
type Holder = { [STORE_KEY]?: AsyncLocalStorage<RequestContext> };

const holder = globalThis as Holder;
const storage: AsyncLocalStorage<RequestContext> = (holder[STORE_KEY] ??= new AsyncLocalStorage<RequestContext>());

export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

export function runInContext<R>(context: RequestContext, fn: () => R): R {
  return storage.run(context, fn);
}
