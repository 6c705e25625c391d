import { levelRank, type RiskAssessment, type RiskFacts, type RiskLevel, type RiskPolicy, type SignalCondition, type SignalValue } from './types.js';

/**
 * The level model, pure: each condition is measured from `facts`, the level is the highest level among the
 * conditions that fired (`low` when none did), the rule applies from `act_at` on. A condition whose fact is
 * unknown makes the whole assessment `unavailable` — the caller fails closed rather than guess low.
 */
export function assess(ruleId: string, policy: RiskPolicy, facts: RiskFacts): RiskAssessment {
  let level: RiskLevel = 'low';
  let unavailable = false;
  const signals: SignalValue[] = [];
  for (const c of policy.conditions) {
    const { fired, value } = measure(ruleId, c.condition, facts);
    if (value === undefined) unavailable = true;
    if (fired && levelRank(c.level) > levelRank(level)) level = c.level;
    signals.push({ label: c.label, fired, value, level: c.level });
  }
  return { level, applies: !unavailable && levelRank(level) >= levelRank(policy.actAt), signals, unavailable };
}

function measure(ruleId: string, c: SignalCondition, facts: RiskFacts): { fired: boolean; value: number | boolean | undefined } {
  switch (c.signal) {
    case 'new_device':
      return flag(facts.newDevice());
    case 'new_client_address':
      return flag(facts.newClientAddress());
    case 'flagged_account':
      return flag(facts.flagged());
    case 'vulnerable_route':
      return flag(facts.vulnerableRoute(c.quietSeconds));
    case 'client_addresses':
      return count(facts.clientAddresses(c.windowSeconds), c.atLeast);
    case 'frequency': {
      // This call counts: "the 4th transfer within 10 minutes" is `at_least: 4`.
      const earlier = facts.frequency(ruleId, c.per, c.windowSeconds);
      return count(earlier === undefined ? undefined : earlier + 1, c.atLeast);
    }
    case 'failed_logins': {
      const seen = facts.failedLogins(c.per, c.windowSeconds);
      if (seen === undefined) return { fired: false, value: undefined };
      return { fired: seen.count >= c.atLeast && (c.distinct === undefined || seen.distinct >= c.distinct), value: seen.count };
    }
    case 'recent_attack': {
      let total: number | undefined = 0;
      for (const per of c.per) {
        const n = facts.recentAttacks(per, c.windowSeconds);
        if (n === undefined) {
          total = undefined;
          break;
        }
        total += n;
      }
      return count(total, 1);
    }
  }
}

function flag(value: boolean | undefined): { fired: boolean; value: boolean | undefined } {
  return { fired: value === true, value };
}

function count(value: number | undefined, atLeast: number): { fired: boolean; value: number | undefined } {
  return { fired: value !== undefined && value >= atLeast, value };
}
