import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../context/request-context.js';
import { log, errorMessage, warnOnce } from '../log.js';
import {
  PROBLEM,
  enrollmentRequiredResponse,
  payloadTooLargeResponse,
  stepUpUnavailableResponse,
  tooManyAttemptsResponse,
  verifyProblem,
  writeResponse,
  type StandardResponse,
} from '../enforce/index.js';
import { StoreUnavailableError } from './store.js';
import { SecretBoxError } from './secret-box.js';
import { checkJsonVerificationRequest } from './verify-request.js';
import { secretFor } from './enrollment.js';
import { checkTotp } from './totp.js';
import { Lockout, lockoutKeys, type LockoutKeys } from './lockout.js';
import { sameString, type StepUpState } from './state.js';
import { ACR, tierSatisfies } from './tiers.js';
import { issueGrant } from './grant.js';
import { methodNotAllowed } from './verify-support.js';
import { VerificationPage } from './page.js';

const MAX_VERIFY_BODY = 8 * 1024;
const MAX_DRAIN = 1024 * 1024;

/**
 * The verification endpoint the agent serves (POST `{ challenge_id, code }` → grant): checks the signed
 * challenge, the lockout, the session binding and the TOTP code (single use), then signs a grant.
 */
export class VerifyEndpoint {
  private readonly lockout: Lockout;
  /** The HTML page, its assets and the passkey / recovery-code routes (page.ts). */
  private readonly page: VerificationPage;

  constructor(private readonly state: StepUpState) {
    this.lockout = new Lockout(() => state.store, state.settings);
    this.page = new VerificationPage(state, (ctx, body) => this.verify(ctx, body));
  }

  handles(ctx: RequestContext): boolean {
    // Every request passes here: a prefix test first, the exact path only for candidates.
    const url = ctx.req.url;
    const path = this.state.verifyPath;
    return typeof url === 'string' && url.startsWith(path) && (ctx.urlPath === path || this.page.handlesSubpath(ctx.urlPath));
  }

  serve(ctx: RequestContext): void {
    const res = ctx.res;
    if (!res) return;
    if (this.page.takes(ctx)) return this.page.serve(ctx);
    if (ctx.method !== 'POST') {
      return writeResponse(res, verifyProblem(405, PROBLEM.badRequest, 'Method Not Allowed', 'POST a JSON body { "challenge_id": "…", "code": "123456" }.', { allow: 'POST' }));
    }
    const refused = checkJsonVerificationRequest(ctx.req);
    if (refused) {
      this.state.event(ctx, 'failed', undefined, { reason: refused.reason });
      return writeResponse(res, refused.response);
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
        if (error instanceof SecretBoxError) {
          // Another instance's key sealed this secret (STEPGUARD_SECRET differs): a deployment fault, not the user's.
          warnOnce(`secret-box:${error.sealedKeyId ?? 'unknown'}`, `step-up unavailable: ${error.message}`);
          this.state.event(ctx, 'unavailable', undefined, { reason: 'secret-key' });
          return writeResponse(res, stepUpUnavailableResponse('0'));
        }
        log.error(`step-up verification failed unexpectedly: ${errorMessage(error)}`);
        writeResponse(res, verifyProblem(500, PROBLEM.unavailable, 'Internal Server Error', 'The verification could not be completed.'));
      });
  }

  /** The OTP verification of a JSON body; also used by the page's code form. */
  async verify(ctx: RequestContext, body: string): Promise<StandardResponse> {
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

    if (!sameString(claims.sid, state.bindingOf(ctx))) {
      // Costs no counter: nothing is guessed (the binding is signed), and counting it would let anyone behind the same
      // address spend the address's budget and lock the others out.
      state.event(ctx, 'failed', claims.rule, { reason: 'session-mismatch', user: claims.sub });
      return verifyProblem(403, PROBLEM.challengeMismatch, 'Challenge belongs to another session', 'This challenge was issued to another user or session.');
    }
    if (!tierSatisfies(ACR.otp, claims.acr)) {
      state.event(ctx, 'failed', claims.rule, { reason: 'method-not-allowed', user: claims.sub });
      return methodNotAllowed('A one-time code cannot answer this challenge: it needs a passkey.');
    }
    // Counted and compared before the code is looked at: parallel requests cannot check more than the limit.
    const reserved = await this.lockout.reserve(keys);
    if (!reserved.allowed) {
      state.event(ctx, 'locked_out', claims.rule, { user: claims.sub });
      return tooManyAttemptsResponse(reserved.retryAfterSeconds);
    }
    let secret: string | undefined;
    try {
      secret = await secretFor(store, box, claims.sub);
    } catch (error) {
      await this.lockout.release(keys);
      throw error;
    }
    if (secret === undefined) {
      await this.lockout.release(keys);
      state.event(ctx, 'enrollment_required', claims.rule, { user: claims.sub });
      return enrollmentRequiredResponse('0');
    }
    const check = checkTotp(secret, input.code);
    if (!check.ok) return this.rejectCode(ctx, keys, claims.rule, claims.sub, check.reason);
    if (!(await store.acceptTimeStep(claims.sub, check.timeStep))) return this.rejectCode(ctx, keys, claims.rule, claims.sub, 'replayed');
    return issueGrant(state, ctx, this.lockout, keys, claims, { acr: ACR.otp, amr: ['otp', 'mfa'], method: 'totp' });
  }

  private async rejectCode(ctx: RequestContext, keys: LockoutKeys, rule: string, user: string, reason: string): Promise<StandardResponse> {
    const locked = await this.lockout.failed(keys);
    this.state.event(ctx, 'failed', rule, { reason, user });
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
    // Over the limit (declared, or found while reading): answer 413 at once and drain the rest unbuffered, so the
    // client reads the answer — destroying the request would reset the connection first. Past MAX_DRAIN the
    // connection is cut anyway: a client streaming gigabytes gets no more of our bandwidth.
    const chunks: Buffer[] = [];
    let size = 0;
    const declared = Number(req.headers['content-length']);
    let over = Number.isFinite(declared) && declared > limit;
    if (over) reject(new Error('too large'));
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (over) {
        if (size > MAX_DRAIN) req.destroy();
        return;
      }
      if (size > limit) {
        over = true;
        chunks.length = 0;
        reject(new Error('too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
