/** Public functions: untrusted-input contexts outside HTTP, and the step-up API. */
import type { IncomingMessage } from 'node:http';
import { RequestContext } from './context/request-context.js';
import { currentContext, runInContext } from './context/store.js';
import { DEFAULT_CONFIG } from './config.js';
import { getRuntime } from './runtime.js';
import { DEFAULT_ACR, type StepUpService } from './stepup/service.js';
import { AlreadyEnrolledError, enrollUser, isEnrolled } from './stepup/enrollment.js';
import { BlockedError, StepUpRequiredError } from './errors.js';
import { challengeResponse, forbiddenResponse, newIncidentId, type StandardResponse } from './enforce/index.js';

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



/** The scope a re-enrollment must be stepped up for. */
export const ENROLL_SCOPE = 'stepguard.enroll';

function service(): StepUpService {
  const s = getRuntime()?.stepUp as StepUpService | undefined;
  if (!s) throw new Error('stepguard step-up is not running: start the app with --require stepguard/register');
  return s;
}

/** Step-up for apps that manage enrollment in their own UI or render refusals themselves. */
export const stepUp = {
  /** Where clients POST `{ challenge_id, code }`. */
  get verifyPath(): string {
    return service().verifyPath;
  },

  async isEnrolled(userId: string): Promise<boolean> {
    return isEnrolled(service().resources().store, userId);
  },

  /**
   * Enrolls `userId` and returns the secret and `otpauth://` URI to show once (as a QR code). Re-enrolling
   * an enrolled user (`replace: true`) needs a fresh step-up in the current request, by that same user:
   * otherwise this throws a StepUpRequiredError (answered with a challenge for scope `stepguard.enroll`).
   */
  async enroll(userId: string, options: { replace?: boolean } = {}): Promise<{ secret: string; uri: string }> {
    const s = service();
    const { store, box } = s.resources();
    if (await isEnrolled(store, userId)) {
      if (!options.replace) throw new AlreadyEnrolledError(userId);
      const ctx = currentContext();
      if (!ctx) throw new Error('re-enrolling needs a fresh step-up: call stepUp.enroll() while serving that user\'s request');
      const identity = s.identityOf(ctx);
      if (!identity || identity.userId !== userId) throw new BlockedError(ENROLL_SCOPE, 'stepguard.enroll', ctx.req);
      const verdict = s.demand(ctx, ENROLL_SCOPE, { acrValues: [DEFAULT_ACR], maxAge: 300 }, 'stepguard.enroll', newIncidentId());
      if (verdict) throw verdict.error;
    }
    return enrollUser(store, box, userId, getRuntime()?.config.stepUp.issuer ?? 'stepguard', { replace: true });
  },

  /**
   * The standard response for a refusal, for apps that run with STEPGUARD_RESPOND=app and render it
   * themselves: 401 challenge for StepUpRequiredError, 403 for BlockedError, undefined otherwise.
   */
  responseFor(error: unknown): StandardResponse | undefined {
    const incident = newIncidentId();
    if (error instanceof StepUpRequiredError) return challengeResponse(error, getRuntime()?.config.stepUp.verifyPath ?? '/.well-known/stepguard/step-up', incident);
    if (error instanceof BlockedError) return forbiddenResponse(incident);
    return undefined;
  },
};

/** Adaptive step-up administration: flagged accounts and vulnerable routes (the running agent's risk store). */
export const risk = {
  async listFlags(): Promise<import('./risk/store.js').FlagRecord[]> {
    return riskStore().listFlags();
  },
  async showFlag(user: string): Promise<import('./risk/store.js').FlagRecord | undefined> {
    return (await import('./risk/admin.js')).showFlag(riskStore(), user);
  },
  async clearFlag(user: string): Promise<boolean> {
    return (await import('./risk/admin.js')).clearFlag(riskStore(), user);
  },
  async vulnerableRoutes(): Promise<{ path: string; entries: string[] }[]> {
    return riskStore().listVulnerableRoutes();
  },
  async resolveRoute(path: string): Promise<boolean> {
    return (await import('./risk/admin.js')).resolveRoute(riskStore(), path);
  },
};

function riskStore(): import('./risk/store.js').RiskStore {
  const r = getRuntime()?.risk;
  if (!r) throw new Error('stepguard adaptive step-up is not running: no rule uses risk signals, flag or login (or the agent is not started)');
  return r.store;
}
