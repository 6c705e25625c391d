/**
 * Passkeys (WebAuthn) with @simplewebauthn/server: registration (options → verify → credential stored) and
 * authentication against a step-up challenge (options → verify → grant at the tier the assertion earned).
 *
 * Nothing is kept between the two halves of a ceremony: the registration challenge is a MAC'd blob naming the
 * user, the session binding and an expiry (single use once verified), and the authentication challenge is derived
 * from the signed step-up challenge id (whose use is already single). The relying party comes from
 * STEPGUARD_WEBAUTHN_RP_ID / _ORIGINS, or from the request's Host only with STEPGUARD_WEBAUTHN_ALLOW_REQUEST_ORIGIN.
 */
import crypto from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { RequestContext } from '../context/request-context.js';
import { PROBLEM, enrollmentRequiredResponse, tooManyAttemptsResponse, verifyProblem, type StandardResponse } from '../enforce/index.js';
import { errorMessage, log } from '../log.js';
import { issueGrant } from './grant.js';
import { checkChallenge, json, methodNotAllowed, openBlob, passkeysUnavailable, relyingParty, sealBlob, type RelyingParty } from './verify-support.js';
import { Lockout, lockoutKeys } from './lockout.js';
import { sameString, type StepUpState } from './state.js';
import type { StoredCredential } from './store.js';
import { needsPhishingResistance, passkeyResult, tierSatisfies, METHOD_TIER } from './tiers.js';

type AuthenticatorTransportFuture = NonNullable<RegistrationResponseJSON['response']['transports']>[number];

const REGISTRATION_TTL_SECONDS = 300;
const CEREMONY_TIMEOUT_MS = 120_000;

// ---- registration ------------------------------------------------------------------------------------------

/** An opaque, stable user handle: the authenticator never sees the app's user id. */
function userHandle(state: StepUpState, userId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(state.signer.bindingHash(`sg-webauthn-user\n${userId}`), 'base64url'));
}

export async function registrationOptions(state: StepUpState, rp: RelyingParty, userId: string, binding: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const existing = await state.store.credentials(userId);
  const challenge = sealBlob(state, 'register-challenge', {
    sub: userId,
    sid: binding,
    nonce: crypto.randomBytes(16).toString('base64url'),
    exp: Math.floor(Date.now() / 1000) + REGISTRATION_TTL_SECONDS,
  });
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: userId,
    userID: userHandle(state, userId),
    challenge,
    timeout: CEREMONY_TIMEOUT_MS,
    attestationType: 'none',
    excludeCredentials: existing.map((c) => ({ id: c.id, transports: c.transports as AuthenticatorTransportFuture[] })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
  });
}

export class WebAuthnError extends Error {
  readonly code = 'ERR_STEPGUARD_WEBAUTHN';
  constructor(message: string) {
    super(message);
    this.name = 'WebAuthnError';
  }
}

/** Verifies a registration response for `userId` in this session and stores the passkey. Throws WebAuthnError when refused. */
export async function verifyRegistration(state: StepUpState, rp: RelyingParty, userId: string, binding: string, response: unknown): Promise<StoredCredential> {
  if (!isResponse(response)) throw new WebAuthnError('the registration response is malformed');
  let nonce: string | undefined;
  const expectedChallenge = (encoded: string): boolean => {
    const text = Buffer.from(encoded, 'base64url').toString('utf8');
    const c = openBlob(state, 'register-challenge', text);
    if (!c || c.sub !== userId || typeof c.sid !== 'string' || !sameString(c.sid, binding) || typeof c.nonce !== 'string') return false;
    nonce = c.nonce;
    return true;
  };
  let verified;
  try {
    verified = await verifyRegistrationResponse({
      response: response as unknown as RegistrationResponseJSON,
      expectedChallenge,
      expectedOrigin: [...rp.origins],
      expectedRPID: rp.id,
      requireUserVerification: true,
    });
  } catch (error) {
    throw new WebAuthnError(`the passkey was not accepted: ${errorMessage(error)}`);
  }
  if (!verified.verified || nonce === undefined) throw new WebAuthnError('the passkey was not accepted');
  if (!(await state.store.consumeOnce(`webauthn-register:${nonce}`, REGISTRATION_TTL_SECONDS))) throw new WebAuthnError('this registration was already completed');
  const info = verified.registrationInfo;
  const transports = info.credential.transports ?? (response as unknown as RegistrationResponseJSON).response.transports ?? [];
  const credential: StoredCredential = {
    id: info.credential.id,
    publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
    counter: info.credential.counter,
    transports: [...transports],
    userVerified: info.userVerified,
    deviceType: info.credentialDeviceType,
    createdAt: Date.now(),
  };
  await state.store.addCredential(userId, credential);
  return credential;
}

// ---- authentication against a step-up challenge -------------------------------------------------------------

/** The WebAuthn challenge of a step-up challenge: bound to it, and single use because the step-up challenge is. */
function assertionChallenge(challengeId: string): string {
  return `sg-webauthn-auth.${crypto.createHash('sha256').update(challengeId).digest('base64url')}`;
}

