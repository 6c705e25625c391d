import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../context/request-context.js';
import { log, errorMessage } from '../log.js';
import {
  PROBLEM,
  enrollmentRequiredResponse,
  grantResponse,
  payloadTooLargeResponse,
  stepUpUnavailableResponse,
  tooManyAttemptsResponse,
  verifyProblem,
  writeResponse,
  type StandardResponse,
} from '../enforce/index.js';
import { StoreUnavailableError } from './store.js';
import { epochSeconds, newTokenId } from './tokens.js';
import { secretFor } from './enrollment.js';
import { checkTotp } from './totp.js';
import { Lockout, lockoutKeys, type LockoutKeys } from './lockout.js';
import { DEFAULT_ACR, GRANT_COOKIE_PREFIX, sameString, type StepUpState } from './state.js';

const MAX_VERIFY_BODY = 8 * 1024;

/**
 * The verification endpoint the agent serves (POST `{ challenge_id, code }` → grant): checks the signed
 * challenge, the lockout, the session binding and the TOTP code (single use), then signs a grant.
 */
export class VerifyEndpoint {
  private readonly lockout: Lockout;

  constructor(private readonly state: StepUpState) {
    this.lockout = new Lockout(() => state.store, state.settings);
  }

  handles(ctx: RequestContext): boolean {
    // Every request passes here: a prefix test first, the exact path only for candidates.
    const url = ctx.req.url;
    const path = this.state.verifyPath;
    return typeof url === 'string' && url.startsWith(path) && ctx.urlPath === path;
  }

  serve(ctx: RequestContext): void {
    const res = ctx.res;
    if (!res) return;
    if (ctx.method !== 'POST') {
      return writeResponse(res, verifyProblem(405, PROBLEM.badRequest, 'Method Not Allowed', 'POST a JSON body { "challenge_id": "…", "code": "123456" }.', { allow: 'POST' }));
    }
    readBody(ctx.req, MAX_VERIFY_BODY)
      .then(
        (body) => this.verify(ctx, body).then((response) => writeResponse(res, response)),
        () => writeResponse(res, payloadTooLargeResponse(`The body must be JSON under ${MAX_VERIFY_BODY} bytes.`, PROBLEM.badRequest)),
      )
      .catch((error: unknown) => {
        if (error instanceof StoreUnavailableError) {
          this.state.event(ctx, 'unavailable', undefined, { reason: 'store' });
          return writeResponse(res, stepUpUnavailableResponse('0'));
        }
        log.error(`step-up verification failed unexpectedly: ${errorMessage(error)}`);
        writeResponse(res, verifyProblem(500, PROBLEM.unavailable, 'Internal Server Error', 'The verification could not be completed.'));
      });
  }

  private async verify(ctx: RequestContext, body: string): Promise<StandardResponse> {
    const state = this.state;
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
    const challenge = state.signer.verify(input.challenge_id, 'challenge');
    if (!challenge.ok) {
      state.event(ctx, 'failed', undefined, { reason: `challenge-${challenge.reason}` });
      return verifyProblem(
        401,
        PROBLEM.invalidChallenge,
        'Invalid challenge',
        challenge.reason === 'expired' ? 'The challenge expired. Retry the operation to get a new one.' : 'The challenge is not valid. Retry the operation to get a new one.',
      );
    }
    const claims = challenge.claims;
    const keys = lockoutKeys(claims.sub, ctx.clientAddress);
    const { store, box } = state.resources();

    const locked = await this.lockout.retryAfter(keys);
    if (locked) {
      state.event(ctx, 'locked_out', claims.rule, { user: claims.sub });
      return tooManyAttemptsResponse(locked);
    }
    if (!sameString(claims.sid, state.bindingOf(ctx))) {
      // Counted against the client only: someone else's session must not be able to lock the user out.
      await this.lockout.fail(keys.client);
      state.event(ctx, 'failed', claims.rule, { reason: 'session-mismatch', user: claims.sub });
      return verifyProblem(403, PROBLEM.challengeMismatch, 'Challenge belongs to another session', 'This challenge was issued to another user or session.');
    }
    if (!claims.acr.includes(DEFAULT_ACR)) {
      // The challenge asks for a stronger method tier (adaptive step-up at high risk, e.g. phr): a TOTP code never satisfies it.
      state.event(ctx, 'failed', claims.rule, { reason: 'method-not-accepted', user: claims.sub });
      return verifyProblem(403, PROBLEM.challengeMismatch, 'Stronger verification required', `This operation needs ${claims.acr.join(' ')}; a one-time password is not accepted for it.`);
    }
    const secret = await secretFor(store, box, claims.sub);
    if (secret === undefined) {
      state.event(ctx, 'enrollment_required', claims.rule, { user: claims.sub });
      return enrollmentRequiredResponse('0');
    }
    const check = checkTotp(secret, input.code);
    if (!check.ok) return this.rejectCode(ctx, keys, claims.rule, claims.sub, check.reason);
    if (!(await store.acceptTimeStep(claims.sub, check.timeStep))) return this.rejectCode(ctx, keys, claims.rule, claims.sub, 'replayed');
    if (!(await store.consumeOnce(`challenge:${claims.jti}`, state.settings.challengeTtlSeconds))) {
      state.event(ctx, 'failed', claims.rule, { reason: 'challenge-reused', user: claims.sub });
      return verifyProblem(401, PROBLEM.invalidChallenge, 'Invalid challenge', 'This challenge was already answered. Retry the operation to get a new one.');
    }
    await this.lockout.succeeded(keys);
    if (ctx.clientAddress) await state.addKnownAddress(claims.sub, ctx.clientAddress);
    const now = epochSeconds();
    const grant = state.signer.sign({
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
    state.event(ctx, 'verified', claims.rule, { user: claims.sub });
    const secure = (ctx.req.socket as { encrypted?: boolean }).encrypted === true || ctx.req.headers['x-forwarded-proto'] === 'https';
    const cookie = `${GRANT_COOKIE_PREFIX}${claims.rule}=${grant}; Path=/; Max-Age=${claims.max_age}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
    // The device is trusted from now on; a store failure only costs the device cookie, never the grant.
    const device = state.onVerified ? await state.onVerified(ctx, claims.sub).catch(() => undefined) : undefined;
    return grantResponse(grant, claims.rule, claims.max_age, device ? [cookie, device] : cookie);
  }

  private async rejectCode(ctx: RequestContext, keys: LockoutKeys, rule: string, user: string, reason: string): Promise<StandardResponse> {
    await this.lockout.fail(keys.user, keys.client);
    this.state.event(ctx, 'failed', rule, { reason, user });
    const locked = await this.lockout.retryAfter(keys);
    if (locked) {
      this.state.event(ctx, 'locked_out', rule, { user });
      return tooManyAttemptsResponse(locked);
    }
    return verifyProblem(
      401,
      PROBLEM.invalidCode,
      'Invalid code',
      reason === 'replayed' ? 'This code was already used. Wait for the next code and try again.' : 'The code is not valid. Check your authenticator app and try again.',
    );
  }
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
