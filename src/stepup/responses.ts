import { problem, type StandardResponse } from '../respond.js';
import type { StepUpRequiredError } from '../errors.js';

/**
 * Every response of the step-up protocol, in one place: RFC 9470 challenges and RFC 9457 problem details.
 * Problem types are URNs: stable identifiers a client can switch on, with no promise of a web page.
 */

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

const ERROR_DESCRIPTION = 'A fresh one-time-password verification is required for this operation';

/** RFC 9470 §3: `WWW-Authenticate: Bearer error="insufficient_user_authentication", …`. */
export function challengeHeader(acrValues: readonly string[], maxAge: number): string {
  return `Bearer error="insufficient_user_authentication", error_description="${ERROR_DESCRIPTION}", acr_values="${acrValues.join(' ')}", max_age="${maxAge}"`;
}

export function challengeResponse(error: StepUpRequiredError, verifyUri: string, incidentId: string): StandardResponse {
  return problem(
    401,
    {
      type: PROBLEM.stepUpRequired,
      title: 'Step-up authentication required',
      status: 401,
      detail: 'Confirm it is you: send a current code from your authenticator app to verify_uri with challenge_id, then retry with the grant.',
      instance: `urn:stepguard:incident:${incidentId}`,
      error: 'insufficient_user_authentication',
      challenge_id: error.challengeId,
      acr_values: error.acrValues.join(' '),
      max_age: error.maxAge,
      verify_uri: verifyUri,
    },
    { 'www-authenticate': challengeHeader(error.acrValues, error.maxAge) },
  );
}

export function enrollmentRequiredResponse(incidentId: string): StandardResponse {
  return problem(403, {
    type: PROBLEM.enrollmentRequired,
    title: 'Second factor enrollment required',
    status: 403,
    detail: 'This operation needs a verification with a second factor, but none is enrolled for your account. Enroll an authenticator app first.',
    instance: `urn:stepguard:incident:${incidentId}`,
  });
}

export function authenticationRequiredResponse(incidentId: string): StandardResponse {
  return problem(403, {
    type: PROBLEM.authenticationRequired,
    title: 'Authentication required',
    status: 403,
    detail: 'This operation needs a signed-in user who can confirm their identity. Sign in first.',
    instance: `urn:stepguard:incident:${incidentId}`,
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
      instance: `urn:stepguard:incident:${incidentId}`,
    },
    { 'retry-after': String(retryAfterSeconds) },
  );
}

export function verifyProblem(status: number, type: string, title: string, detail: string, headers: Record<string, string> = {}): StandardResponse {
  return problem(status, { type, title, status, detail }, headers);
}
