import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Attributes } from '@opentelemetry/api';
import type { Config } from '../config.js';
import type { SinkEvent, Verdict } from '../events.js';
import type { RequestContext } from '../context/request-context.js';
import type { RuleMatch } from '../rules/engine.js';
import type { AgentEndpoints, StepUpGate } from '../runtime.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { BlockedError, StepUpRequiredError } from '../errors.js';
import { ATTR, SPAN_STEP_UP } from '../telemetry/attributes.js';
import { log, warnOnce, errorMessage } from '../log.js';
import { identify, sessionMaterial, type Identity } from './identity.js';
import { StoreUnavailableError, type StepUpStore } from './store.js';
import { epochSeconds, newTokenId, type TokenSigner } from './tokens.js';
import type { SecretBox } from './secret-box.js';
import { isEnrolled, secretFor } from './enrollment.js';
import { checkTotp } from './totp.js';
import {
  PROBLEM,
  authenticationRequiredResponse,
  challengeResponse,
  enrollmentRequiredResponse,
  payloadTooLargeResponse,
  refuse,
  stepUpUnavailableResponse,
  tooManyAttemptsResponse,
  verifyProblem,
  writeResponse,
  type StandardResponse,
} from '../enforce/index.js';

/** Grants travel in this header (comma-separated for several scopes) or in `sg_grant.<scope>` cookies. */
export const GRANT_HEADER = 'stepguard-grant';
export const GRANT_COOKIE_PREFIX = 'sg_grant.';
export const DEFAULT_ACR = 'urn:stepguard:acr:otp';
const MAX_VERIFY_BODY = 8 * 1024;
const MAX_CACHED_USERS = 10_000;
const IDENTITY = Symbol('stepguard.identity');
const BINDING = Symbol('stepguard.binding');
const GRANTS_USED = Symbol('stepguard.grants-used');

export interface StepUpServiceOptions {
  readonly config: Config;
  readonly signer: TokenSigner;
  readonly telemetry: Telemetry;
  /** Opened on first use, so an app that never steps up gets no store directory or key file. */
  readonly open: () => { store: StepUpStore; box: SecretBox };
}

type GrantCheck = { ok: true } | { ok: false; reason: string };

/**
 * Step-up at the sink (a rule's `step_up` action) and the verification endpoint the agent serves.
 * The sink-side decision is synchronous and stateless (signed tokens); everything that needs the store
 * (enrollment, codes, attempt counters) runs in the endpoint or after the operation was already refused.
 */
export class StepUpService implements StepUpGate, AgentEndpoints {
  private readonly knownAddresses = new Map<string, Set<string>>();
  private readonly settings: Config['stepUp'];
  private opened: { store: StepUpStore; box: SecretBox } | undefined;

  constructor(private readonly options: StepUpServiceOptions) {
    this.settings = options.config.stepUp;
  }

  /** The store and the secret box; throws StoreUnavailableError when they cannot be opened. */
  resources(): { store: StepUpStore; box: SecretBox } {
    if (!this.opened) {
      try {
        this.opened = this.options.open();
      } catch (error) {
        if (error instanceof StoreUnavailableError) throw error;
        throw new StoreUnavailableError(`stepguard: the step-up store cannot be opened: ${errorMessage(error)}`, { cause: error });
      }
    }
    return this.opened;
  }

  private get store(): StepUpStore {
    return this.resources().store;
  }

  async close(): Promise<void> {
    await this.opened?.store.close();
  }

  get verifyPath(): string {
    return this.settings.verifyPath;
  }

  identityOf(ctx: RequestContext): Identity | undefined {
    if (!ctx.slots.has(IDENTITY)) ctx.slots.set(IDENTITY, identify(ctx.req, this.options.config.identify));
    return ctx.slots.get(IDENTITY) as Identity | undefined;
  }

  userIdOf(ctx: RequestContext): string | undefined {
    return this.identityOf(ctx)?.userId;
  }

  private bindingOf(ctx: RequestContext): string {
    let binding = ctx.slots.get(BINDING) as string | undefined;
    if (binding === undefined) {
      binding = this.options.signer.bindingHash(sessionMaterial(ctx.req, this.settings.sessionCookies, GRANT_COOKIE_PREFIX));
      ctx.slots.set(BINDING, binding);
    }
    return binding;
  }

  // ---- sink side ---------------------------------------------------------------------------------------

  require(ctx: RequestContext, match: RuleMatch, event: SinkEvent, incidentId: string): Verdict {
    return this.demand(ctx, match.rule.meta.id, match.rule.stepUp ?? { acrValues: [DEFAULT_ACR], maxAge: 300 }, event.op, incidentId);
  }

