/**
 * Risk signals as rule conditions (the `risk:` list of a policy rule) and the level model.
 *
 * Model (explainable, no score): every signal condition carries a level (`medium` unless it says otherwise).
 * The rule's level is the highest level among the conditions that fired, `low` when none fired. The rule
 * applies when that level reaches its `act_at` level (default: the lowest level named in its list). Every
 * decision names the conditions that fired and the value each one saw.
 */

export const RISK_LEVELS = ['low', 'medium', 'high'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

export function levelRank(level: RiskLevel): number {
  return RISK_LEVELS.indexOf(level);
}

/** Whose calls a per-subject signal counts. */
export type Subject = 'user' | 'session' | 'address';
export const SUBJECTS: readonly Subject[] = ['user', 'session', 'address'];

export type SignalCondition =
  /** The request carries no valid device cookie of this user, or the device is not (any longer) known. */
  | { readonly signal: 'new_device' }
  /** The user never completed a step-up from this client address. */
  | { readonly signal: 'new_client_address' }
  /** Distinct client addresses the user was seen from within the window (this one included). */
  | { readonly signal: 'client_addresses'; readonly windowSeconds: number; readonly atLeast: number }
  /** Calls matching this rule's other conditions, per subject, within the window (this one included). */
  | { readonly signal: 'frequency'; readonly per: Subject; readonly windowSeconds: number; readonly atLeast: number }
  /**
   * Failed logins within the window, per account (the signed-in user) or per client address; optionally only
   * when they came from at least `distinctAddresses` addresses (per account) or named `distinctAccounts`
   * accounts (per address).
   */
  | {
      readonly signal: 'failed_logins';
      readonly per: 'account' | 'address';
      readonly windowSeconds: number;
      readonly atLeast: number;
      readonly distinct: number | undefined;
    }
  /** Attack findings attributed to any of these subjects within the window. */
  | { readonly signal: 'recent_attack'; readonly per: readonly Subject[]; readonly windowSeconds: number }
  /** A vulnerability finding was recorded on this URL path and last seen within `quietSeconds`, for this app version. */
  | { readonly signal: 'vulnerable_route'; readonly quietSeconds: number }
  /** The account carries a flag (action `flag`, or the API). */
  | { readonly signal: 'flagged_account' };

export type SignalName = SignalCondition['signal'];
export const SIGNAL_NAMES: readonly SignalName[] = [
  'new_device', 'new_client_address', 'client_addresses', 'frequency', 'failed_logins', 'recent_attack', 'vulnerable_route', 'flagged_account',
];

export interface RiskCondition {
  readonly condition: SignalCondition;
  readonly level: Exclude<RiskLevel, 'low'>;
  /** `frequency(per=user, window=600s, at_least=4)`: how explain and spans name it. */
  readonly label: string;
}

export interface RiskPolicy {
  readonly conditions: readonly RiskCondition[];
  /** The rule applies from this level on. */
  readonly actAt: RiskLevel;
}

/** One condition's value as seen for one request; `undefined` = the store could not answer. */
export interface SignalValue {
  readonly label: string;
  readonly fired: boolean;
  /** What was measured: a count, true/false. */
  readonly value: number | boolean | undefined;
  readonly level: Exclude<RiskLevel, 'low'>;
}

export interface RiskAssessment {
  readonly level: RiskLevel;
  /** The rule applies at this level (level ≥ act_at). */
  readonly applies: boolean;
  readonly signals: readonly SignalValue[];
  /** Some condition needed the store and the store did not answer: the operation fails closed (503). */
  readonly unavailable: boolean;
}

/**
 * Facts the risk conditions read, answered synchronously from what was loaded for this request. `undefined`
 * means "not known" (store unavailable or not loaded): such a condition makes the assessment unavailable.
 */
export interface RiskFacts {
  newDevice(): boolean | undefined;
  newClientAddress(): boolean | undefined;
  clientAddresses(windowSeconds: number): number | undefined;
  /** Earlier calls in the window, not counting this one. */
  frequency(ruleId: string, per: Subject, windowSeconds: number): number | undefined;
  failedLogins(per: 'account' | 'address', windowSeconds: number): { count: number; distinct: number } | undefined;
  recentAttacks(per: Subject, windowSeconds: number): number | undefined;
  vulnerableRoute(quietSeconds: number): boolean | undefined;
  flagged(): boolean | undefined;
}

export function labelOf(c: SignalCondition): string {
  switch (c.signal) {
    case 'new_device':
    case 'new_client_address':
    case 'flagged_account':
      return c.signal;
    case 'client_addresses':
      return `client_addresses(window=${c.windowSeconds}s, at_least=${c.atLeast})`;
    case 'frequency':
      return `frequency(per=${c.per}, window=${c.windowSeconds}s, at_least=${c.atLeast})`;
    case 'failed_logins':
      return `failed_logins(per=${c.per}, window=${c.windowSeconds}s, at_least=${c.atLeast}${c.distinct ? `, distinct_${c.per === 'account' ? 'addresses' : 'accounts'}=${c.distinct}` : ''})`;
    case 'recent_attack':
      return `recent_attack(per=${c.per.join('|')}, window=${c.windowSeconds}s)`;
    case 'vulnerable_route':
      return `vulnerable_route(quiet=${c.quietSeconds}s)`;
  }
}
