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
  if (switchedOff(process.env)) sayOff(process.env);
  else start();
}

/**
 * The same words as `switchedOffByEnv` in agent.ts (test/e2e/switches.test.ts holds the two to one table), read
 * here so that a switched-off agent loads this one file: resolving a second file of ours is what made V8 compile
 * Node's module-path helpers at start, mapping about 2.8 MiB of its compiler's code on Node 24 (README,
 * Performance).
 */
function switchedOff(env: NodeJS.ProcessEnv): boolean {
  return /^(0|false|no|off)$/i.test(env.STEPGUARD_ENABLED?.trim() ?? '');
}

/** The line `switchedOffByEnv` prints, at info level: not with STEPGUARD_LOG_LEVEL warn, error or silent. */
function sayOff(env: NodeJS.ProcessEnv): void {
  const level = env.STEPGUARD_LOG_LEVEL?.trim().toLowerCase();
  if (level === 'warn' || level === 'error' || level === 'silent') return;
  try {
    // `fs` is part of Node's start either way; file descriptor 2 directly, as the logger does while starting.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a builtin already loaded
    (require('node:fs') as typeof import('node:fs')).writeSync(2, '[stepguard] disabled by STEPGUARD_ENABLED=false; nothing is inspected\n');
  } catch {
    // stderr closed: nothing to tell
  }
}

function start(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the logger is the first thing loaded either way
  const { writeDirectlyWhileStarting } = require('./log.js') as typeof import('./log.js');
  writeDirectlyWhileStarting(true);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only for an agent that is switched on
    const agent = require('./agent.js') as typeof import('./agent.js');
    if (ownsTheProcess()) startAgent(agent);
  } catch (error) {
    reportStartFailure(error);
  } finally {
    writeDirectlyWhileStarting(false);
  }
}

/**
 * Whether this is the main thread. In every thread that does not own the process (workers, the module loader's
 * thread) Node replaces `process.chdir` with a stub marked `disabled`, and at preload no app code has replaced it
 * yet. Reading that mark keeps the start from loading `worker_threads` and what it pulls in beyond the stream
 * modules `net` loads anyway (about 0.4 MiB of peak RSS on Node 24: README, Performance). Where the mark is missing or `process.chdir` is not
 * the usual function, `worker_threads` decides.
 */
function ownsTheProcess(): boolean {
  const chdir = process.chdir as ((directory: string) => void) & { disabled?: unknown };
  if (typeof chdir === 'function' && chdir.disabled === true) return false;
  if (typeof chdir === 'function' && chdir.name === 'wrappedChdir') return true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- only where the mark cannot tell
  return (require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread;
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
