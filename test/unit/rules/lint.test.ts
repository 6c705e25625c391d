/**
 * Every kind of rule-file mistake is reported with file:line:column, the field, and a fix — at load time.
 */
import { describe, expect, it } from 'vitest';
import { parseRuleFile, formatProblem } from '../../../src/rules/load.js';

const DETECTORS = ['sql-injection', 'command-injection'];
const lint = (text: string) => parseRuleFile('rules/custom.yaml', text, DETECTORS).problems.map(formatProblem);

const rule = (extra: string) => `ruleset: custom\nrules:\n  - id: my-rule\n    title: Mine\n    category: injection\n${extra}`;

describe('rules lint: mistakes and their messages', () => {
  it.each([
    ['unknown field, with a suggestion', rule('    detector: sql-injection\n    action: block\n    acton: monitor\n'), 'rules/custom.yaml:8:5: rules[0].acton: unknown field (did you mean "action"?); allowed: id, uuid, title, category, version, description, reference, detector, on, when, risk, act_at, action, step_up, examples'],
    ['wrong type', rule('    detector: sql-injection\n    action: { do: block }\n'), 'rules/custom.yaml:7:13: rules[0].action: expected one of monitor, step_up, block, flag or a list of them (at most one besides flag), got {"do":"block"}'],
    ['unknown action, with a suggestion', rule('    detector: sql-injection\n    action: blok\n'), 'rules/custom.yaml:7:13: rules[0].action: expected one of monitor, step_up, block, got "blok" (did you mean "block"?); or flag, or a list such as [flag, step_up]'],
    ['unknown detector', rule('    detector: sqli\n    action: block\n'), 'rules/custom.yaml:6:15: rules[0].detector: unknown detector "sqli"; known: sql-injection, command-injection'],
    ['missing required field', 'rules:\n  - id: x\n    category: c\n    detector: sql-injection\n    action: block\n', 'rules/custom.yaml:2:5: rules[0].title: missing required field `title`'],
    ['duplicate id', rule('    detector: sql-injection\n    action: block\n') + '  - id: my-rule\n    title: Again\n    category: c\n    detector: sql-injection\n    action: monitor\n', 'rules/custom.yaml:8:9: rules[1].id: duplicate id "my-rule" (first defined on line 3); ids must be unique'],
    ['invalid id', 'rules:\n  - id: My Rule\n    title: t\n    category: c\n    detector: sql-injection\n    action: block\n', 'rules/custom.yaml:2:9: rules[0].id: "My Rule" is not a valid id; use lowercase letters, digits, ".", "_" or "-" (max 64)'],
    ['step_up without max_age', rule('    when: { sink: sql }\n    action: step_up\n    step_up: { acr_values: [otp] }\n'), 'rules/custom.yaml:8:14: rules[0].step_up.max_age: missing; how many seconds a verification stays valid, e.g. `max_age: 300`'],
    ['step_up with a bad max_age', rule('    when: { sink: sql }\n    action: step_up\n    step_up: { max_age: -5 }\n'), 'rules/custom.yaml:8:25: rules[0].step_up.max_age: expected whole seconds between 1 and 86400, got -5'],
    ['step_up settings without step_up', rule('    detector: sql-injection\n    action: block\n    step_up: { max_age: 60 }\n'), 'rules/custom.yaml:8:14: rules[0].step_up: `step_up` settings only apply with `action: step_up`'],
    ['invalid pattern (a regex)', rule('    when: { sink: sql, statement: "^UPDATE accounts.*" }\n    action: monitor\n'), 'rules/custom.yaml:6:35: rules[0].when.statement: looks like a regular expression ("^"); rule patterns are globs'],
    ['unsafe pattern (too many wildcards)', rule(`    when: { sink: sql, statement: "${'a*'.repeat(20)}" }\n    action: monitor\n`), 'rules/custom.yaml:6:35: rules[0].when.statement: 20 wildcards; at most 16 keep matching fast'],
    ['empty pattern', rule('    when: { route: "" }\n    action: monitor\n'), 'rules/custom.yaml:6:20: rules[0].when.route: expected a non-empty string, got string ""'],
    ['target field for another sink', rule('    when: { sink: exec, statement: "UPDATE *" }\n    action: monitor\n'), 'rules/custom.yaml:6:36: rules[0].when.statement: `statement` applies to sink sql, but this rule says sink exec'],
    ['detector and when together', rule('    detector: sql-injection\n    when: { sink: sql }\n    action: block\n'), 'rules/custom.yaml:7:11: rules[0].when: a rule has either `detector` (detection rule) or `when` (policy rule), not both'],
    ['neither detector nor when', rule('    action: block\n'), 'rules/custom.yaml:3:5: rules[0]: missing `detector` (detection rule) or `when` (policy rule)'],
    ['blocking vulnerabilities', rule('    detector: sql-injection\n    on: vulnerability\n    action: block\n'), 'rules/custom.yaml:8:13: rules[0].action: vulnerability findings are reported, never acted on; use `action: monitor` (or `on: attack`)'],
    ['invalid HTTP method', rule('    when: { route: /x, method: FETCH }\n    action: monitor\n'), 'rules/custom.yaml:6:32: rules[0].when.method: expected an HTTP method or a list of them'],
    ['route that is not a path', rule('    when: { route: transfer }\n    action: monitor\n'), 'rules/custom.yaml:6:20: rules[0].when.route: expected a path pattern starting with "/"'],
    ['invalid uuid', rule('    uuid: 1234\n    detector: sql-injection\n    action: block\n'), 'rules/custom.yaml:6:11: rules[0].uuid: expected a non-empty string, got number 1234'],
    ['YAML syntax error', 'rules:\n  - id: x\n    title: [unclosed\n', 'rules/custom.yaml:4:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ['not a list of rules', 'rules: {}\n', 'rules/custom.yaml:1:8: rules: expected a list of rules'],
    ['malformed example', rule('    detector: sql-injection\n    action: block\n    examples:\n      - event: "SELECT 1"\n        expect: match\n'), 'rules/custom.yaml:9:9: rules[0].examples[0].event: expected a mapping such as `{ kind: sql, sql: "SELECT 1" }`'],
  ])('%s', (_kind, text, expected) => {
    const problems = lint(text);
    expect(problems.some((p) => p.startsWith(expected)), `got:\n${problems.join('\n')}`).toBe(true);
  });

  it('a valid file has no problems and compiles its rules', () => {
    const result = parseRuleFile('ok.yaml', rule('    detector: sql-injection\n    action: block\n'), DETECTORS);
    expect(result.problems).toEqual([]);
    expect(result.rules).toHaveLength(1);
    expect(result.rules[0]!.meta.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });
});
