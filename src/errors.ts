/**
 * The only errors stepguard throws on purpose. They travel the library's own error path (throw,
 * rejected promise, callback error, 'error' event) so the operation never runs. Request references are
 * non-enumerable so that an app logging the error object does not dump the request into its logs.
 */

export const BLOCKED_CODE = 'ERR_STEPGUARD_BLOCKED';
export const STEP_UP_CODE = 'ERR_STEPGUARD_STEP_UP_REQUIRED';
export const UNAVAILABLE_CODE = 'ERR_STEPGUARD_UNAVAILABLE';

function hide(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: false, writable: false, configurable: true });
}

export class BlockedError extends Error {
  readonly code = BLOCKED_CODE;
  declare readonly ruleId: string;
  declare readonly request: unknown;

  constructor(ruleId: string, operation: string, request?: unknown) {
    super(`stepguard blocked ${operation} (rule ${ruleId})`);
    this.name = 'BlockedError';
    hide(this, 'ruleId', ruleId);
    hide(this, 'request', request);
  }
}

export interface StepUpDetails {
  readonly ruleId: string;
  readonly acrValues: readonly string[];
  readonly maxAge: number;
  /** Opaque, signed; the client sends it back with the code. */
  readonly challengeId: string;
}

export class StepUpRequiredError extends Error {
  readonly code = STEP_UP_CODE;
  readonly ruleId: string;
  readonly acrValues: readonly string[];
  readonly maxAge: number;
  readonly challengeId: string;
  declare readonly request: unknown;

  constructor(details: StepUpDetails, request?: unknown) {
    super(`step-up authentication required (rule ${details.ruleId})`);
    this.name = 'StepUpRequiredError';
    this.ruleId = details.ruleId;
    this.acrValues = details.acrValues;
    this.maxAge = details.maxAge;
    this.challengeId = details.challengeId;
    hide(this, 'request', request);
  }
}

/** A step-up was needed but its state store could not be reached: the operation fails closed. */
export class StepUpUnavailableError extends Error {
  readonly code = UNAVAILABLE_CODE;
  declare readonly ruleId: string;
  constructor(ruleId: string) {
    super(`step-up is temporarily unavailable (rule ${ruleId}); the operation did not run`);
    this.name = 'StepUpUnavailableError';
    hide(this, 'ruleId', ruleId);
  }
}

export function isStepUpRequiredError(error: unknown): error is StepUpRequiredError {
  return error instanceof Error && (error as { code?: unknown }).code === STEP_UP_CODE;
}

export function isBlockedError(error: unknown): error is BlockedError {
  return error instanceof Error && (error as { code?: unknown }).code === BLOCKED_CODE;
}
