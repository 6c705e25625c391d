import type { PolicyRule, RuleSet } from '../rules/types.js';
import type { SignalCondition, Subject } from './types.js';

/**
 * What a rule set needs from the risk store, computed once per rule set: which rules have signals, which
 * facts to load, and how long each kind of event must be kept (the longest window any rule uses).
 */
export interface RiskPlan {
  readonly rules: readonly PolicyRule[];
  readonly conditions: readonly { rule: PolicyRule; condition: SignalCondition }[];
  /** TTLs in seconds; 0 = no rule uses it, so it is not recorded. */
  readonly attackTtl: number;
  readonly loginTtl: number;
  readonly vulnerabilityTtl: number;
  readonly frequencyPer: ReadonlySet<Subject>;
  readonly usesDevices: boolean;
  readonly flags: boolean;
}

const plans = new WeakMap<RuleSet, RiskPlan>();

export function planFor(ruleSet: RuleSet): RiskPlan {
  let plan = plans.get(ruleSet);
  if (!plan) {
    plan = build(ruleSet);
    plans.set(ruleSet, plan);
  }
  return plan;
}

function build(ruleSet: RuleSet): RiskPlan {
  const rules: PolicyRule[] = [];
  const conditions: { rule: PolicyRule; condition: SignalCondition }[] = [];
  let attackTtl = 0;
  let loginTtl = 0;
  let vulnerabilityTtl = 0;
  let usesDevices = false;
  const frequencyPer = new Set<Subject>();
  for (const rule of ruleSet.rules) {
    if (rule.type !== 'policy' || !rule.risk) continue;
    rules.push(rule);
    for (const { condition } of rule.risk.conditions) {
      conditions.push({ rule, condition });
      if (condition.signal === 'recent_attack') attackTtl = Math.max(attackTtl, condition.windowSeconds);
      if (condition.signal === 'failed_logins') loginTtl = Math.max(loginTtl, condition.windowSeconds);
      if (condition.signal === 'vulnerable_route') vulnerabilityTtl = Math.max(vulnerabilityTtl, condition.quietSeconds);
      if (condition.signal === 'frequency') frequencyPer.add(condition.per);
      if (condition.signal === 'new_device') usesDevices = true;
    }
  }
  return {
    rules,
    conditions,
    attackTtl,
    loginTtl,
    vulnerabilityTtl,
    frequencyPer,
    usesDevices,
    flags: ruleSet.rules.some((r) => r.flag === true) || conditions.some((c) => c.condition.signal === 'flagged_account'),
  };
}
