/** The level model: highest fired level, `low` when none, act_at, unknown facts → unavailable (fail closed). */
import { describe, expect, it } from 'vitest';
import { assess } from '../../../src/risk/model.js';
import { factsFromSignals } from '../../../src/risk/stated-facts.js';
import { labelOf, type RiskPolicy, type SignalCondition } from '../../../src/risk/types.js';

const c = (condition: SignalCondition, level: 'medium' | 'high' = 'medium') => ({ condition, level, label: labelOf(condition) });
const policy: RiskPolicy = {
  actAt: 'medium',
  conditions: [
    c({ signal: 'new_device' }),
    c({ signal: 'frequency', per: 'user', windowSeconds: 600, atLeast: 4 }),
    c({ signal: 'recent_attack', per: ['user', 'session', 'address'], windowSeconds: 3600 }, 'high'),
  ],
};

describe('risk level model', () => {
  it('is low when no signal fires, and the rule does not apply', () => {
    const a = assess('r', policy, factsFromSignals({}));
    expect(a).toMatchObject({ level: 'low', applies: false, unavailable: false });
    expect(a.signals.map((s) => s.fired)).toEqual([false, false, false]);
  });

  it('names every signal with its value; the level is the highest one that fired', () => {
    const medium = assess('r', policy, factsFromSignals({ new_device: true }));
    expect(medium.level).toBe('medium');
    expect(medium.applies).toBe(true);
    expect(medium.signals[0]).toEqual({ label: 'new_device', fired: true, value: true, level: 'medium' });
    const high = assess('r', policy, factsFromSignals({ new_device: true, recent_attacks: 1 }));
    expect(high.level).toBe('high');
    expect(high.signals.filter((s) => s.fired).map((s) => s.label)).toEqual(['new_device', 'recent_attack(per=user|session|address, window=3600s)']);
  });

  it('counts this call in a frequency: at_least 4 fires with 3 earlier calls, not with 2', () => {
    expect(assess('r', policy, factsFromSignals({ frequency: 3 })).signals[1]).toMatchObject({ fired: true, value: 4 });
    expect(assess('r', policy, factsFromSignals({ frequency: 2 })).signals[1]).toMatchObject({ fired: false, value: 3 });
  });

  it('applies from act_at only', () => {
    const onlyHigh: RiskPolicy = { ...policy, actAt: 'high' };
    expect(assess('r', onlyHigh, factsFromSignals({ new_device: true })).applies).toBe(false);
    expect(assess('r', onlyHigh, factsFromSignals({ recent_attacks: 2 })).applies).toBe(true);
    expect(assess('r', { ...policy, actAt: 'low' }, factsFromSignals({})).applies).toBe(true);
  });

  it('an unknown fact (store unavailable) makes the assessment unavailable instead of low', () => {
    const facts = { ...factsFromSignals({}), newDevice: () => undefined };
    const a = assess('r', policy, facts);
    expect(a.unavailable).toBe(true);
    expect(a.applies).toBe(false);
  });

  it('failed logins need both the count and the distinct addresses', () => {
    const p: RiskPolicy = { actAt: 'medium', conditions: [c({ signal: 'failed_logins', per: 'account', windowSeconds: 900, atLeast: 5, distinct: 3 })] };
    expect(assess('r', p, factsFromSignals({ failed_logins: 5, failed_logins_distinct: 2 })).applies).toBe(false);
    expect(assess('r', p, factsFromSignals({ failed_logins: 5, failed_logins_distinct: 3 })).applies).toBe(true);
    expect(assess('r', p, factsFromSignals({ failed_logins: 4, failed_logins_distinct: 3 })).applies).toBe(false);
  });
});