export class PasskeyVerifier {
  private readonly lockout: Lockout;

  constructor(private readonly state: StepUpState) {
    this.lockout = new Lockout(() => state.store, state.settings);
  }

  async options(ctx: RequestContext, challengeId: unknown): Promise<StandardResponse> {
    const state = this.state;
    const rp = relyingParty(state, ctx);
    if (!rp) return passkeysUnavailable();
    const checked = checkChallenge(state, ctx, challengeId);
    if (!checked.ok) return checked.response;
    const claims = checked.claims;
    if (!tierSatisfies(METHOD_TIER.webauthn, claims.acr)) return methodNotAllowed('A passkey cannot answer this challenge.');
    const credentials = await state.store.credentials(claims.sub);
    if (credentials.length === 0) return enrollmentRequiredResponse('0');
    const options: PublicKeyCredentialRequestOptionsJSON = await generateAuthenticationOptions({
      rpID: rp.id,
      allowCredentials: credentials.map((c) => ({ id: c.id, transports: c.transports as AuthenticatorTransportFuture[] })),
      challenge: assertionChallenge(challengeId as string),
      timeout: CEREMONY_TIMEOUT_MS,
      userVerification: needsPhishingResistance(claims.acr) ? 'required' : 'preferred',
    });
    return json(200, options);
  }

  async verify(ctx: RequestContext, challengeId: unknown, response: unknown): Promise<StandardResponse> {
    const state = this.state;
    const rp = relyingParty(state, ctx);
    if (!rp) return passkeysUnavailable();
    const checked = checkChallenge(state, ctx, challengeId);
    if (!checked.ok) return checked.response;
    const claims = checked.claims;
    if (!tierSatisfies(METHOD_TIER.webauthn, claims.acr)) return methodNotAllowed('A passkey cannot answer this challenge.');
    const keys = lockoutKeys(claims.sub, ctx.clientAddress);
    // Counted before the answer is checked, like a code (lockout.ts): parallel answers cannot exceed the limit.
    const reserved = await this.lockout.reserve(keys);
    if (!reserved.allowed) {
      state.event(ctx, 'locked_out', claims.rule, { user: claims.sub });
      return tooManyAttemptsResponse(reserved.retryAfterSeconds);
    }
    const refuse = async (reason: string): Promise<StandardResponse> => {
      await this.lockout.failed(keys);
      state.event(ctx, 'failed', claims.rule, { reason, user: claims.sub });
      return verifyProblem(401, PROBLEM.invalidCode, 'Passkey not accepted', 'The passkey could not be verified. Try again, or use another method.');
    };
    if (!isResponse(response)) return refuse('passkey-malformed');
    const credential = (await state.store.credentials(claims.sub)).find((c) => c.id === response.id);
    if (!credential) return refuse('passkey-unknown');
    const requireUv = needsPhishingResistance(claims.acr);
    let info;
    try {
      const result = await verifyAuthenticationResponse({
        response: response as unknown as AuthenticationResponseJSON,
        expectedChallenge: Buffer.from(assertionChallenge(challengeId as string), 'utf8').toString('base64url'),
        expectedOrigin: [...rp.origins],
        expectedRPID: rp.id,
        credential: {
          id: credential.id,
          publicKey: new Uint8Array(Buffer.from(credential.publicKey, 'base64url')),
          counter: credential.counter,
          transports: credential.transports as AuthenticatorTransportFuture[],
        },
        requireUserVerification: requireUv,
      });
      if (!result.verified) return refuse('passkey-signature');
      info = result.authenticationInfo;
    } catch (error) {
      const message = errorMessage(error);
      if (/counter/i.test(message)) {
        log.warn(`step-up: a passkey of user ${claims.sub} presented a signature counter that did not increase (possibly a cloned authenticator); refused`);
        return refuse('passkey-counter');
      }
      return refuse('passkey-invalid');
    }
    // The library compared against the counter we read; the store's compare-and-set closes the race with a
    // concurrent assertion (two instances) carrying the same counter.
    if (!(await state.store.advanceCounter(claims.sub, credential.id, info.newCounter))) {
      log.warn(`step-up: a passkey of user ${claims.sub} presented a signature counter that did not increase (possibly a cloned authenticator); refused`);
      return refuse('passkey-counter');
    }
    const earned = passkeyResult(info.userVerified, credential.deviceType === 'multiDevice');
    if (!tierSatisfies(earned.acr, claims.acr)) return refuse('passkey-no-user-verification');
    return issueGrant(state, ctx, this.lockout, keys, claims, { ...earned, method: 'webauthn' });
  }
}

function isResponse(value: unknown): value is { id: string; type: string; response: Record<string, unknown> } {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.id === 'string' && v.id.length > 0 && v.id.length < 1024 && v.type === 'public-key' && typeof v.response === 'object' && v.response !== null;
}

