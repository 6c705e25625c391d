import type { RuleSet } from '../rules/types.js';

/** Whether a rule set uses adaptive step-up at all (signals, `flag`, or a login watch). */
export function usesRisk(ruleSet: RuleSet): boolean {
  return ruleSet.login !== undefined || ruleSet.rules.some((r) => r.flag === true || (r.type === 'policy' && r.risk !== undefined));
}
