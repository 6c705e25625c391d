import { describe, expect, it, vi } from 'vitest';
import { judge, detectorsUsedBy, NO_DECISION } from '../../../src/judge/judge.js';
import { DETECTORS, DETECTOR_IDS } from '../../../src/detectors/index.js';
import { loadRules, parseRuleFile } from '../../../src/rules/load.js';
import { RuleEngine, type RequestFacts } from '../../../src/rules/engine.js';
import { evaluate } from '../../../src/rules/evaluate.js';
import type { AnyDetector } from '../../../src/detectors/types.js';
import type { ExecEvent, SinkEvent, SqlEvent, UserInput } from '../../../src/events.js';

const shipped = loadRules([], DETECTOR_IDS).ruleSet;
const engine = new RuleEngine(shipped, 'block');
const detectors = detectorsUsedBy(engine, DETECTORS);
const sql = (text: string): SqlEvent => ({ kind: 'sql', op: 'pg.query', dialect: 'postgres', system: 'postgresql', sql: text });
const exec = (file: string, ...args: string[]): ExecEvent => ({ kind: 'exec', op: 'child_process.execFileSync', file, args, shell: undefined });
const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  method: 'GET',
  urlPath: '/',
  route: undefined,
  earlierFindings: [],
  isNewClientAddress: () => undefined,
  ...over,
});
const run = (event: SinkEvent, inputs: UserInput[], over: { engine?: RuleEngine; facts?: RequestFacts } = {}) =>
  judge({ event, detectors, inputs: () => inputs, engine: over.engine ?? engine, facts: () => over.facts ?? facts() });
const q = (value: string, path = 'query.q'): UserInput => ({ source: 'query', path, value });

describe('judge: event + inputs + rules → findings + decision', () => {
  it('an attack meets its detection rule: block, decided by that rule', () => {
    const { findings, decision } = run(sql("SELECT * FROM t WHERE a = '' OR '1'='1'"), [q("' OR '1'='1")]);
    expect(findings).toEqual([expect.objectContaining({ detector: 'sql-injection', kind: 'attack' })]);
    expect(decision.action).toBe('block');
    expect(decision.decisive?.rule.meta.id).toBe('sql-injection');
  });

  it('a vulnerability is reported (monitor), never acted on', () => {
    const { findings, decision } = run(sql("SELECT * FROM t WHERE a = 'select the best'"), [q('select the best')]);
    expect(findings).toEqual([expect.objectContaining({ kind: 'vulnerability', reason: 'literal' })]);
    expect(decision.action).toBe('monitor');
    expect(decision.matches.map((m) => m.rule.meta.id)).toEqual(['sql-unparameterised']);
  });

  it('is pure: the same call gives the same answer, and the inputs are left as they were', () => {
    const inputs = Object.freeze([q("' OR '1'='1")]) as UserInput[];
    const a = run(sql("SELECT * FROM t WHERE a = '' OR '1'='1'"), inputs);
    const b = run(sql("SELECT * FROM t WHERE a = '' OR '1'='1'"), inputs);
    expect(b).toEqual(a);
  });

  it('asks for inputs only when a detector runs, and for facts only when a rule may need them', () => {
    const inputs = vi.fn(() => [q('abc')]);
    const askFacts = vi.fn(() => facts());
    const noSqlRules = new RuleEngine({ rules: shipped.rules.filter((r) => r.type === 'detection' && r.detector !== 'sql-injection'), files: [] }, 'block');
    const result = judge({ event: sql('SELECT 1'), detectors: detectorsUsedBy(noSqlRules, DETECTORS), inputs, engine: noSqlRules, facts: askFacts });
    expect(result).toEqual({ findings: [], decision: NO_DECISION });
    expect(inputs).not.toHaveBeenCalled();
    expect(askFacts).not.toHaveBeenCalled();
    // Inputs that reach nothing: the detector ran, no rule had anything to look at.
    expect(run(sql('SELECT 1'), [q('abc')]).decision).toBe(NO_DECISION);
  });

  it('policy rules see the request facts', () => {
    const { rules } = parseRuleFile(
      'p.yaml',
      `ruleset: t\nversion: "1"\nrules:\n  - id: transfer\n    title: t\n    category: c\n    when: { sink: sql, statement: "update accounts *", method: POST }\n    action: step_up\n    step_up: { max_age: 60 }\n`,
      DETECTOR_IDS,
    );
    const policy = new RuleEngine({ rules, files: [] }, 'block');
    const event = sql('UPDATE accounts SET balance = 0');
    expect(run(event, [], { engine: policy, facts: facts({ method: 'POST' }) }).decision.action).toBe('step_up');
    expect(run(event, [], { engine: policy, facts: facts({ method: 'GET' }) }).decision.action).toBe('monitor');
  });

  it('a detector that throws: the judgement goes on without it when the caller handles the error, else it propagates', () => {
    const broken: AnyDetector = { id: 'sql-injection', kinds: ['sql'], detect: () => { throw new Error('boom'); } };
    const onDetectorError = vi.fn();
    const call = { event: sql("SELECT 'x'"), detectors: [broken], inputs: () => [q('xx')], engine, facts: () => facts() };
    expect(judge({ ...call, onDetectorError }).findings).toEqual([]);
    expect(onDetectorError).toHaveBeenCalledWith(broken, expect.objectContaining({ message: 'boom' }));
    expect(() => judge(call)).toThrow('boom');
  });
});

