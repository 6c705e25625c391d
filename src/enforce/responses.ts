import { randomBytes } from 'node:crypto';

/**
 * Every response the agent writes, built in one place: RFC 9457 problem details, the RFC 9470 step-up
 * challenge, and the refusals around them. Problem types are URNs: stable identifiers a client can switch
 * on, with no promise of a web page. Nothing here says which rule or detector refused: no rule id,
 * detector or stack reaches a client.
 */

export interface StandardResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: string;
}

export const PROBLEM = {
  stepUpRequired: 'urn:stepguard:problem:step-up-required',
  enrollmentRequired: 'urn:stepguard:problem:enrollment-required',
  authenticationRequired: 'urn:stepguard:problem:authentication-required',
  invalidCode: 'urn:stepguard:problem:invalid-code',
  invalidChallenge: 'urn:stepguard:problem:invalid-challenge',
  challengeMismatch: 'urn:stepguard:problem:challenge-mismatch',
  tooManyAttempts: 'urn:stepguard:problem:too-many-attempts',
  unavailable: 'urn:stepguard:problem:step-up-unavailable',
  badRequest: 'urn:stepguard:problem:bad-request',
} as const;

export function problem(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): StandardResponse {
  return { status, headers, body: JSON.stringify(body) };
}

export function newIncidentId(): string {
  return randomBytes(8).toString('hex');
}

const incident = (id: string): string => `urn:stepguard:incident:${id}`;

/** 403 that says nothing about why. */
export function forbiddenResponse(incidentId: string): StandardResponse {
  return problem(403, { type: 'about:blank', title: 'Forbidden', status: 403, detail: 'The request was refused.', instance: incident(incidentId) });
}

export function unavailableResponse(incidentId: string, retryAfterSeconds = 5): StandardResponse {
  return problem(
    503,
    {
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'This operation needs an additional verification that is temporarily unavailable. Please retry shortly.',
      instance: incident(incidentId),
    },
    { 'retry-after': String(retryAfterSeconds) },
  );
}

/** 413 for a body over `limitBytes` (for request-body checks: the verification endpoint, later others). */
export function payloadTooLargeResponse(detail: string, type: string = 'about:blank'): StandardResponse {
  return problem(413, { type, title: 'Payload Too Large', status: 413, detail });
}

/** 415 for a body in a media type the receiver does not parse. */
export function unsupportedMediaTypeResponse(accepted: readonly string[], type: string = 'about:blank'): StandardResponse {
  return problem(415, { type, title: 'Unsupported Media Type', status: 415, detail: `Send the body as ${accepted.join(' or ')}.` }, { accept: accepted.join(', ') });
}

// ---- step-up (RFC 9470) ------------------------------------------------------------------------------

const ERROR_DESCRIPTION = 'A fresh one-time-password verification is required for this operation';
const ERROR_DESCRIPTION_PHR = 'A fresh passkey verification is required for this operation';
const PHR = 'urn:stepguard:acr:phr';

/** What a 401 challenge names: the RFC 9470 parameters and the signed challenge id. */
export interface ChallengeDetails {
  readonly challengeId: string;
  readonly acrValues: readonly string[];
  readonly maxAge: number;
}

/** RFC 9470 §3: `WWW-Authenticate: Bearer error="insufficient_user_authentication", …`. */
export function challengeHeader(acrValues: readonly string[], maxAge: number): string {
  const description = acrValues.length > 0 && acrValues.every((v) => v === PHR) ? ERROR_DESCRIPTION_PHR : ERROR_DESCRIPTION;
  return `Bearer error="insufficient_user_authentication", error_description="${description}", acr_values="${acrValues.join(' ')}", max_age="${maxAge}"`;
}

/**
 * `methods`: which verification methods can answer (`webauthn`, `totp`, `recovery_code`), per the requested tier.
 * `verify_page`: the agent's HTML page for browsers (append `&return_to=/path`).
 */
export function challengeResponse(challenge: ChallengeDetails, verifyUri: string, incidentId: string, methods?: readonly string[]): StandardResponse {
  return problem(
    401,
    {
      type: PROBLEM.stepUpRequired,
      title: 'Step-up authentication required',
      status: 401,
      detail: 'Confirm it is you with one of the methods listed (a current code from your authenticator app sent to verify_uri with challenge_id, or a passkey on verify_page), then retry with the grant.',
      instance: incident(incidentId),
      error: 'insufficient_user_authentication',
      challenge_id: challenge.challengeId,
      acr_values: challenge.acrValues.join(' '),
      max_age: challenge.maxAge,
      verify_uri: verifyUri,
      ...(methods ? { methods: [...methods], verify_page: `${verifyUri}?challenge_id=${encodeURIComponent(challenge.challengeId)}` } : {}),
    },
    { 'www-authenticate': challengeHeader(challenge.acrValues, challenge.maxAge) },
  );
}

export function enrollmentRequiredResponse(incidentId: string): StandardResponse {
  return problem(403, {
    type: PROBLEM.enrollmentRequired,
    title: 'Second factor enrollment required',
    status: 403,
    detail: 'This operation needs a verification with a second factor, but none is enrolled for your account. Enroll an authenticator app first.',
    instance: incident(incidentId),
  });
}

export function authenticationRequiredResponse(incidentId: string): StandardResponse {
  return problem(403, {
    type: PROBLEM.authenticationRequired,
    title: 'Authentication required',
    status: 403,
    detail: 'This operation needs a signed-in user who can confirm their identity. Sign in first.',
    instance: incident(incidentId),
  });
}

export function stepUpUnavailableResponse(incidentId: string, retryAfterSeconds = 5): StandardResponse {
  return problem(
    503,
    {
      type: PROBLEM.unavailable,
      title: 'Verification temporarily unavailable',
      status: 503,
      detail: 'This operation needs an additional verification that is temporarily unavailable. It did not run; please retry shortly.',
      instance: incident(incidentId),
    },
    { 'retry-after': String(retryAfterSeconds) },
  );
}

/** 429 with Retry-After: the user or the client address is locked out of verification for a while. */
export function tooManyAttemptsResponse(retryAfterSeconds: number): StandardResponse {
  return verifyProblem(429, PROBLEM.tooManyAttempts, 'Too many attempts', `Too many failed verifications. Try again in ${retryAfterSeconds} seconds.`, {
    'retry-after': String(retryAfterSeconds),
  });
}

/** Answers of the verification endpoint: no incident, the problem type says what to do. */
export function verifyProblem(status: number, type: string, title: string, detail: string, headers: Record<string, string> = {}): StandardResponse {
  return problem(status, { type, title, status, detail }, headers);
}

/** 200 of a successful verification: the grant in the body and in an HttpOnly cookie for its scope. */
export function grantResponse(grant: string, scope: string, maxAgeSeconds: number, cookie: string | string[]): StandardResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/json', 'set-cookie': cookie },
    body: JSON.stringify({ grant, token_type: 'Stepguard-Grant', expires_in: maxAgeSeconds, scope }),
  };
}
