import { describe, expect, it } from 'vitest';
import { parseRuleFile } from '../../../src/rules/load.js';
import { RuleEngine, type RequestFacts } from '../../../src/rules/engine.js';
import { compilePattern, globMatch } from '../../../src/rules/pattern.js';
import type { Finding } from '../../../src/detectors/types.js';
import type { SqlEvent } from '../../../src/events.js';

const RULES = `
ruleset: t
rules:
  - { id: sqli, title: t, category: c, detector: sql-injection, action: block }
  - { id: sqli-watch, title: t, category: c, detector: sql-injection, action: monitor }
  - id: transfer
    title: t
    category: c
    when: { sink: sql, statement: "update accounts set balance *", route: /transfer, method: POST }
    action: step_up
    step_up: { max_age: 60 }
  - id: after-attack
    title: t
    category: c
    when: { sink: sql, finding: attack }
    action: step_up
    step_up: { max_age: 60 }
  - id: new-address
    title: t
    category: c
    when: { statement: "DELETE *", new_client_address: true }
    action: block
`;
const { rules, problems } = parseRuleFile('t.yaml', RULES, ['sql-injection']);
const sql = (text: string): SqlEvent => ({ kind: 'sql', op: 'pg.query', dialect: 'postgres', system: 'postgresql', sql: text });
const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  method: 'POST',
  urlPath: '/transfer',
  route: undefined,
  earlierFindings: [],
  isNewClientAddress: () => false,
  ...over,
});
const attack: Finding = { detector: 'sql-injection', kind: 'attack', input: { source: 'query', path: 'query.q', value: "' OR 1=1" }, start: 0, end: 1, reason: 'spans-tokens' };
const vulnerability: Finding = { ...attack, kind: 'vulnerability', reason: 'literal' };

describe('rule engine', () => {
  it('loads the fixture rules', () => expect(problems).toEqual([]));

  it('the strongest matching action wins', () => {
    const d = new RuleEngine({ rules, files: [] }, 'block').decide(sql('SELECT 1'), [attack], facts({ urlPath: '/x' }));
    expect(d.action).toBe('block');
    expect(d.decisive?.rule.meta.id).toBe('sqli');
    expect(d.matches.map((m) => m.rule.meta.id).sort()).toEqual(['after-attack', 'sqli', 'sqli-watch']);
  });

  it('monitor mode downgrades every action', () => {
    const d = new RuleEngine({ rules, files: [] }, 'monitor').decide(sql('SELECT 1'), [attack], facts());
    expect(d.action).toBe('monitor');
    expect(d.matches.every((m) => m.action === 'monitor')).toBe(true);
  });

  it('vulnerabilities are never acted on', () => {
    const d = new RuleEngine({ rules, files: [] }, 'block').decide(sql('SELECT 1'), [vulnerability], facts({ urlPath: '/x' }));
    expect(d.matches).toEqual([]);
    expect(d.action).toBe('monitor');
  });

  it('policy rules need every condition: statement pattern, route, method', () => {
    const engine = new RuleEngine({ rules, files: [] }, 'block');
    const update = sql('UPDATE  accounts\n SET balance = balance - $1 WHERE id = $2');
    expect(engine.decide(update, [], facts()).decisive?.rule.meta.id).toBe('transfer');
    expect(engine.decide(update, [], facts({ method: 'GET' })).matches).toEqual([]);
    expect(engine.decide(update, [], facts({ urlPath: '/other' })).matches).toEqual([]);
    expect(engine.decide(sql('UPDATE accounts SET email = $1'), [], facts()).matches).toEqual([]);
  });

  it('"a finding occurred earlier in this request" and "new client address" conditions', () => {
    const engine = new RuleEngine({ rules, files: [] }, 'block');
    expect(engine.decide(sql('SELECT 1'), [], facts({ earlierFindings: [attack], urlPath: '/x' })).decisive?.rule.meta.id).toBe('after-attack');
    expect(engine.decide(sql('DELETE FROM t'), [], facts({ isNewClientAddress: () => true })).decisive?.rule.meta.id).toBe('new-address');
    expect(engine.decide(sql('DELETE FROM t'), [], facts({ isNewClientAddress: () => undefined })).matches).toEqual([]);
  });
});

describe('glob patterns', () => {
  it('match case-insensitively with flexible whitespace', () => {
    expect(compilePattern('UPDATE accounts SET *').test('update   ACCOUNTS\tset x = 1')).toBe(true);
    expect(compilePattern('/admin/*').test('/admin/users/1')).toBe(true);
    expect(compilePattern('/admin/?').test('/admin/ab')).toBe(false);
  });

  it('stay fast on a pathological input (no catastrophic backtracking)', () => {
    // Bounded by text × pattern length; a backtracking matcher would not finish within the test timeout.
    const text = 'a'.repeat(200_000);
    expect(globMatch('*a*a*a*a*a*a*a*a*b', text)).toBe(false);
    expect(compilePattern('**********b').test(text)).toBe(false);
  });
});
