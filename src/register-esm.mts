/**
 * ESM preload: `node --import stepguard/register app.mjs`. Starts the same agent as the CommonJS preload,
 * plus the ES-module loader hook for packages the app imports, and waits until the loader knows them, so
 * the app's first `import` is already covered.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** What src/instrument/esm.ts reads as started from this entry; set here without loading that module. */
const ESM_ENTRY = Symbol.for('stepguard.esm-entry');
/** runtime.ts's holder, read without loading that module (as agent.ts does). */
const RUNTIME_HOLDER = Symbol.for('stepguard.runtime-holder');

try {
  // The CommonJS preload reads STEPGUARD_ENABLED before it loads anything else, and starts the agent only on the
  // main thread; this entry adds only the wait for the ES-module loader hook, when an agent started.
  (globalThis as { [ESM_ENTRY]?: boolean })[ESM_ENTRY] = true;
  require('./register.js');
  if ((globalThis as { [RUNTIME_HOLDER]?: { current?: unknown } })[RUNTIME_HOLDER]?.current !== undefined) {
    await (require('./instrument/esm.js') as typeof import('./instrument/esm.js')).esmHooksReady();
  }
} catch (error) {
  process.stderr.write(`[stepguard] error: failed to start, the app runs unprotected: ${error instanceof Error ? error.stack : String(error)}\n`);
}
