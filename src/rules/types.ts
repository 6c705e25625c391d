import type { SinkKind } from '../events.js';
import type { FindingKind } from '../detectors/types.js';
import type { RiskLevel, RiskPolicy } from '../risk/types.js';

/** Ordered weakest → strongest: the strongest matching action wins. */
export const ACTIONS = ['monitor', 'step_up', 'block'] as const;
export type Action = (typeof ACTIONS)[number];

export function actionStrength(action: Action): number {
  return ACTIONS.indexOf(action);
}

/** Telemetry metadata (`security_rule.*`). */
export interface RuleMeta {
  readonly id: string;
  readonly uuid: string;
  readonly title: string;
  readonly category: string;
  readonly version: string;
  readonly description: string | undefined;
  readonly reference: string | undefined;
  readonly ruleset: string;
  /** `file:line` the rule came from, for messages. */
  readonly origin: string;
}

export interface StepUpRequirement {
  /** Acceptable ACR values, in order of preference (RFC 9470 `acr_values`). */
  readonly acrValues: readonly string[];
  /** Seconds a grant stays valid (RFC 9470 `max_age`). */
  readonly maxAge: number;
  /** Adaptive step-up: the ACR values asked for at each risk level (falls back to `acrValues`). */
  readonly acrByLevel?: Partial<Record<RiskLevel, readonly string[]>>;
}

/** A compiled text pattern: `*` matches any run of characters, case-insensitive, linear time. */
export interface Pattern {
  readonly source: string;
  test(text: string): boolean;
}

/** Conditions of a policy rule; every present condition must hold. */
export interface PolicyConditions {
  readonly sink: SinkKind | undefined;
  readonly operation: Pattern | undefined;
  /** Matched against the SQL statement, the command line, the file path or the URL, by sink kind. */
  readonly target: Pattern | undefined;
  readonly route: Pattern | undefined;
  readonly methods: readonly string[] | undefined;
  /** A finding of this kind occurred earlier in the same request (or in this call). */
  readonly findingKind: FindingKind | undefined;
  /** The client address has not been used by this user before. */
  readonly newClientAddress: boolean;
}

export interface RuleExample {
  readonly event: Record<string, unknown>;
  readonly inputs: Record<string, string>;
  readonly expect: 'match' | 'no_match';
  readonly origin: string;
  /** Signal facts the example states (`signals: { new_device: true, frequency: 3 }`). */
  readonly signals?: Readonly<Record<string, unknown>>;
  /** Expected risk level, when the example states one. */
  readonly level?: RiskLevel;
}

interface RuleBase {
  readonly meta: RuleMeta;
  readonly action: Action;
  readonly stepUp: StepUpRequirement | undefined;
  readonly examples: readonly RuleExample[];
  /** Action `flag` (alone or with another action): the account is flagged when the rule matches. */
  readonly flag?: boolean;
}

export interface DetectionRule extends RuleBase {
  readonly type: 'detection';
  readonly detector: string;
  /** Vulnerabilities are never blocked; a detection rule acts on attacks. */
  readonly on: FindingKind;
}

export interface PolicyRule extends RuleBase {
  readonly type: 'policy';
  readonly when: PolicyConditions;
  /** Adaptive step-up: risk signals and the level from which the rule applies. */
  readonly risk?: RiskPolicy;
}

export type Rule = DetectionRule | PolicyRule;

/** The login route the agent watches for failed logins (a rule file's top-level `login:`). */
export interface LoginWatch {
  readonly route: Pattern;
  readonly methods: readonly string[];
  /** Response statuses that mean "failed login". */
  readonly failureStatus: readonly number[];
  /** The input naming the account, e.g. `body.username`. */
  readonly account: string;
  readonly origin: string;
}

export interface RuleSet {
  readonly rules: readonly Rule[];
  readonly files: readonly string[];
  readonly login?: LoginWatch;
}
