import type { Attributes } from '@opentelemetry/api';
import { ATTR } from './attributes.js';

/** Step-up lifecycle events, each a `stepguard.step_up` span. */
export type StepUpEventName =
  | 'challenge_issued'
  | 'enrollment_required'
  | 'grant_used'
  | 'grant_rejected'
  | 'verified'
  | 'failed'
  | 'locked_out'
  | 'unavailable'
  | 'refused';

/** The attributes of one `stepguard.step_up` span. Never a code, a secret, a challenge or a grant. */
export function stepUpAttributes(
  name: StepUpEventName,
  rule: string | undefined,
  reason: string | undefined,
  user: string | undefined,
  request: { readonly method: string | undefined; readonly urlPath: string; readonly clientAddress: string | undefined },
): Attributes {
  const attributes: Attributes = {
    [ATTR.STEP_UP_EVENT]: name,
    [ATTR.HTTP_METHOD]: request.method ?? '_OTHER',
    [ATTR.URL_PATH]: request.urlPath,
  };
  if (rule) {
    attributes[ATTR.STEP_UP_RULE] = rule;
    attributes[ATTR.RULE_NAME] = rule;
  }
  if (reason) attributes[ATTR.STEP_UP_REASON] = reason;
  if (user) attributes[ATTR.USER_ID] = user;
  if (request.clientAddress) attributes[ATTR.CLIENT_ADDRESS] = request.clientAddress;
  return attributes;
}
