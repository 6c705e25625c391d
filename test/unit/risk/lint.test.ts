/** `rules lint` on adaptive rules: each mistake named with file:line, field and a fix; valid rules compile. */
import { describe, expect, it } from 'vitest';
import { formatProblem, parseRuleFile } from '../../../src/rules/load.js';
import { runExample } from '../../../src/rules/evaluate.js';
import type { PolicyRule } from '../../../src/rules/types.js';

const rule = (extra: string) =>
  `ruleset: custom\nrules:\n  - id: adaptive\n    title: Adaptive\n    category: sensitive-operation\n    when: { sink: sql, statement: "UPDATE accounts *" }\n${extra}`;
const lint = (text: string) => parseRuleFile('rules/a.yaml', text, ['sql-injection']).problems.map(formatProblem);

describe('rules lint: adaptive conditions', () => {
  it.each([
    ['unknown signal', rule('    risk:\n      - new_devise: true\n    action: step_up\n    step_up: { max_age: 60 }\n'), 'rules[0].risk[0].new_devise: unknown signal'],
    ['window out of range', rule('    risk:\n      - frequency: { per: user, window: 90d, at_least: 3 }\n    action: step_up\n    step_up: { max_age: 60 }\n'), 'rules[0].risk[0].frequency.window: expected a duration between 1s and 30d'],
    ['window not a duration', rule('    risk:\n      - frequency: { per: user, window: soon, at_least: 3 }\n    action: step_up\n    step_up: { max_age: 60 }\n'), 'such as 10m, 1h or 30s, got "soon"'],
    ['threshold out of range', rule('    risk:\n      - frequency: { window: 10m, at_least: 1 }\n    action: step_up\n    step_up: { max_age: 60 }\n'), 'rules[0].risk[0].frequency.at_least: expected a whole number between 2 and 10000, got 1'],
    ['bad subject', rule('    risk:\n      - frequency: { per: device, window: 10m, at_least: 3 }\n    action: step_up\n    step_up: { max_age: 60 }\n'), 'rules[0].risk[0].frequency.per: expected user, session, address'],
    ['distinct for the wrong subject', rule('    risk:\n      - failed_logins: { per: address, window: 15m, at_least: 5, distinct_addresses: 3 }\n    action: block\n'), 'applies to `per: account`; per address use distinct_accounts'],
    ['two signals in one item', rule('    risk:\n      - new_device: true\n        flagged_account: true\n    action: step_up\n    step_up: { max_age: 60 }\n'), 'exactly one signal per list item'],
    ['bad level', rule('    risk:\n      - new_device: true\n        level: extreme\n    action: step_up\n    step_up: { max_age: 60 }\n'), 'rules[0].risk[0].level: expected medium or high'],
    ['acr per level without risk', rule('    action: step_up\n    step_up: { max_age: 60, acr_values: { high: [phr] } }\n'), 'acr_values per level need a `risk:` list'],
    ['unknown level in acr_values', rule('    risk:\n      - new_device: true\n    action: step_up\n    step_up: { max_age: 60, acr_values: { severe: [phr] } }\n'), 'rules[0].step_up.acr_values.severe: expected a risk level'],
    ['two enforcing actions', rule('    risk:\n      - new_device: true\n    action: [block, step_up]\n'), 'at most one of monitor, step_up, block per rule'],
    ['login route not a path', `login: { route: login, account: body.username }\n` + rule('    action: monitor\n'), 'login.route: expected the login path pattern, starting with "/"'],
    ['login account not an input', `login: { route: /login, account: username }\n` + rule('    action: monitor\n'), 'login.account: expected the input naming the account'],
    ['login route with a regex', `login: { route: "/login.*", account: body.user }\n` + rule('    action: monitor\n'), 'login.route: '],
  ])('%s', (_name, text, expected) => {
    const problems = lint(text);
    expect(problems.join('\n')).toContain(expected);
    expect(problems[0]).toMatch(/^rules\/a\.yaml:\d+:\d+: /);
  });

  it('compiles a valid adaptive rule: conditions with levels, act_at, acr per level (short names), flag', () => {
    const { rules, problems, login } = parseRuleFile(
      'rules/a.yaml',
      `login: { route: /login, method: POST, failure_status: [401, 403], account: body.username }\n` +
        rule(
          '    risk:\n      - new_device: true\n      - frequency: { per: session, window: 10m, at_least: 4 }\n      - recent_attack: { window: 1h }\n        level: high\n    act_at: medium\n    action: [flag, step_up]\n    step_up: { max_age: 300, acr_values: { medium: [otp], high: [phr] } }\n',
        ),
      ['sql-injection'],
    );
    expect(problems).toEqual([]);
    expect(login).toMatchObject({ methods: ['POST'], failureStatus: [401, 403], account: 'body.username' });
    const r = rules[0] as PolicyRule;
    expect(r.flag).toBe(true);
    expect(r.action).toBe('step_up');
    expect(r.risk!.actAt).toBe('medium');
    expect(r.risk!.conditions.map((c) => `${c.label}:${c.level}`)).toEqual([
      'new_device:medium',
      'frequency(per=session, window=600s, at_least=4):medium',
      'recent_attack(per=user|session|address, window=3600s):high',
    ]);
    expect(r.stepUp!.acrByLevel).toEqual({ medium: ['urn:stepguard:acr:otp'], high: ['urn:stepguard:acr:phr'] });
  });

  it('rules test: examples state signal facts and the expected level', () => {
    const text = rule(
      '    risk:\n      - new_device: true\n    action: step_up\n    step_up: { max_age: 60 }\n    examples:\n' +
        '      - event: { kind: sql, sql: "UPDATE accounts SET x = 1" }\n        signals: { new_device: true }\n        expect: match\n        level: medium\n' +
        '      - event: { kind: sql, sql: "UPDATE accounts SET x = 1" }\n        expect: match\n',
    );
    const { rules, problems } = parseRuleFile('rules/a.yaml', text, ['sql-injection']);
    expect(problems).toEqual([]);
    const [ok, wrong] = rules[0]!.examples.map((e) => runExample(rules[0]!, e, rules));
    expect(ok!.passed).toBe(true);
    expect(wrong!.passed).toBe(false);
    expect(wrong!.detail).toContain('expected a match, got no match');
  });
});
