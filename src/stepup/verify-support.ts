/**
 * What every browser-facing answer to a challenge shares, without loading the WebAuthn library (about a second
 * to load, so webauthn.ts is required only on the first passkey request): the relying party, MAC'd blobs
 * (registration challenges and tickets, CSRF tokens), the challenge check, and JSON answers.
 */
import type { RequestContext } from '../context/request-context.js';
import { PROBLEM, verifyProblem, type StandardResponse } from '../enforce/index.js';
import { isSecureRequest } from './grant.js';
import { sameString, type StepUpState } from './state.js';
import type { ChallengeClaims } from './tokens.js';

export const PROBLEM_METHOD_NOT_ALLOWED = 'urn:stepguard:problem:method-not-allowed';
export const PROBLEM_PASSKEYS_UNAVAILABLE = 'urn:stepguard:problem:passkeys-not-configured';
const REGISTRATION_TTL_SECONDS = 300;

export interface RelyingParty {
  readonly id: string;
  readonly origins: readonly string[];
  readonly name: string;
}

/** The configured relying party; from the request only when explicitly allowed; else undefined (passkeys off). */
export function relyingParty(state: StepUpState, ctx: RequestContext | undefined): RelyingParty | undefined {
  const s = state.settings;
  if (s.webauthnRpId !== undefined && s.webauthnOrigins.length > 0) return { id: s.webauthnRpId, origins: s.webauthnOrigins, name: s.issuer };
  if (!s.webauthnAllowRequestOrigin || !ctx) return undefined;
  const host = requestHost(ctx);
  if (host === undefined) return undefined;
  return { id: host.hostname, origins: [`${isSecureRequest(ctx) ? 'https' : 'http'}://${host.host}`], name: s.issuer };
}

/** The Host header as a URL authority, or undefined when it is not a plain host[:port]. */
export function requestHost(ctx: RequestContext): { host: string; hostname: string } | undefined {
  const raw = ctx.req.headers.host;
  if (typeof raw !== 'string' || !/^[A-Za-z0-9.-]{1,253}(?::\d{1,5})?$/.test(raw)) return undefined;
  const host = raw.toLowerCase();
  return { host, hostname: host.replace(/:\d+$/, '') };
}

// ---- MAC'd blobs (registration challenges, registration tickets, CSRF tokens) --------------------------------

/**
 * `base64url(JSON).mac`, the MAC being the session-binding HMAC (a key derived from the signing key) over a
 * purpose-prefixed input. Session materials start with `authorization:`/`cookie:`/`cookies:` or are empty, so
 * these inputs never collide with a binding.
 */
export function sealBlob(state: StepUpState, purpose: string, payload: Record<string, string | number>): string {
  const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  return `${body}.${state.signer.bindingHash(`sg-blob.v1\n${purpose}\n${body}`)}`;
}

export function openBlob(state: StepUpState, purpose: string, blob: unknown): Record<string, unknown> | undefined {
  if (typeof blob !== 'string' || blob.length > 2048) return undefined;
  const dot = blob.indexOf('.');
  if (dot <= 0) return undefined;
  const body = blob.slice(0, dot);
  if (!sameString(blob.slice(dot + 1), state.signer.bindingHash(`sg-blob.v1\n${purpose}\n${body}`))) return undefined;
  try {
    const value = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    const record = value as Record<string, unknown>;
    if (typeof record.exp !== 'number' || record.exp <= Date.now() / 1000) return undefined;
    return record;
  } catch {
    return undefined;
  }
}

/** A ticket that lets this session register a passkey for `userId` on the agent's page (5 minutes). */
export function registrationTicket(state: StepUpState, userId: string, binding: string): string {
  return sealBlob(state, 'register-ticket', { sub: userId, sid: binding, exp: Math.floor(Date.now() / 1000) + REGISTRATION_TTL_SECONDS });
}

export function openRegistrationTicket(state: StepUpState, ticket: unknown, binding: string): string | undefined {
  const t = openBlob(state, 'register-ticket', ticket);
  if (!t || typeof t.sub !== 'string' || typeof t.sid !== 'string' || !sameString(t.sid, binding)) return undefined;
  return t.sub;
}

type Checked = { ok: true; claims: ChallengeClaims } | { ok: false; response: StandardResponse };

/** The signed challenge, in this session: what every answer to a challenge checks first. */
export function checkChallenge(state: StepUpState, ctx: RequestContext, challengeId: unknown): Checked {
  if (typeof challengeId !== 'string') {
    return { ok: false, response: verifyProblem(400, PROBLEM.badRequest, 'Bad Request', 'Send JSON with "challenge_id" from the 401 response.') };
  }
  const challenge = state.signer.verify(challengeId, 'challenge');
  if (!challenge.ok) {
    state.event(ctx, 'failed', undefined, { reason: `challenge-${challenge.reason}` });
    const detail = challenge.reason === 'expired' ? 'The challenge expired. Retry the operation to get a new one.' : 'The challenge is not valid. Retry the operation to get a new one.';
    return { ok: false, response: verifyProblem(401, PROBLEM.invalidChallenge, 'Invalid challenge', detail) };
  }
  if (!sameString(challenge.claims.sid, state.bindingOf(ctx))) {
    state.event(ctx, 'failed', challenge.claims.rule, { reason: 'session-mismatch', user: challenge.claims.sub });
    return { ok: false, response: verifyProblem(403, PROBLEM.challengeMismatch, 'Challenge belongs to another session', 'This challenge was issued to another user or session.') };
  }
  return { ok: true, claims: challenge.claims };
}

export function methodNotAllowed(detail: string): StandardResponse {
  return verifyProblem(403, PROBLEM_METHOD_NOT_ALLOWED, 'Method not allowed for this operation', detail);
}

export function passkeysUnavailable(): StandardResponse {
  return verifyProblem(
    503,
    PROBLEM_PASSKEYS_UNAVAILABLE,
    'Passkeys are not configured',
    'Passkeys need STEPGUARD_WEBAUTHN_RP_ID and STEPGUARD_WEBAUTHN_ORIGINS (see README "Passkeys").',
  );
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): StandardResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}
