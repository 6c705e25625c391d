/**
 * ESM preload: `node --import stepguard/register app.mjs`. Starts the same agent as the CommonJS preload,
 * plus the ES-module loader hook for packages the app imports, and waits until the loader knows them, so
 * the app's first `import` is already covered.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

try {
  // STEPGUARD_ENABLED=false is read before anything heavier loads.
  const switchedOff = (require('./agent.js') as typeof import('./agent.js')).switchedOffByEnv();
  if (!switchedOff && (require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread) {
    const esm = require('./instrument/esm.js') as typeof import('./instrument/esm.js');
    esm.markEsmEntry();
    require('./register.js');
    await esm.esmHooksReady();
  }
} catch (error) {
  process.stderr.write(`[stepguard] error: failed to start, the app runs unprotected: ${error instanceof Error ? error.stack : String(error)}\n`);
}