  /**
   * `undefined` when the request holds a valid grant for `scope`; otherwise the error that refuses the
   * operation, with the matching response (challenge, enrollment needed, sign-in needed, unavailable).
   */
  demand(ctx: RequestContext, scope: string, requirement: { acrValues: readonly string[]; maxAge: number }, operation: string, incidentId: string): Verdict {
    const identity = this.identityOf(ctx);
    if (!identity) {
      this.event(ctx, 'refused', scope, { reason: 'no-identity' });
      this.answer(ctx, async () => authenticationRequiredResponse(incidentId));
      return { error: new BlockedError(scope, operation, ctx.req) };
    }
    const grant = this.findGrant(ctx, identity, scope);
    if (grant.ok) {
      const used = (ctx.slots.get(GRANTS_USED) as Set<string> | undefined) ?? new Set<string>();
      if (!used.has(scope)) {
        used.add(scope);
        ctx.slots.set(GRANTS_USED, used);
        this.event(ctx, 'grant_used', scope, {});
      }
      return undefined;
    }
    const error = this.challenge(ctx, identity, scope, requirement.acrValues, requirement.maxAge);
    this.event(ctx, 'challenge_issued', scope, { reason: grant.reason });
    this.answer(ctx, async () => {
      try {
        if (!(await isEnrolled(this.store, identity.userId))) {
          this.event(ctx, 'enrollment_required', scope, {});
          return enrollmentRequiredResponse(incidentId);
        }
      } catch (e) {
        this.event(ctx, 'unavailable', scope, { reason: errorMessage(e) });
        return stepUpUnavailableResponse(incidentId);
      }
      return challengeResponse(error, this.verifyPath, incidentId);
    });
    return { error };
  }

  /** Issues a challenge for `scope` (a rule id, or `stepguard.enroll`) bound to this user and session. */
  challenge(ctx: RequestContext, identity: Identity, scope: string, acrValues: readonly string[], maxAge: number): StepUpRequiredError {
    const challengeId = this.options.signer.sign({
      typ: 'challenge',
      sub: identity.userId,
      sid: this.bindingOf(ctx),
      rule: scope,
      acr: [...acrValues],
      max_age: maxAge,
      exp: epochSeconds() + this.settings.challengeTtlSeconds,
      jti: newTokenId(),
    });
    return new StepUpRequiredError({ ruleId: scope, acrValues, maxAge, challengeId }, ctx.req);
  }

  /** A valid grant for `scope` held by this user in this session, from the header or the scope's cookie. */
  findGrant(ctx: RequestContext, identity: Identity, scope: string): GrantCheck {
    const candidates = grantCandidates(ctx.req, scope);
    if (candidates.length === 0) return { ok: false, reason: 'no-grant' };
    let reason = 'invalid-grant';
    for (const token of candidates) {
      const result = this.options.signer.verify(token, 'grant');
      if (!result.ok) {
        reason = result.reason === 'expired' ? 'grant-expired' : 'grant-invalid';
        continue;
      }
      const claims = result.claims;
      if (claims.scope !== scope) reason = 'grant-other-scope';
      else if (claims.sub !== identity.userId) reason = 'grant-other-user';
      else if (!sameString(claims.sid, this.bindingOf(ctx))) reason = 'grant-other-session';
      else return { ok: true };
    }
    this.event(ctx, 'grant_rejected', scope, { reason });
    return { ok: false, reason };
  }

  isNewClientAddress(ctx: RequestContext): boolean | undefined {
    const user = this.userIdOf(ctx);
    const address = ctx.clientAddress;
    if (!user || !address) return undefined;
    const known = this.knownAddresses.get(user);
    if (known) return !known.has(address);
    // Not cached yet: load it for the next request and, meanwhile, treat the address as new (fail safe).
    Promise.resolve()
      .then(() => this.store.knownAddresses(user))
      .then(
      (list) => this.rememberAddresses(user, list),
      () => undefined,
    );
    return true;
  }

  private rememberAddresses(user: string, list: readonly string[]): void {
    if (this.knownAddresses.size >= MAX_CACHED_USERS) this.knownAddresses.delete(this.knownAddresses.keys().next().value as string);
    const set = this.knownAddresses.get(user) ?? new Set<string>();
    for (const a of list) set.add(a);
    this.knownAddresses.set(user, set);
  }

  /** Answers the refused request with `build()` unless the app renders refusals itself. */
  private answer(ctx: RequestContext, build: () => Promise<StandardResponse>): void {
    refuse(ctx, this.options.config.respond, build);
  }

