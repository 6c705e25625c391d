/** Public functions: untrusted-input contexts outside HTTP, and the step-up API. */
import type { IncomingMessage } from 'node:http';
import { RequestContext } from './context/request-context.js';
import { currentContext, runInContext } from './context/store.js';
import { bindToRequest as bindToCurrentRequest } from './hook-kit.js';
import { DEFAULT_CONFIG } from './config.js';
import { getRuntime } from './runtime.js';
import { DEFAULT_ACR, type StepUpService } from './stepup/service.js';
import { AlreadyEnrolledError, enrollUser, isEnrolled } from './stepup/enrollment.js';
import { issueRecoveryCodes } from './stepup/recovery-codes.js';
import { ACR, methodsFor } from './stepup/tiers.js';
import { relyingParty, registrationTicket } from './stepup/verify-support.js';
import type { Identity } from './stepup/identity.js';
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



/**
 * Binds `fn` to the request being served now: wherever it is called later — by a hand-rolled job queue, an
 * event emitter, a timer that another request started — its sink calls are judged as this request's, with
 * this request's input, route and step-up grants. `this`, arguments, return value and `fn.length` are kept.
 * Outside a request it returns `fn` itself. This is what to do where the agent warns that a call "ran after
 * its request was answered" and names a library of the app's own that queues callbacks.
 */
export function bindToRequest<F extends (...args: never[]) => unknown>(fn: F): F {
  if (typeof fn !== 'function') throw new TypeError('stepguard.bindToRequest: expected a function');
  return bindToCurrentRequest(fn as unknown as AnyCallable) as unknown as F;
}
type AnyCallable = Parameters<typeof bindToCurrentRequest>[0];

/** The scope a re-enrollment must be stepped up for. */
export const ENROLL_SCOPE = 'stepguard.enroll';

function service(): StepUpService {
  const s = getRuntime()?.stepUp as StepUpService | undefined;
  if (!s) throw new Error('stepguard step-up is not running: start the app with --require stepguard/register');
  return s;
}

/** The current request of `userId` (for binding and fresh step-up checks); throws when there is none. */
function requestOf(s: StepUpService, userId: string, what: string): { ctx: RequestContext; identity: Identity } {
  const ctx = currentContext();
  if (!ctx) throw new Error(`${what} needs the user's request: call it while serving that user's request`);
  const identity = s.identityOf(ctx);
  if (!identity || identity.userId !== userId) throw new BlockedError(ENROLL_SCOPE, 'stepguard.enroll', ctx.req);
  return { ctx, identity };
}

/**
 * Changing the factors of an enrolled user (another passkey, new recovery codes, a new TOTP secret) needs a fresh
 * step-up by that user in this request: otherwise throws a StepUpRequiredError for scope `stepguard.enroll`.
 */
async function requireFreshStepUp(s: StepUpService, userId: string, what: string): Promise<void> {
  if (!(await isEnrolled(s.resources().store, userId))) return;
  const { ctx } = requestOf(s, userId, what);
  const verdict = s.demand(ctx, ENROLL_SCOPE, { acrValues: [ACR.otp], maxAge: 300 }, 'stepguard.enroll', newIncidentId());
  if (verdict) throw verdict.error;
}

type PasskeyModule = typeof import('./stepup/webauthn.js');
function passkeyModule(): PasskeyModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the WebAuthn library takes about a second to load: only when used
  return require('./stepup/webauthn.js') as PasskeyModule;
}

function rpFor(s: StepUpService, ctx: RequestContext | undefined) {
  const rp = relyingParty(s.shared, ctx);
  if (!rp) throw new Error('stepguard passkeys are not configured: set STEPGUARD_WEBAUTHN_RP_ID and STEPGUARD_WEBAUTHN_ORIGINS (README "Passkeys")');
  return rp;
}

