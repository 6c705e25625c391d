/**
 * End-to-end: insecure configuration findings (issue #12 B6) on a real Express app in block mode. Each is a
 * vulnerability: reported once per route and reason, never refused — every response is the app's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, REPO, startApp, type RunningApp } from '../helpers/app.js';

let app: RunningApp;
const dir = mkdtempSync(join(tmpdir(), 'sg-config-'));

beforeAll(async () => {
  app = await startApp(fixture('config-app.cjs'), {
    env: {
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: join(REPO, 'test/fixtures/rules/config-wipe.yaml'),
      STEPGUARD_STORE_DIR: dir,
      STEPGUARD_SECRET: 'config-test-secret-with-at-least-32-chars!!',
      SG_CONFIG_DIR: dir,
    },
  });
});

afterAll(async () => {
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The findings log lines of the insecure-config detector, waiting a little until there are `until` of them (or one
 * that `until` accepts): they reach this process through the app's stderr, after the response they belong to.
 */
async function configLines(until: number | ((line: string) => boolean)): Promise<string[]> {
  const lines = (): string[] => app.stderr().split('\n').filter((l) => l.includes('vulnerability insecure-config'));
  const done = () => (typeof until === 'number' ? lines().length >= until : lines().some(until));
  for (let i = 0; i < 40 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
  return lines();
}

describe('insecure configuration (block mode: reported, never refused)', () => {
  it('weak routes are reported, once per route and reason; strong routes are not', async () => {
    for (let i = 0; i < 3; i++) {
      const [weak, strong] = await Promise.all([call(app, 'GET', '/weak/page'), call(app, 'GET', '/strong/page')]);
      expect(weak.status).toBe(200);
      expect(strong.status).toBe(200);
      expect(weak.text).toContain('<h1>Welcome</h1>');
    }
    for (const [route, body] of [
      ['/weak/register', { username: 'ann', password: 'correct horse battery' }],
      ['/strong/register', { username: 'bob', password: 'correct horse battery' }],
      ['/weak/register', { username: 'cid', password: 'another-password' }],
    ] as const) {
      expect((await call(app, 'POST', route, { body })).status).toBe(200);
    }
    const lines = await configLines(6);
    const reasons = lines.map((l) => `${/reason=(\S+)/.exec(l)?.[1] ?? /source=(\S+)/.exec(l)?.[1]} ${/ (GET|POST) (\S+)/.exec(l)?.slice(1).join(' ')}`).sort();
    expect(reasons).toEqual([
      'body.password POST /weak/register',
      'cookie-without-httponly GET /weak/page',
      'cookie-without-samesite GET /weak/page',
      'missing-csp GET /weak/page',
      'missing-nosniff GET /weak/page',
      'predictable-token GET /weak/page',
    ]);
    // The weak hash names its input, masked; cookie values never reach the log.
    expect(lines.join('\n')).not.toContain('correct horse battery');
  });

  it('a head given to writeHead alone is judged too; hashing returns the same digest under the agent', async () => {
    const reply = await call(app, 'GET', '/weak/explicit');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('<p>explicit</p>');
    expect(reply.headers.get('set-cookie')).toBe('auth=abc123; Path=/');
    const digest = await call(app, 'POST', '/digest', { body: { password: 'pa55word!' } });
    expect(digest.text).toBe(createHash('sha1').update('pa55word!').digest('hex'));
    // The first test's 6, the explicit head's 4 and the digest's 1: waiting for fewer lets the digest's line, which
    // reaches this process through the app's stderr after its response, arrive too late.
    const lines = await configLines(11);
    const explicit = lines.filter((l) => l.includes('GET /weak/explicit')).map((l) => /reason=(\S+)/.exec(l)?.[1]).sort();
    expect(explicit).toEqual(['cookie-without-httponly', 'cookie-without-samesite', 'missing-csp', 'missing-nosniff']);
    expect(lines.some((l) => l.includes('POST /digest') && l.includes('source=body.password'))).toBe(true);
    expect(lines.join('\n')).not.toContain('abc123');
  });

  it('a route whose head changes is judged again when it does, and a repeated head is not', async () => {
    const before = (await configLines(0)).length;
    for (const query of ['?secure=1', '?secure=1', '', '', '?secure=1', '']) {
      const reply = await call(app, 'GET', `/mixed/page${query}`);
      expect(reply.status).toBe(200);
      expect(reply.text).toBe('<!doctype html><p>mixed</p>');
    }
    const lines = await configLines(before + 2);
    const mixed = lines.filter((l) => l.includes('GET /mixed/page')).map((l) => /reason=(\S+)/.exec(l)?.[1]).sort();
    // The secure head shows nothing; the weak one its two missing headers, once each however often it recurs.
    expect(mixed).toEqual(['missing-csp', 'missing-nosniff']);
  });

  it("a head that keeps repeating is read less often, and a change is still reported within 32 of the route's responses", async () => {
    const before = (await configLines(0)).length;
    const readsSoFar = async (): Promise<number> => ((await call(app, 'GET', '/sampled/reads')).json() as { reads: number }).reads;
    for (let i = 0; i < 40; i++) expect((await call(app, 'GET', '/sampled/page')).text).toBe('<!doctype html><p>sampled</p>');
    // Read at the 1st response (twice: once to compare, once to judge), then at the 2nd, 4th, 8th, 16th and 32nd
    // (each read that finds the same head leaves the next 1, 3, 7, 15, 31 unread): 7 reads, not 40.
    expect(await readsSoFar()).toBe(7);
    for (let i = 0; i < 32; i++) expect((await call(app, 'GET', '/sampled/page?weak=1')).status).toBe(200);
    const lines = (await configLines(before + 2)).slice(before);
    expect(lines.filter((l) => l.includes('GET /sampled/page')).map((l) => /reason=(\S+)/.exec(l)?.[1]).sort()).toEqual(['missing-csp', 'missing-nosniff']);
  });

  it("a response that answers getHeader itself is read through it, not from Node's own header table", async () => {
    const before = (await configLines(0)).length;
    // Its strong head first, then its weak one: only getHeader tells them apart (Node's table holds neither header).
    for (const query of ['', '', '?weak=1', '?weak=1']) expect((await call(app, 'GET', `/own-getheader${query}`)).text).toBe('<!doctype html><p>own</p>');
    const lines = (await configLines(before + 2)).slice(before);
    expect(lines.filter((l) => l.includes('GET /own-getheader')).map((l) => /reason=(\S+)/.exec(l)?.[1]).sort()).toEqual(['missing-csp', 'missing-nosniff']);
  });

  it('a sensitive operation reached without identity: refused by the step-up gate and the route reported', async () => {
    const reply = await call(app, 'POST', '/admin/wipe');
    expect(reply.status).toBe(403);
    expect((reply.json() as { title: string }).title).toBe('Authentication required');
    const wiped = (l: string) => l.includes('reason=anonymous-sensitive-operation') && l.includes('POST /admin/wipe');
    const lines = await configLines(wiped);
    expect(lines.some(wiped)).toBe(true);
  });
});
