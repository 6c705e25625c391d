/** Public API. Most apps need none of it: `node --require stepguard/register app.js` is enough. */
export {
  BlockedError,
  StepUpRequiredError,
  StepUpUnavailableError,
  isBlockedError,
  isStepUpRequiredError,
  BLOCKED_CODE,
  STEP_UP_CODE,
} from './errors.js';
export { start } from './agent.js';
export { runWithContext, bindToRequest, stepUp, risk, ENROLL_SCOPE, type UntrustedInput } from './api.js';
export { AlreadyEnrolledError } from './stepup/enrollment.js';
export type { StandardResponse } from './enforce/index.js';
export type { Config } from './config.js';
export type { SinkEvent, Verdict, UserInput } from './events.js';
export type { Finding } from './detectors/types.js';
