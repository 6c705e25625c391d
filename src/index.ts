/** Public API. Most apps need none of it: `node --require stepguard/register app.js` is enough. */
export { BlockedError, StepUpRequiredError, StepUpUnavailableError, isBlockedError, isStepUpRequiredError, BLOCKED_CODE, STEP_UP_CODE } from './errors.js';
export { start } from './agent.js';
export type { Config } from './config.js';
export type { SinkEvent, Verdict, UserInput } from './events.js';
export type { Finding } from './detectors/types.js';

import type { IncomingMessage } from 'node:http';
import { RequestContext } from './context/request-context.js';
import { runInContext } from './context/store.js';
import { DEFAULT_CONFIG } from './config.js';
import { getRuntime } from './runtime.js';

/** Untrusted input for work that does not arrive over HTTP (queue consumers, jobs, tests). */
export interface UntrustedInput {
  readonly method?: string;
  readonly url?: string;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  readonly query?: unknown;
  readonly params?: unknown;
  readonly cookies?: unknown;
  readonly clientAddress?: string;
}

/**
 * Runs `fn` as if it were serving a request carrying `input`: every sink it reaches is judged against
 * that input, exactly as for an HTTP request.
 */
export function runWithContext<R>(input: UntrustedInput, fn: () => R): R {
  const req = {
    method: input.method ?? 'GET',
    url: input.url ?? '/',
    headers: input.headers ?? {},
    body: input.body,
    query: input.query,
    params: input.params,
    cookies: input.cookies,
    socket: { remoteAddress: input.clientAddress },
  } as unknown as IncomingMessage;
  const limits = getRuntime()?.config ?? DEFAULT_CONFIG;
  return runInContext(new RequestContext(req, undefined, limits), fn);
}