  // ---- verification endpoint ---------------------------------------------------------------------------

  handles(ctx: RequestContext): boolean {
    // Every request passes here: a prefix test first, the exact path only for candidates.
    const url = ctx.req.url;
    return typeof url === 'string' && url.startsWith(this.verifyPath) && ctx.urlPath === this.verifyPath;
  }

  serve(ctx: RequestContext): void {
    const res = ctx.res;
    if (!res) return;
    if (ctx.method !== 'POST') {
      return writeResponse(res, verifyProblem(405, PROBLEM.badRequest, 'Method Not Allowed', 'POST a JSON body { "challenge_id": "…", "code": "123456" }.', { allow: 'POST' }));
    }
    readBody(ctx.req, MAX_VERIFY_BODY).then(
      (body) => this.verify(ctx, body).then((response) => writeResponse(res, response)),
      () => writeResponse(res, payloadTooLargeResponse(`The body must be JSON under ${MAX_VERIFY_BODY} bytes.`, PROBLEM.badRequest)),
    ).catch((error: unknown) => {
      if (error instanceof StoreUnavailableError) {
        this.event(ctx, 'unavailable', undefined, { reason: 'store' });
        return writeResponse(res, stepUpUnavailableResponse('0'));
      }
      log.error(`step-up verification failed unexpectedly: ${errorMessage(error)}`);
      writeResponse(res, verifyProblem(500, PROBLEM.unavailable, 'Internal Server Error', 'The verification could not be completed.'));
    });
  }

  private async verify(ctx: RequestContext, body: string): Promise<StandardResponse> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
    const input = parsed as { challenge_id?: unknown; code?: unknown } | undefined;
    if (!input || typeof input.challenge_id !== 'string' || typeof input.code !== 'string') {
      return verifyProblem(400, PROBLEM.badRequest, 'Bad Request', 'Send JSON { "challenge_id": "<from the 401 response>", "code": "<6 digits>" }.');
    }
    const challenge = this.options.signer.verify(input.challenge_id, 'challenge');
    if (!challenge.ok) {
      this.event(ctx, 'failed', undefined, { reason: `challenge-${challenge.reason}` });
      return verifyProblem(
        401,
        PROBLEM.invalidChallenge,
        'Invalid challenge',
        challenge.reason === 'expired' ? 'The challenge expired. Retry the operation to get a new one.' : 'The challenge is not valid. Retry the operation to get a new one.',
      );
    }
    const claims = challenge.claims;
    const userKey = `fail:user:${claims.sub}`;
    const clientKey = `fail:client:${ctx.clientAddress ?? 'unknown'}`;
    const { store, box } = this.resources();
    const s = this.settings;

