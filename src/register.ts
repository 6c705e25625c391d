/**
 * Preload entry: `node --require stepguard/register app.js`. Starts the agent once per process (a
 * second require, or a second copy of stepguard, is a no-op) and only on the main thread: Node re-runs
 * preloads inside loader and worker threads, where there is no request to protect. Never throws.
 */
import { isMainThread } from 'node:worker_threads';

const STARTED = Symbol.for('stepguard.started');
const holder = globalThis as { [STARTED]?: boolean };

if (isMainThread && !holder[STARTED]) {
  holder[STARTED] = true;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only on the main thread
    const { runtime } = (require('./agent.js') as typeof import('./agent.js')).start();
    // Only a preloaded agent speaks about the app's entry point (programmatic starts have none).
    if (runtime) (require('./instrument/esm.js') as typeof import('./instrument/esm.js')).announceCoverage(process.argv[1]);
  } catch (error) {
    try {
      process.stderr.write(`[stepguard] error: failed to start, the app runs unprotected: ${error instanceof Error ? error.stack : String(error)}\n`);
    } catch {
      // nothing left to report to
    }
  }
}
