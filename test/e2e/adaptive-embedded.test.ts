/**
 * Adaptive step-up on the embedded store (one instance, no Redis): the same signals over real HTTP and real
 * PostgreSQL, and the decision spans (findings log) carrying the level and the signals that fired.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, startApp, type RunningApp } from '../helpers/app.js';
import { resetBank } from '../helpers/bank.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';
import { Browser, sleep, trustedBrowser } from '../helpers/adaptive.js';

const BANK = join(REPO, 'examples/bank/app.cjs');
let app: RunningApp;
let findingsFile: string;

beforeAll(async () => {
  await requirePostgres();
  await resetBank();
  const dir = mkdtempSync(join(tmpdir(), 'sg-adaptive-embedded-'));
  findingsFile = join(dir, 'findings.jsonl');
  app = await startApp(BANK, {
    env: {
      BANK_DB_URL: PG_URL,
      PORT: '0',
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: join(REPO, 'test/fixtures/rules/adaptive.yaml'),
      STEPGUARD_REDIS_URL: '',
      STEPGUARD_SECRET: 'embedded-secret-with-at-least-32-characters',
      STEPGUARD_STORE_DIR: join(dir, 'store'),
      STEPGUARD_FINDINGS_FILE: findingsFile,
    },
  });
}, 60_000);

afterAll(async () => {
  await app?.stop();
});

describe('adaptive step-up on the embedded store', () => {
  it('a trusted device passes, a new one is challenged; the span names the level and the signal', async () => {
    const alice = await trustedBrowser(app, 'alice');
    await sleep(4500);
    expect((await alice.transfer()).status).toBe(200);
    const stranger = await new Browser(app, 'alice', '127.0.0.6').login();
    const challenged = await stranger.transfer();
    expect(challenged.status).toBe(401);
    expect(challenged.headers['www-authenticate']).toContain('acr_values="urn:stepguard:acr:otp"');
    await sleep(300); // the findings log is appended asynchronously
    const lines = readFileSync(findingsFile, 'utf8').trim().split('\n');
    const decision = lines.map((l) => JSON.parse(l) as Record<string, unknown>).reverse().find((l) => JSON.stringify(l).includes('transfer-new-device'));
    const text = JSON.stringify(decision);
    expect(text).toContain('"stepguard.risk.level":"medium"');
    expect(text).toContain('"stepguard.risk.signals":["new_device"]');
    expect(text).toContain('"stepguard.outcome":"challenged"');
  });

  it('the third transfer within the window steps up; after the window the next runs', async () => {
    const bob = await trustedBrowser(app, 'bob');
    await sleep(4500);
    expect((await bob.transfer()).status).toBe(200);
    expect((await bob.transfer()).status).toBe(200);
    const third = await bob.transfer();
    expect(third.status).toBe(401);
    await sleep(4500);
    expect((await bob.transfer()).status).toBe(200);
  });

  it('a session whose user the agent has not seen yet is answered 503 once, then works (documented)', async () => {
    const carol = new Browser(app, 'carol');
    expect((await carol.send('POST', '/login', { username: 'carol', password: 'carol-password' })).status).toBe(200);
    // Authentication runs as middleware: on arrival the session's user is unknown, so the transfer's signals are.
    const first = await carol.transfer();
    expect(first.status).toBe(503);
    expect(first.json().type).toBe('urn:stepguard:problem:step-up-unavailable');
    // That request taught the agent the session's user: the retry is decided on the signals.
    const retry = await carol.transfer();
    expect(retry.status).toBe(403); // new device → step-up, and carol never enrolled
    expect(retry.json().type).toBe('urn:stepguard:problem:enrollment-required');
  });
});