    const locked = await this.lockout(userKey, clientKey);
    if (locked) {
      this.event(ctx, 'locked_out', claims.rule, { user: claims.sub });
      return tooManyAttemptsResponse(locked);
    }
    if (!sameString(claims.sid, this.bindingOf(ctx))) {
      // Counted against the client only: someone else's session must not be able to lock the user out.
      await this.fail(clientKey);
      this.event(ctx, 'failed', claims.rule, { reason: 'session-mismatch', user: claims.sub });
      return verifyProblem(403, PROBLEM.challengeMismatch, 'Challenge belongs to another session', 'This challenge was issued to another user or session.');
    }
    const secret = await secretFor(store, box, claims.sub);
    if (secret === undefined) {
      this.event(ctx, 'enrollment_required', claims.rule, { user: claims.sub });
      return enrollmentRequiredResponse('0');
    }
    const check = checkTotp(secret, input.code);
    if (!check.ok) return this.rejectCode(ctx, userKey, clientKey, claims.rule, claims.sub, check.reason);
    if (!(await store.acceptTimeStep(claims.sub, check.timeStep))) {
      return this.rejectCode(ctx, userKey, clientKey, claims.rule, claims.sub, 'replayed');
    }
    if (!(await store.consumeOnce(`challenge:${claims.jti}`, s.challengeTtlSeconds))) {
      this.event(ctx, 'failed', claims.rule, { reason: 'challenge-reused', user: claims.sub });
      return verifyProblem(401, PROBLEM.invalidChallenge, 'Invalid challenge', 'This challenge was already answered. Retry the operation to get a new one.');
    }
    await store.resetFailures(userKey);
    if (ctx.clientAddress) {
      await store.addKnownAddress(claims.sub, ctx.clientAddress);
      if (this.knownAddresses.has(claims.sub)) this.rememberAddresses(claims.sub, [ctx.clientAddress]);
    }
    const now = epochSeconds();
    const grant = this.options.signer.sign({
      typ: 'grant',
      sub: claims.sub,
      sid: claims.sid,
      scope: claims.rule,
      acr: claims.acr[0] ?? DEFAULT_ACR,
      amr: ['otp', 'mfa'],
      auth_time: now,
      exp: now + claims.max_age,
      jti: newTokenId(),
    });
    this.event(ctx, 'verified', claims.rule, { user: claims.sub });
    const secure = (ctx.req.socket as { encrypted?: boolean }).encrypted === true || ctx.req.headers['x-forwarded-proto'] === 'https';
    const cookie = `${GRANT_COOKIE_PREFIX}${claims.rule}=${grant}; Path=/; Max-Age=${claims.max_age}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
    return {
      status: 200,
      headers: { 'content-type': 'application/json', 'set-cookie': cookie },
      body: JSON.stringify({ grant, token_type: 'Stepguard-Grant', expires_in: claims.max_age, scope: claims.rule }),
    };
  }

  /** `undefined` when neither the user nor the client address is locked; else seconds until it unlocks. */
  private async lockout(userKey: string, clientKey: string): Promise<number | undefined> {
    const [user, client] = await Promise.all([this.store.failures(userKey), this.store.failures(clientKey)]);
    const s = this.settings;
    const waits: number[] = [];
    if (user.count >= s.maxAttemptsPerUser) waits.push(user.retryAfterSeconds);
    if (client.count >= s.maxAttemptsPerClient) waits.push(client.retryAfterSeconds);
    return waits.length > 0 ? Math.max(1, ...waits) : undefined;
  }

  private async fail(...keys: string[]): Promise<void> {
    const window = this.settings.lockoutSeconds;
    await Promise.all(keys.map((key) => this.store.recordFailure(key, window)));
  }

  private async rejectCode(ctx: RequestContext, userKey: string, clientKey: string, rule: string, user: string, reason: string): Promise<StandardResponse> {
    await this.fail(userKey, clientKey);
    this.event(ctx, 'failed', rule, { reason, user });
    const locked = await this.lockout(userKey, clientKey);
    if (locked) {
      this.event(ctx, 'locked_out', rule, { user });
      return tooManyAttemptsResponse(locked);
    }
    return verifyProblem(
      401,
      PROBLEM.invalidCode,
      'Invalid code',
      reason === 'replayed' ? 'This code was already used. Wait for the next code and try again.' : 'The code is not valid. Check your authenticator app and try again.',
    );
  }

  /** Step-up lifecycle as telemetry. Never carries a code, a secret, a challenge or a grant. */
  private event(ctx: RequestContext, name: string, rule: string | undefined, extra: { reason?: string; user?: string }): void {
    const attributes: Attributes = {
      [ATTR.STEP_UP_EVENT]: name,
      [ATTR.HTTP_METHOD]: ctx.method ?? '_OTHER',
      [ATTR.URL_PATH]: ctx.urlPath,
    };
    if (rule) {
      attributes[ATTR.STEP_UP_RULE] = rule;
      attributes[ATTR.RULE_NAME] = rule;
    }
    if (extra.reason) attributes[ATTR.STEP_UP_REASON] = extra.reason;
    const user = extra.user ?? (ctx.urlPath === this.verifyPath ? undefined : this.userIdOf(ctx));
    if (user) attributes[ATTR.USER_ID] = user;
    if (ctx.clientAddress) attributes[ATTR.CLIENT_ADDRESS] = ctx.clientAddress;
    const failed = name === 'failed' || name === 'locked_out' || name === 'unavailable' || name === 'refused';
    this.options.telemetry.span(SPAN_STEP_UP, attributes, failed ? { message: name } : undefined);
    if (this.options.config.logFindings && name !== 'grant_used') {
      log.info(`step-up ${name}${rule ? ` rule=${rule}` : ''}${user ? ` user=${user}` : ''}${extra.reason ? ` reason=${extra.reason}` : ''}`);
    }
  }
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function grantCandidates(req: IncomingMessage, scope: string): string[] {
  const out: string[] = [];
  const header = req.headers[GRANT_HEADER];
  for (const value of Array.isArray(header) ? header : header ? [header] : []) {
    for (const token of value.split(',')) if (token.trim()) out.push(token.trim());
  }
  const cookie = req.headers.cookie;
  if (typeof cookie === 'string') {
    const name = `${GRANT_COOKIE_PREFIX}${scope}=`;
    for (const part of cookie.split(';')) {
      const p = part.trim();
      if (p.startsWith(name)) out.push(p.slice(name.length));
    }
  }
  return out.slice(0, 8);
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