describe('judge: coincidences are the detectors\' call, the same for the agent and the CLI', () => {
  const pathSegment: UserInput = { source: 'path', path: 'path.0', value: 'users' };
  const key: UserInput = { source: 'query', path: 'query.name', value: 'name', isKey: true };

  it.each([
    ['a URL path segment equal to a table name', sql('SELECT id FROM users WHERE id = $1'), pathSegment],
    ['an object key equal to a column', sql('SELECT id FROM accounts WHERE name = $1'), key],
    ['a URL path segment equal to a shell word', { kind: 'exec', op: 'child_process.exec', file: 'ls users', args: [], shell: true } as ExecEvent, pathSegment],
  ])('%s: no finding', (_name, event, input) => {
    expect(run(event, [input]).findings).toEqual([]);
    expect(evaluate(shipped.rules, event, [input], {}).findings).toEqual([]);
  });

  it('the same path segment in an attack is still an attack', () => {
    const attack: UserInput = { source: 'path', path: 'path.1', value: "1' OR '1'='1" };
    expect(run(sql("SELECT * FROM t WHERE id = '1' OR '1'='1'"), [attack]).findings[0]).toMatchObject({ kind: 'attack' });
  });

  it('the same value as a query value is a vulnerability: the app concatenated it', () => {
    expect(run(sql('SELECT id FROM users WHERE id = $1'), [q('users')]).findings).toEqual([expect.objectContaining({ kind: 'vulnerability', reason: 'identifier' })]);
  });
});

describe('judge: whether a shell runs is the detector\'s call', () => {
  it.each([
    ['su -c', exec('su', '-c', 'echo hi; id')],
    ['sudo sh -c', exec('sudo', 'sh', '-c', 'echo hi; id')],
    ['env … busybox sh -c', exec('env', 'A=1', 'busybox', 'sh', '-c', 'echo hi; id')],
    ['xargs sh -c', exec('xargs', 'sh', '-c', 'echo hi; id')],
    ['the shell option', { kind: 'exec', op: 'child_process.spawn', file: 'echo', args: ['hi;', 'id'], shell: true } as ExecEvent],
  ])('%s with `hi; id` from the request: attack, block', (_name, event) => {
    const { findings, decision } = run(event, [q('hi; id')]);
    expect(findings[0]).toMatchObject({ detector: 'command-injection', kind: 'attack' });
    expect(decision.action).toBe('block');
    expect(evaluate(shipped.rules, event, [q('hi; id')], {}).decision.action).toBe('block');
  });

  it('no shell: the same argv is data', () => {
    expect(run(exec('echo', 'hi; id'), [q('hi; id')]).decision.action).toBe('monitor');
  });
});

describe('input gathering', () => {
  it('a response head is judged without gathering the request input; a password hash gathers it', () => {
    const gather = vi.fn(() => [q('hunter2-secret', 'body.password')]);
    const head = judge({ event: { kind: 'config', op: 'res.writeHead', check: 'response', text: 'content-type: text/html' }, detectors, inputs: gather, engine, facts: () => facts() });
    expect(head.findings.map((f) => f.reason)).toEqual(['missing-csp', 'missing-nosniff']);
    expect(gather).not.toHaveBeenCalled();
    const hash = judge({ event: { kind: 'config', op: 'crypto.createHash', check: 'hash', text: 'md5', data: 'hunter2-secret' }, detectors, inputs: gather, engine, facts: () => facts() });
    expect(hash.findings.map((f) => f.reason)).toEqual(['weak-password-hash']);
    expect(gather).toHaveBeenCalledTimes(1);
  });
});


describe('the screen the judge offers for the request\'s values', () => {
  const fake = (id: string, mayFind?: (value: string) => boolean): AnyDetector => ({
    id,
    kinds: ['sql'],
    ...(mayFind ? { mayFind: (_e: SinkEvent, value: string) => mayFind(value) } : {}),
    detect: (_event, inputs) => inputs.map((input) => ({ detector: id, kind: 'vulnerability' as const, input, start: 0, end: 0, reason: 'seen' })),
  });
  const screenGiven = (using: AnyDetector[]) => {
    const asked: { screen?: ((value: string, isKey: boolean) => boolean) | undefined } = {};
    judge({ event: sql('SELECT 1'), detectors: using, inputs: (screen) => ((asked.screen = screen), [q('a')]), engine, facts: () => facts() });
    expect('screen' in asked).toBe(true); // the inputs were asked for
    return asked.screen;
  };

  it('lets a value through when any judging detector may find it', () => {
    const screen = screenGiven([fake('a', (v) => v === 'x'), fake('b', (v) => v === 'y')]);
    expect([screen?.('x', false), screen?.('y', false), screen?.('z', false)]).toEqual([true, true, false]);
  });

  it('offers none when one judging detector has no mayFind: that detector is given every value', () => {
    expect(screenGiven([fake('a', (v) => v === 'x'), fake('b')])).toBeUndefined();
    // A detector of another kind does not count.
    expect(typeof screenGiven([fake('a', (v) => v === 'x'), { ...fake('c'), kinds: ['exec'] }])).toBe('function');
  });
});
