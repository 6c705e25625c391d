import type { IncomingMessage } from 'node:http';
import type { SinkEvent, Verdict } from '../events.js';
import type { RequestContext } from '../context/request-context.js';
import type { RuleMatch } from '../rules/engine.js';
import { BlockedError, StepUpRequiredError } from '../errors.js';
import { errorMessage } from '../log.js';
import { authenticationRequiredResponse, challengeResponse, enrollmentRequiredResponse, refuse, stepUpUnavailableResponse, type StandardResponse } from '../enforce/index.js';
import type { Identity } from './identity.js';
import { epochSeconds, newTokenId } from './tokens.js';
import { enrolledMethods } from './enrollment.js';
import { methodsFor, tierSatisfies } from './tiers.js';
import { DEFAULT_ACR, GRANT_COOKIE_PREFIX, GRANT_HEADER, sameString, type StepUpState } from './state.js';

const GRANTS_USED = Symbol('stepguard.grants-used');

type GrantCheck = { ok: true } | { ok: false; reason: string };

/**
 * Step-up at the sink (a rule's `step_up` action). The decision is synchronous and stateless (signed
 * tokens); what needs the store (is the user enrolled?) only shapes the answer of a request already refused.
 */
export class StepUpSinkGate {
  constructor(private readonly state: StepUpState) {}

  require(ctx: RequestContext, match: RuleMatch, event: SinkEvent, incidentId: string): Verdict {
    const requirement = match.rule.stepUp ?? { acrValues: [DEFAULT_ACR], maxAge: 300 };
    // Adaptive rules ask for the method tier their risk level maps to (`acr_values: { medium: [otp], high: [phr] }`).
    const byLevel = match.risk ? requirement.acrByLevel?.[match.risk.level] : undefined;
    return this.demand(ctx, match.rule.meta.id, byLevel ? { acrValues: byLevel, maxAge: requirement.maxAge } : requirement, event.op, incidentId);
  }

  /**
   * `undefined` when the request holds a valid grant for `scope`; otherwise the error that refuses the
   * operation, with the matching response (challenge, enrollment needed, sign-in needed, unavailable).
   */
  demand(ctx: RequestContext, scope: string, requirement: { acrValues: readonly string[]; maxAge: number }, operation: string, incidentId: string): Verdict {
    const state = this.state;
    const identity = state.identityOf(ctx);
    if (!identity) {
      state.event(ctx, 'refused', scope, { reason: 'no-identity' });
      this.answer(ctx, async () => authenticationRequiredResponse(incidentId));
      return { error: new BlockedError(scope, operation, ctx.req) };
    }
    const grant = this.findGrant(ctx, identity, scope, requirement.acrValues);
    if (grant.ok) {
      const used = (ctx.slots.get(GRANTS_USED) as Set<string> | undefined) ?? new Set<string>();
      if (!used.has(scope)) {
        used.add(scope);
        ctx.slots.set(GRANTS_USED, used);
        state.event(ctx, 'grant_used', scope, {});
      }
      return undefined;
    }
    const error = this.challenge(ctx, identity, scope, requirement.acrValues, requirement.maxAge);
    state.event(ctx, 'challenge_issued', scope, { reason: grant.reason });
    this.answer(ctx, async () => {
      const methods = methodsFor(requirement.acrValues);
      try {
        // Enrolled means: holds a method that can answer this tier (a TOTP-only user facing a passkey rule is not).
        const has = await enrolledMethods(state.store, identity.userId);
        if (!methods.some((m) => has.has(m))) {
          state.event(ctx, 'enrollment_required', scope, {});
          return enrollmentRequiredResponse(incidentId);
        }
      } catch (e) {
        state.event(ctx, 'unavailable', scope, { reason: errorMessage(e) });
        return stepUpUnavailableResponse(incidentId);
      }
      return challengeResponse(error, state.verifyPath, incidentId, methods);
    });
    return { error };
  }

  /** Issues a challenge for `scope` (a rule id, or `stepguard.enroll`) bound to this user and session. */
  challenge(ctx: RequestContext, identity: Identity, scope: string, acrValues: readonly string[], maxAge: number): StepUpRequiredError {
    const challengeId = this.state.signer.sign({
      typ: 'challenge',
      sub: identity.userId,
      sid: this.state.bindingOf(ctx),
      rule: scope,
      acr: [...acrValues],
      max_age: maxAge,
      exp: epochSeconds() + this.state.settings.challengeTtlSeconds,
      jti: newTokenId(),
    });
    return new StepUpRequiredError({ ruleId: scope, acrValues, maxAge, challengeId }, ctx.req);
  }

  /**
   * A valid grant for `scope` held by this user in this session, from the header or the scope's cookie, at a tier
   * that satisfies `acrValues` (an OTP grant never passes for a passkey rule).
   */
  findGrant(ctx: RequestContext, identity: Identity, scope: string, acrValues: readonly string[]): GrantCheck {
    const candidates = grantCandidates(ctx.req, scope);
    if (candidates.length === 0) return { ok: false, reason: 'no-grant' };
    let reason = 'invalid-grant';
    for (const token of candidates) {
      const result = this.state.signer.verify(token, 'grant');
      if (!result.ok) {
        reason = result.reason === 'expired' ? 'grant-expired' : 'grant-invalid';
        continue;
      }
      const claims = result.claims;
      if (claims.scope !== scope) reason = 'grant-other-scope';
      else if (claims.sub !== identity.userId) reason = 'grant-other-user';
      else if (!sameString(claims.sid, this.state.bindingOf(ctx))) reason = 'grant-other-session';
      else if (!tierSatisfies(claims.acr, acrValues)) reason = 'grant-insufficient-tier';
      else return { ok: true };
    }
    this.state.event(ctx, 'grant_rejected', scope, { reason });
    return { ok: false, reason };
  }

  /** Answers the refused request with `build()` unless the app renders refusals itself. */
  private answer(ctx: RequestContext, build: () => Promise<StandardResponse>): void {
    refuse(ctx, this.state.options.config.respond, build);
  }
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