/** Passkeys (WebAuthn) for apps with their own UI, or the agent's page. See README "Passkeys". */
const webauthn = {
  /**
   * Registration options for `navigator.credentials.create()` (JSON form), for the user of the current request.
   * A user who is already enrolled needs a fresh step-up first (StepUpRequiredError, scope `stepguard.enroll`).
   */
  async registrationOptions(userId: string): Promise<import('@simplewebauthn/server').PublicKeyCredentialCreationOptionsJSON> {
    const s = service();
    await requireFreshStepUp(s, userId, 'stepUp.webauthn.registrationOptions()');
    const { ctx } = requestOf(s, userId, 'stepUp.webauthn.registrationOptions()');
    return passkeyModule().registrationOptions(s.shared, rpFor(s, ctx), userId, s.shared.bindingOf(ctx));
  },

  /**
   * Verifies the browser's registration response (`credential.toJSON()`) and stores the passkey. Returns its id and,
   * for a user who had no recovery codes, ten fresh ones to show once. Throws a WebAuthnError when refused.
   */
  async verifyRegistration(userId: string, response: unknown): Promise<{ credentialId: string; recoveryCodes?: string[] }> {
    const s = service();
    await requireFreshStepUp(s, userId, 'stepUp.webauthn.verifyRegistration()');
    const { ctx } = requestOf(s, userId, 'stepUp.webauthn.verifyRegistration()');
    const credential = await passkeyModule().verifyRegistration(s.shared, rpFor(s, ctx), userId, s.shared.bindingOf(ctx), response);
    const { store, box } = s.resources();
    const recoveryCodes = (await store.recoveryCodesLeft(userId)) === 0 ? await issueRecoveryCodes(store, box, userId) : undefined;
    return recoveryCodes ? { credentialId: credential.id, recoveryCodes } : { credentialId: credential.id };
  },

  /**
   * Where to send the browser to add a passkey on the agent's page, then come back to `returnTo` (a same-origin
   * path). An enrolled user without a fresh step-up is sent to the verification page first, and from there back
   * to the current request's URL (call this again there).
   */
  async registrationPageUrl(userId: string, options: { returnTo?: string } = {}): Promise<string> {
    const s = service();
    const { ctx, identity } = requestOf(s, userId, 'stepUp.webauthn.registrationPageUrl()');
    const returnTo = options.returnTo ?? '/';
    const path = s.verifyPath;
    if ((await isEnrolled(s.resources().store, userId)) && !s.hasGrant(ctx, identity, ENROLL_SCOPE, [ACR.otp])) {
      const challenge = s.challenge(ctx, identity, ENROLL_SCOPE, [ACR.otp], 300);
      const back = typeof ctx.req.url === 'string' && ctx.req.url.startsWith('/') && !ctx.req.url.startsWith('//') ? ctx.req.url : '/';
      return `${path}?challenge_id=${encodeURIComponent(challenge.challengeId)}&return_to=${encodeURIComponent(back)}`;
    }
    return `${path}?register=${encodeURIComponent(registrationTicket(s.shared, userId, s.shared.bindingOf(ctx)))}&return_to=${encodeURIComponent(returnTo)}`;
  },

  /** The user's passkeys (public data: id, transports, created, synced or device-bound). */
  async credentials(userId: string): Promise<{ id: string; createdAt: number; deviceType: string; transports: readonly string[] }[]> {
    const list = await service().resources().store.credentials(userId);
    return list.map((c) => ({ id: c.id, createdAt: c.createdAt, deviceType: c.deviceType, transports: c.transports }));
  },
};

/** Recovery codes. See README "Recovery codes". */
const recoveryCodes = {
  /**
   * Ten new single-use codes replacing the old ones, to show once. An enrolled user needs a fresh step-up in the
   * current request (StepUpRequiredError for scope `stepguard.enroll` otherwise).
   */
  async generate(userId: string): Promise<string[]> {
    const s = service();
    await requireFreshStepUp(s, userId, 'stepUp.recoveryCodes.generate()');
    const { store, box } = s.resources();
    return issueRecoveryCodes(store, box, userId);
  },

  async remaining(userId: string): Promise<number> {
    return service().resources().store.recoveryCodesLeft(userId);
  },
};

/** Step-up for apps that manage enrollment in their own UI or render refusals themselves. */
export const stepUp = {
  /** Where clients POST `{ challenge_id, code }`. */
  get verifyPath(): string {
    return service().verifyPath;
  },

  webauthn,
  recoveryCodes,

  async isEnrolled(userId: string): Promise<boolean> {
    return isEnrolled(service().resources().store, userId);
  },

  /**
   * Enrolls `userId` and returns the secret and `otpauth://` URI to show once (as a QR code). Re-enrolling
   * an enrolled user (`replace: true`) needs a fresh step-up in the current request, by that same user:
   * otherwise this throws a StepUpRequiredError (answered with a challenge for scope `stepguard.enroll`).
   */
  async enroll(userId: string, options: { replace?: boolean } = {}): Promise<{ secret: string; uri: string; recoveryCodes?: string[] }> {
    const s = service();
    const { store, box } = s.resources();
    if (await isEnrolled(store, userId)) {
      // Already holding a TOTP factor: replacing it must be asked for. Holding only a passkey: adding TOTP is fine, after a fresh step-up.
      if (!options.replace && (await store.getFactor(userId)) !== undefined) throw new AlreadyEnrolledError(userId);
      const ctx = currentContext();
      if (!ctx) throw new Error('re-enrolling needs a fresh step-up: call stepUp.enroll() while serving that user\'s request');
      const identity = s.identityOf(ctx);
      if (!identity || identity.userId !== userId) throw new BlockedError(ENROLL_SCOPE, 'stepguard.enroll', ctx.req);
      const verdict = s.demand(ctx, ENROLL_SCOPE, { acrValues: [DEFAULT_ACR], maxAge: 300 }, 'stepguard.enroll', newIncidentId());
      if (verdict) throw verdict.error;
    }
    const enrolled = await enrollUser(store, box, userId, getRuntime()?.config.stepUp.issuer ?? 'stepguard', { replace: true });
    // A user's first factor comes with recovery codes, shown once (returned here only when issued now).
    if ((await store.recoveryCodesLeft(userId)) > 0) return enrolled;
    return { ...enrolled, recoveryCodes: await issueRecoveryCodes(store, box, userId) };
  },

  /**
   * The standard response for a refusal, for apps that run with STEPGUARD_RESPOND=app and render it
   * themselves: 401 challenge for StepUpRequiredError, 403 for BlockedError, undefined otherwise.
   */
  responseFor(error: unknown): StandardResponse | undefined {
    const incident = newIncidentId();
    if (error instanceof StepUpRequiredError) return challengeResponse(error, getRuntime()?.config.stepUp.verifyPath ?? '/.well-known/stepguard/step-up', incident, methodsFor(error.acrValues));
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
