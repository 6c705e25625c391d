import { describe, expect, it } from 'vitest';
import { spendWork, withWorkBudget, WorkBudgetExceeded } from '../../../src/grammar/work-budget.js';
import { tokenizeSql } from '../../../src/grammar/sql-tokenizer.js';
import { tokenizeJs } from '../../../src/grammar/js-tokenizer.js';
import { scanShell } from '../../../src/grammar/shell-tokenizer.js';
import { forEachOccurrence } from '../../../src/grammar/occurrences.js';
import { commandInjection } from '../../../src/detectors/command-injection.js';
import { judge } from '../../../src/judge/judge.js';
import { DETECTORS, DETECTOR_IDS } from '../../../src/detectors/index.js';
import { detectorsUsedBy } from '../../../src/judge/judge.js';
import { loadRules } from '../../../src/rules/load.js';
import { RuleEngine } from '../../../src/rules/engine.js';
import type { AnyDetector } from '../../../src/detectors/types.js';
import type { SqlEvent, UserInput } from '../../../src/events.js';

/** Adversarial texts of 256 K characters: hundreds of thousands of steps for each loop that checks the budget. */
const SIZE = 256 * 1024;
const operators = '-+'.repeat(SIZE / 2);
const facts = () => ({ method: 'GET', urlPath: '/', route: undefined, earlierFindings: [], isNewClientAddress: () => undefined });

describe('the inspection work budget', () => {
  it('outside an inspection there is no deadline: the loops never stop (the CLI and redaction run to the end)', () => {
    expect(() => {
      for (let k = 0; k < 100_000; k++) spendWork();
    }).not.toThrow();
    expect(tokenizeSql(operators, 'mysql')).toHaveLength(SIZE);
  });

  it.each([
    ['SQL tokenizer', () => tokenizeSql(operators, 'postgres')],
    ['JavaScript tokenizer', () => tokenizeJs('({['.repeat(SIZE / 3))],
    ['shell scanner', () => scanShell('2>'.repeat(SIZE / 2))],
    ['occurrence walk', () => forEachOccurrence('a'.repeat(SIZE), 'aa', 0, () => true)],
    [
      'nested shell fragments',
      () => commandInjection.detect({ kind: 'exec', op: 'child_process.exec', file: 'sh -c "x1" -c "y2" '.repeat(SIZE / 20), args: [], shell: true }, [{ source: 'body', path: 'q', value: 'x1' }]),
    ],
  ])('the %s stops once the budget is spent, and the budget is restored after', (_name, work) => {
    // A spent budget (0 ms) stands in for an input that makes the work take too long.
    expect(() => withWorkBudget(0, work)).toThrow(WorkBudgetExceeded);
    expect(() => work()).not.toThrow();
  });

  it('budgets nest: the outer deadline is back after an inner one', () => {
    const outcome = withWorkBudget(60_000, () => {
      expect(() => withWorkBudget(0, () => tokenizeSql(operators, 'mysql'))).toThrow(WorkBudgetExceeded);
      return tokenizeSql(operators, 'mysql').length;
    });
    expect(outcome).toBe(SIZE);
  });

  it('the judge stops at the budget, keeps what the detectors before found, and says it stopped', () => {
    const engine = new RuleEngine(loadRules([], DETECTOR_IDS).ruleSet, 'block');
    const sqlDetectors = detectorsUsedBy(engine, DETECTORS).filter((d) => d.kinds.includes('sql'));
    const earlier: AnyDetector = {
      id: 'sql-injection',
      kinds: ['sql'],
      detect: (_event, inputs) => [{ detector: 'sql-injection', kind: 'attack', reason: 'comment', input: inputs[0]!, start: 0, end: 1 }],
    } as AnyDetector;
    const event: SqlEvent = { kind: 'sql', op: 'pg.query', dialect: 'postgres', system: 'postgresql', sql: `SELECT ${operators} '-+'` };
    const inputs: UserInput[] = [{ source: 'query', path: 'q', value: "'-+'" }];
    const call = { event, inputs: () => inputs, engine, facts };
    // Without a budget: the SQL detector runs to the end.
    expect(judge({ ...call, detectors: sqlDetectors }).stopped).toBeUndefined();
    const stopped = withWorkBudget(0, () => judge({ ...call, detectors: [earlier, ...sqlDetectors] }));
    expect(stopped.stopped).toBe(true);
    expect(stopped.findings).toEqual([expect.objectContaining({ kind: 'attack', reason: 'comment' })]);
    // The rules still decide on what was found: the attack found before the stop is refused.
    expect(stopped.decision.action).toBe('block');
  });
});
