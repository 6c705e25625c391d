import { describe, expect, it } from 'vitest';
import { ACR, AMR_RECOVERY_CODE, METHOD_TIER, expandAcr, methodsFor, needsPhishingResistance, passkeyResult, tierRank, tierSatisfies } from '../../../src/stepup/tiers.js';
import { parseRuleFile } from '../../../src/rules/load.js';

describe('method tiers', () => {
  it('names two ranked tiers by URN, with short names for rules', () => {
    expect(ACR).toEqual({ otp: 'urn:stepguard:acr:otp', phr: 'urn:stepguard:acr:phr' });
    expect(tierRank(ACR.otp)).toBe(1);
    expect(tierRank(ACR.phr)).toBe(2);
    expect(tierRank('urn:other')).toBeUndefined();
    expect(expandAcr('otp')).toBe(ACR.otp);
    expect(expandAcr('phr')).toBe(ACR.phr);
    expect(expandAcr('urn:example:acr:gold')).toBe('urn:example:acr:gold');
    expect(expandAcr('__proto__')).toBe('__proto__');
  });

  it('a higher tier satisfies a lower one, never the reverse', () => {
    expect(tierSatisfies(ACR.phr, [ACR.otp])).toBe(true);
    expect(tierSatisfies(ACR.phr, [ACR.phr])).toBe(true);
    expect(tierSatisfies(ACR.otp, [ACR.otp])).toBe(true);
    expect(tierSatisfies(ACR.otp, [ACR.phr])).toBe(false);
    // Any one of the requested values is enough (RFC 9470 acr_values is a list of acceptable values).
    expect(tierSatisfies(ACR.otp, [ACR.phr, ACR.otp])).toBe(true);
  });

  it('an unranked ACR value is met only by exactly that value', () => {
    expect(tierSatisfies('urn:example:gold', ['urn:example:gold'])).toBe(true);
    expect(tierSatisfies(ACR.phr, ['urn:example:gold'])).toBe(false);
    expect(tierSatisfies('urn:example:gold', [ACR.otp])).toBe(false);
    expect(tierSatisfies(ACR.phr, [])).toBe(false);
  });

  it('lists the methods that can answer a tier; a recovery code only the OTP tier', () => {
    expect(methodsFor([ACR.otp])).toEqual(['webauthn', 'totp', 'recovery_code']);
    expect(methodsFor([ACR.phr])).toEqual(['webauthn']);
    expect(METHOD_TIER.recovery_code).toBe(ACR.otp);
    expect(needsPhishingResistance([ACR.phr])).toBe(true);
    expect(needsPhishingResistance([ACR.otp])).toBe(false);
  });

  it('a passkey earns the phishing-resistant tier only with user verification, and records hwk/swk + user', () => {
    expect(passkeyResult(true, false)).toEqual({ acr: ACR.phr, amr: ['hwk', 'user', 'mfa'] });
    expect(passkeyResult(true, true)).toEqual({ acr: ACR.phr, amr: ['swk', 'user', 'mfa'] });
    expect(passkeyResult(false, false)).toEqual({ acr: ACR.otp, amr: ['hwk'] });
    expect(AMR_RECOVERY_CODE).toBe('rcode');
  });
});

describe('rules name tiers by short name', () => {
  it('expands otp and phr to their URNs and keeps URNs', () => {
    const { rules, problems } = parseRuleFile('tiers.yaml', `
ruleset: tiers-test
version: "1.0.0"
rules:
  - id: wire-phr
    title: Wire
    category: sensitive-operation
    description: Wire transfers need a passkey.
    when: { sink: sql, statement: "UPDATE accounts *" }
    action: step_up
    step_up: { max_age: 120, acr_values: [phr] }
  - id: wire-otp
    title: Payees
    category: sensitive-operation
    description: Removing payees needs a code.
    when: { sink: sql, statement: "DELETE FROM payees *" }
    action: step_up
    step_up: { max_age: 120, acr_values: [otp, urn:example:gold] }
`, []);
    expect(problems).toEqual([]);
    expect(rules.find((r) => r.meta.id === 'wire-phr')!.stepUp!.acrValues).toEqual([ACR.phr]);
    expect(rules.find((r) => r.meta.id === 'wire-otp')!.stepUp!.acrValues).toEqual([ACR.otp, 'urn:example:gold']);
  });
});
