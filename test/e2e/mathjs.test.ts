/**
 * End-to-end: code injection through mathjs's expression parser (issue #12 B5). mathjs 3.10.1 lets
 * `cos.constructor("…")()` reach the Function constructor; the generic Function hook already refuses it,
 * because the source compiled is found inside the request input (`source-in-input`). No mathjs hook is
 * needed — this test is the proof. Ordinary expressions, on both mathjs 3 and the current mathjs, compute.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { call, fixture, logged, startBareAndGuarded, type RunningApp } from '../helpers/app.js';

const runId = randomBytes(4).toString('hex');
const marker = (who: string) => `/tmp/sg-mathjs-${runId}-${who}`;
const exploit = (m: string) => `cos.constructor("process.mainModule.require('fs').writeFileSync('${m}', 'x'); return 1")()`;
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  ({ bare, guarded } = await startBareAndGuarded(fixture('mathjs-app.cjs'), { timeoutMs: 90_000 }));
}, 120_000); // the current mathjs takes seconds to load on a busy machine

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  for (const who of ['bare', 'guarded']) rmSync(marker(who), { force: true });
});

describe('mathjs evaluate: code injection', () => {
  it('cos.constructor("…")() runs code without the agent and gets the standard 403 with it', async () => {
    const plain = await call(bare, 'POST', '/calc', { body: { expr: exploit(marker('bare')) } });
    expect(plain.text).toBe('1');
    expect(existsSync(marker('bare'))).toBe(true);

    const reply = await call(guarded, 'POST', '/calc', { body: { expr: exploit(marker('guarded')) } });
    expect(reply.status).toBe(403);
    expect(reply.headers.get('content-type')).toBe('application/problem+json');
    expect(existsSync(marker('guarded'))).toBe(false);
    await logged(guarded, /attack code-injection blocked .*source=body\.expr.* POST \/calc/);
  });

  it.each(['/calc', '/calc13'])('%s: ordinary expressions compute as without the agent', async (route) => {
    for (const expr of ['2 + 3 * 4', 'sqrt(16) + cos(0)', '5 cm to inch', 'det([1, 2; 3, 4])', 'x = 3; x ^ 2', '1e3 / 7', 'max(1, 5, 3) > 4 ? 1 : 0', 'pi * 2^2']) {
      const [p, g] = await Promise.all([call(bare, 'POST', route, { body: { expr } }), call(guarded, 'POST', route, { body: { expr } })]);
      expect(g.status, expr).toBe(p.status);
      expect(g.text, expr).toBe(p.text);
    }
  });
});
