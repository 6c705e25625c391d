/**
 * Preload entry: `node --require stepguard/register app.js`. Starts the agent once per process (a
 * second require, or a second copy of stepguard, is a no-op) and only on the main thread: Node re-runs
 * preloads inside loader and worker threads, where there is no request to protect. Never throws.
 * STEPGUARD_ENABLED=false is read before anything else is loaded, so a switched-off agent costs nothing.
 */
const STARTED = Symbol.for('stepguard.started');
const holder = globalThis as { [STARTED]?: boolean };

if (!holder[STARTED]) {
  holder[STARTED] = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the logger is the first thing loaded either way
  const { writeDirectlyWhileStarting } = require('./log.js') as typeof import('./log.js');
  writeDirectlyWhileStarting(true);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the switch is read before anything heavier loads
    const agent = require('./agent.js') as typeof import('./agent.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- not loaded when switched off
    if (!agent.switchedOffByEnv() && (require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread) startAgent(agent);
  } catch (error) {
    reportStartFailure(error);
  } finally {
    writeDirectlyWhileStarting(false);
  }
}

function startAgent(agent: typeof import('./agent.js')): void {
  const { runtime } = agent.start();
  // Only a preloaded agent speaks about the app's entry point (programmatic starts have none).
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- only for a running agent
  if (runtime) (require('./instrument/esm.js') as typeof import('./instrument/esm.js')).announceCoverage(process.argv[1]);
}

function reportStartFailure(error: unknown): void {
  try {
    process.stderr.write(`[stepguard] error: failed to start, the app runs unprotected: ${error instanceof Error ? error.stack : String(error)}\n`);
  } catch {
    // nothing left to report to
  }
}
