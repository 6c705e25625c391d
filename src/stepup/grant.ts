/**
 * Turning an answered challenge into a grant, for the methods served outside the OTP endpoint (passkeys,
 * recovery codes): the method's reserved attempt is given back, the challenge consumed once, the address remembered, then the grant
 * is signed with the tier and `amr` the method earned, and set as the scope's cookie.
 */
import type { RequestContext } from '../context/request-context.js';
import { grantResponse, verifyProblem, PROBLEM, type StandardResponse } from '../enforce/index.js';
import type { Lockout, LockoutKeys } from './lockout.js';
import { epochSeconds, newTokenId, type ChallengeClaims } from './tokens.js';
import { GRANT_COOKIE_PREFIX, type StepUpState } from './state.js';

export async function issueGrant(
  state: StepUpState,
  ctx: RequestContext,
  lockout: Lockout,
  keys: LockoutKeys,
  claims: ChallengeClaims,
  earned: { acr: string; amr: string[]; method: string },
): Promise<StandardResponse> {
  await lockout.release(keys);
  if (!(await state.store.consumeOnce(`challenge:${claims.jti}`, state.settings.challengeTtlSeconds))) {
    state.event(ctx, 'failed', claims.rule, { reason: 'challenge-reused', user: claims.sub });
    return verifyProblem(401, PROBLEM.invalidChallenge, 'Invalid challenge', 'This challenge was already answered. Retry the operation to get a new one.');
  }
  if (ctx.clientAddress) await state.addKnownAddress(claims.sub, ctx.clientAddress);
  const now = epochSeconds();
  const grant = state.signer.sign({
    typ: 'grant',
    sub: claims.sub,
    sid: claims.sid,
    scope: claims.rule,
    acr: earned.acr,
    amr: earned.amr,
    auth_time: now,
    exp: now + claims.max_age,
    jti: newTokenId(),
  });
  state.event(ctx, 'verified', claims.rule, { user: claims.sub, reason: earned.method });
  const cookie = grantCookie(ctx, claims.rule, grant, claims.max_age);
  // The device is trusted from now on, whatever the method; a store failure only costs the device cookie, never the grant.
  const device = state.onVerified ? await state.onVerified(ctx, claims.sub).catch(() => undefined) : undefined;
  return grantResponse(grant, claims.rule, claims.max_age, device ? [cookie, device] : cookie);
}

export function isSecureRequest(ctx: RequestContext): boolean {
  return (ctx.req.socket as { encrypted?: boolean } | undefined)?.encrypted === true || ctx.req.headers['x-forwarded-proto'] === 'https';
}

export function grantCookie(ctx: RequestContext, scope: string, grant: string, maxAge: number): string {
  return `${GRANT_COOKIE_PREFIX}${scope}=${grant}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${isSecureRequest(ctx) ? '; Secure' : ''}`;
}
