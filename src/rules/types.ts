import type { SinkKind } from '../events.js';
import type { FindingKind } from '../detectors/types.js';

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
}

interface RuleBase {
  readonly meta: RuleMeta;
  readonly action: Action;
  readonly stepUp: StepUpRequirement | undefined;
  readonly examples: readonly RuleExample[];
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
}

export type Rule = DetectionRule | PolicyRule;

export interface RuleSet {
  readonly rules: readonly Rule[];
  readonly files: readonly string[];
}
