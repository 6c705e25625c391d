/**
 * One scripted run of the bank example for the trends tests: a vulnerability, two blocked attacks, a
 * challenged transfer, one wrong code, one right code and the retried transfer. The counts it produces are
 * listed in EXPECTED, so the metrics, the findings log, the CLI and the dashboard are checked against it.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO, startApp, type RunningApp } from './app.js';
import { challengeOf, resetBank, Session } from './bank.js';
import { PG_URL } from './services.js';

export const BANK = join(REPO, 'examples/bank/app.cjs');
export const ATTACK = "x' UNION SELECT email FROM accounts --";

export const EXPECTED = {
  attacksBlocked: 2,
  vulnerabilities: 1,
  challenged: 1,
  challenges: 1,
  failures: 1,
  verified: 1,
  grantsUsed: 1,
} as const;

export function bankEnv(storeDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    BANK_DB_URL: PG_URL,
    PORT: '0',
    STEPGUARD_MODE: 'block',
    STEPGUARD_RULES: join(REPO, 'examples/bank/rules.yaml'),
    STEPGUARD_STORE_DIR: storeDir,
    STEPGUARD_SECRET: 'test-secret-with-at-least-32-characters!!',
    ...extra,
  };
}

export async function startBank(storeDir: string, extra: Record<string, string> = {}): Promise<RunningApp> {
  await resetBank();
  return startApp(BANK, { env: bankEnv(storeDir, extra) });
}

/** The scripted sequence; every step's HTTP answer is asserted so a changed app cannot skew the counts. */
export async function runScenario(app: RunningApp, user = 'alice'): Promise<Session> {
  const alice = await new Session(app, user).login();
  await alice.enroll();
  expect((await alice.send('GET', '/payees?q=bob')).status).toBe(200);
  expect((await alice.send('GET', `/payees?q=${encodeURIComponent(ATTACK)}`)).status).toBe(403);
  expect((await alice.send('GET', `/payees?q=${encodeURIComponent(ATTACK + ' ')}`)).status).toBe(403);
  const first = await alice.send('POST', '/transfer', { to: 'bob', amount: 5 });
  expect(first.status).toBe(401);
  const challenge = challengeOf(first);
  const wrong = alice.code() === '000000' ? '111111' : '000000';
  expect((await alice.verify(challenge, wrong)).status).toBe(401);
  expect((await alice.verify(challenge, alice.code())).status).toBe(200);
  expect((await alice.send('POST', '/transfer', { to: 'bob', amount: 5 })).status).toBe(200);
  return alice;
}
