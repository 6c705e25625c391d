/**
 * The compiled agent, started inside the test process (hook tests): block mode, no telemetry, no finding
 * logs, shipped rules only. Drivers must be required after this, so require-in-the-middle patches them.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export interface InProcessAgent {
  runWithContext<R>(input: object, fn: () => R): R;
  isWrapped(fn: unknown): boolean;
  originalOf<F>(fn: F): F;
}

export function startAgentInProcess(env: NodeJS.ProcessEnv = {}): InProcessAgent {
  const agent = require('../../dist/src/agent.js') as { start(env: NodeJS.ProcessEnv): unknown };
  agent.start({ ...process.env, STEPGUARD_MODE: 'block', STEPGUARD_TELEMETRY: 'false', STEPGUARD_LOG_FINDINGS: 'false', STEPGUARD_RULES: '', ...env });
  const { runWithContext } = require('../../dist/src/index.js') as Pick<InProcessAgent, 'runWithContext'>;
  const { isWrapped, originalOf } = require('../../dist/src/instrument/wrap.js') as Pick<InProcessAgent, 'isWrapped' | 'originalOf'>;
  return { runWithContext, isWrapped, originalOf };
}
