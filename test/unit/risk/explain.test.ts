/** `stepguard rules explain --signal …` shows each signal's value, the level, the action and the acr_values. */
import { describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../../src/cli/main.js';

const RULES = join(resolve(__dirname, '../../..'), 'examples/bank/adaptive-rules.yaml');
const SQL = 'UPDATE accounts SET balance = balance - $1 WHERE id = $2';

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  const code = await main(argv, { ...process.env, STEPGUARD_RULES: '' }, sink);
  return { code, out };
}

describe('rules explain with signal facts', () => {
  it('names every signal of the applicable adaptive rules with its value, the level, the action and the acr_values', async () => {
    const { code, out } = await run('rules', 'explain', '--rules', RULES, '--route', '/transfer', '--method', 'POST', '--sql', SQL, '--signal', 'new_device', '--signal', 'recent_attacks=1');
    expect(code).toBe(0);
    expect(out).toContain('bank.transfer-risk: level high (acts from medium) → step_up');
    expect(out).toContain('✓ new_device = true → medium');
    expect(out).toContain('✓ recent_attack(per=user|session|address, window=3600s) = 1 → high');
    expect(out).toContain('· flagged_account = false');
    expect(out).toContain('acr_values at high: urn:stepguard:acr:phr');
    expect(out).toContain('bank.transfer-burst: level low (acts from medium) → does not apply');
    expect(out).toContain('decision: step_up (rule bank.transfer-risk)');
  });

  it('with no signal facts nothing fires and the transfer runs', async () => {
    const { out } = await run('rules', 'explain', '--rules', RULES, '--route', '/transfer', '--method', 'POST', '--sql', SQL, '--json');
    const parsed = JSON.parse(out) as { action: string; risk: { id: string; level: string; applies: boolean }[] };
    expect(parsed.action).toBe('monitor');
    expect(parsed.risk.find((r) => r.id === 'bank.transfer-risk')).toMatchObject({ level: 'low', applies: false });
  });

  it('the fourth transfer in the window: frequency counts this call', async () => {
    const { out } = await run('rules', 'explain', '--rules', RULES, '--route', '/transfer', '--method', 'POST', '--sql', SQL, '--signal', 'frequency=3');
    expect(out).toContain('✓ frequency(per=user, window=600s, at_least=4) = 4 → medium');
    expect(out).toContain('decision: step_up (rule bank.transfer-burst)');
  });
});
