import type { RequestContext } from '../context/request-context.js';
import { PROBLEM, tooManyAttemptsResponse, verifyProblem, type StandardResponse } from '../enforce/index.js';
import { issueGrant } from './grant.js';
import { Lockout, lockoutKeys } from './lockout.js';
import { consumeRecoveryCode } from './recovery-codes.js';
import type { StepUpState } from './state.js';
import { AMR_RECOVERY_CODE, METHOD_TIER, tierSatisfies } from './tiers.js';
import { checkChallenge, methodNotAllowed } from './verify-support.js';

/**
 * Answering a challenge with a recovery code: only where the requested tier accepts it (the OTP tier; never a
 * passkey rule), counted by the same lockout as codes, and each code works once (the store's atomic consume).
 */
export class RecoveryVerifier {
  private readonly lockout: Lockout;

  constructor(private readonly state: StepUpState) {
    this.lockout = new Lockout(() => state.store, state.settings);
  }

  async verify(ctx: RequestContext, challengeId: unknown, code: unknown): Promise<StandardResponse> {
    const state = this.state;
    const checked = checkChallenge(state, ctx, challengeId);
    if (!checked.ok) return checked.response;
    const claims = checked.claims;
    if (typeof code !== 'string') return verifyProblem(400, PROBLEM.badRequest, 'Bad Request', 'Send JSON { "challenge_id": "…", "recovery_code": "XXXXX-XXXXX" }.');
    if (!tierSatisfies(METHOD_TIER.recovery_code, claims.acr)) return methodNotAllowed('A recovery code cannot answer this challenge: it needs a passkey.');
    const keys = lockoutKeys(claims.sub, ctx.clientAddress);
    // Counted before the answer is checked, like a code (lockout.ts): parallel answers cannot exceed the limit.
    const reserved = await this.lockout.reserve(keys);
    if (!reserved.allowed) {
      state.event(ctx, 'locked_out', claims.rule, { user: claims.sub });
      return tooManyAttemptsResponse(reserved.retryAfterSeconds);
    }
    const { store, box } = state.resources();
    if (!(await consumeRecoveryCode(store, box, claims.sub, code))) {
      const nowLocked = await this.lockout.failed(keys);
      state.event(ctx, 'failed', claims.rule, { reason: 'recovery-code', user: claims.sub });
      if (nowLocked) return tooManyAttemptsResponse(nowLocked);
      return verifyProblem(401, PROBLEM.invalidCode, 'Invalid code', 'This recovery code is not valid or was already used.');
    }
    return issueGrant(state, ctx, this.lockout, keys, claims, { acr: METHOD_TIER.recovery_code, amr: [AMR_RECOVERY_CODE], method: 'recovery_code' });
  }
}
