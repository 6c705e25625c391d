/**
 * End-to-end: direct `eval` on request input in the app's own file (issue #12 B5). Without the agent the
 * exploit runs code with the module's own `require`; with it the call is refused with the standard 403 and
 * nothing runs. Under the agent, direct eval keeps its meaning: local scope, sloppy vs strict variable
 * leakage, several or spread arguments, methods named `eval` and strings containing `eval(` untouched,
 * arithmetic typed by a user computed; a dependency under node_modules is not rewritten.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { call, fixture, logged, startApp, startBareAndGuarded, type RunningApp } from '../helpers/app.js';

const runId = randomBytes(4).toString('hex');
const marker = (who: string) => `/tmp/sg-eval-${runId}-${who}`;
const exploit = (m: string) => `require('fs').writeFileSync('${m}', 'x'), 1`;
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  ({ bare, guarded } = await startBareAndGuarded(fixture('eval-app.cjs')));
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  for (const who of ['bare', 'guarded']) rmSync(marker(who), { force: true });
});

const get = (app: RunningApp, path: string, expr: string) => call(app, 'GET', `${path}?expr=${encodeURIComponent(expr)}`);

describe('direct eval of request input', () => {
  it('runs code without the agent; with it, the standard 403 and nothing runs', async () => {
    const plain = await get(bare, '/calc', exploit(marker('bare')));
    expect(plain.text).toBe('1');
    expect(existsSync(marker('bare'))).toBe(true);

    const reply = await get(guarded, '/calc', exploit(marker('guarded')));
    expect(reply.status).toBe(403);
    expect(reply.headers.get('content-type')).toBe('application/problem+json');
    expect(existsSync(marker('guarded'))).toBe(false);
    await logged(guarded, /attack code-injection blocked .*op=eval source=query\.expr.* GET \/calc/);
    // The agent's own first-use loads while judging (detectors, step-up service) are not the app's fs calls.
    expect(guarded.stderr()).not.toMatch(/ran after its request/);
  });

  it('reads a local variable from input: refused (input that names the program\'s own variables is code)', async () => {
    expect((await get(bare, '/calc', 'rate + 1')).text).toBe('3');
    expect((await get(guarded, '/calc', 'rate + 1')).status).toBe(403);
  });

  it('arithmetic typed by a user computes exactly as without the agent', async () => {
    for (const expr of ['1 + 2 * 3', '(1 + 2) * 3', '10 / 4', '2 ** 10', '7 % 3', '1 < 2 ? 5 : 6', '0x1f | 0b100', '-3.5e2', '  42  ']) {
      const [p, g] = await Promise.all([get(bare, '/calc', expr), get(guarded, '/calc', expr)]);
      expect(g.status, expr).toBe(200);
      expect(g.text, expr).toBe(p.text);
    }
  });

  it('keeps direct eval\'s meaning: local scope, strictness, arguments, methods named eval, strings', async () => {
    const [p, g] = await Promise.all([call(bare, 'GET', '/semantics'), call(guarded, 'GET', '/semantics')]);
    const plain = JSON.parse(p.text) as Record<string, unknown>;
    const underAgent = JSON.parse(g.text) as Record<string, unknown>;
    expect(plain).toMatchObject({ scope: 42, sloppy: 'number', strict: 'undefined', args: 'undefined,,7,3,function', method: 'method:1', shorthand: 'shorthand:2', rewritten: false });
    // The one visible difference: the source text of a function that calls eval shows the routed arguments.
    expect({ ...underAgent, rewritten: false }).toEqual(plain);
    expect(underAgent.rewritten).toBe(true);
    // A dependency under node_modules is never rewritten.
    expect(underAgent.libRewritten).toBe(false);
    expect(guarded.stderr()).not.toMatch(/could not be rewritten/);
  });

  it('switched off with STEPGUARD_DISABLED_HOOKS=eval: nothing rewritten', async () => {
    const off = await startApp(fixture('eval-app.cjs'), { env: { STEPGUARD_RULES: '', STEPGUARD_MODE: 'block', STEPGUARD_DISABLED_HOOKS: 'eval' } });
    try {
      expect(JSON.parse((await call(off, 'GET', '/semantics')).text)).toMatchObject({ rewritten: false, scope: 42 });
    } finally {
      await off.stop();
    }
  });
});
