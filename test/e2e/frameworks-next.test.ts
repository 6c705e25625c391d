/**
 * Next.js API routes (pages/api, Next 15) served by Next's production request handler under the agent, against
 * a real PostgreSQL: req.query (query string and dynamic route segments) and req.body as Next parses them are
 * user input; an injection gets the standard 403 even where the route answers errors itself with a 500, a
 * step-up rule the 401 challenge; and the same interleaved-load oracles as frameworks-concurrency.test.ts.
 * The app (test/fixtures/next-app) is built here with `next build` when its build is missing or older than its
 * sources (a few minutes on a loaded 2-core machine).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, REPO, startApp, type RunningApp } from '../helpers/app.js';
import { resetPg, StatementLog } from '../helpers/db.js';
import { interleavedLoad } from '../helpers/framework-load.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';

const APP_DIR = join(REPO, 'test/fixtures/next-app');
const ATTACK = "x' OR '1'='1";
const DIR = mkdtempSync(join(tmpdir(), 'sg-frameworks-next-'));
const STORE = join(DIR, 'store');
const SECRET = 'frameworks-next-secret-0123456789abcdef';
const enc = encodeURIComponent;

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === '.next') continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

async function buildIfNeeded(): Promise<void> {
  if (!existsSync(join(APP_DIR, 'node_modules/next'))) throw new Error(`Next.js is not installed in ${APP_DIR}: run npm ci there (scripts/test-all.sh does)`);
  const buildId = join(APP_DIR, '.next/BUILD_ID');
  if (existsSync(buildId) && statSync(buildId).mtimeMs > newestSource(APP_DIR)) return;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [join(APP_DIR, 'node_modules/next/dist/bin/next'), 'build'], { cwd: APP_DIR, env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`next build failed (${code}):\n${out}`))));
  });
}

let app: RunningApp;
const findingsFile = join(DIR, 'findings.jsonl');

beforeAll(async () => {
  await requirePostgres();
  await resetPg();
  await buildIfNeeded();
  const { spawnSync } = await import('node:child_process');
  const enrolled = spawnSync(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'enroll', 'alice', '--store-dir', STORE], { env: { ...process.env, STEPGUARD_SECRET: SECRET }, encoding: 'utf8' });
  expect(enrolled.status, enrolled.stdout + enrolled.stderr).toBe(0);
  app = await startApp(fixture('next-server.cjs'), {
    timeoutMs: 60_000,
    env: {
      SG_PG_URL: PG_URL,
      SG_POOL_SIZE: '3',
      NEXT_TELEMETRY_DISABLED: '1',
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: join(REPO, 'test/fixtures/rules/vip-step-up-tagged.yaml'),
      STEPGUARD_CONFIG: join(REPO, 'test/fixtures/config/header-identity.config.cjs'),
      STEPGUARD_STORE_DIR: STORE,
      STEPGUARD_SECRET: SECRET,
      STEPGUARD_FINDINGS_FILE: findingsFile,
      STEPGUARD_LOG_FINDINGS: 'false',
    },
  });
}, 600_000);
afterAll(() => app?.stop());

describe('Next.js API routes', () => {
  it('names Next.js at start-up', () => {
    expect(app.stderr()).toMatch(/framework Next\.js \(next@15\.[^)]*\): request context and input covered/);
  });

  it.each([
    ['the query string', 'GET', '/api/find?name=alice', undefined],
    ['a dynamic route segment', 'GET', '/api/find/alice', undefined],
    ['a JSON body', 'POST', '/api/find', { name: 'alice' }],
  ] as const)('serves benign input in %s', async (_what, method, path, body) => {
    const reply = await call(app, method, path, { ...(body ? { body } : {}), headers: { 'x-rid': 'b1' } });
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ rid: 'b1', rows: [{ id: 1, name: 'alice' }] });
  });

  it.each([
    ['the query string', 'GET', `/api/find?name=${enc(ATTACK)}`, undefined],
    ['a dynamic route segment (the route answers errors with its own 500)', 'GET', `/api/find/${enc(ATTACK)}`, undefined],
    ['a JSON body', 'POST', '/api/find', { name: ATTACK }],
  ] as const)('answers an attack in %s with 403 problem+json; the statement never runs', async (_what, method, path, body) => {
    const log = new StatementLog('pg');
    log.mark();
    const reply = await call(app, method, path, body ? { body } : {});
    expect(reply.status).toBe(403);
    expect(reply.headers.get('content-type')).toBe('application/problem+json');
    expect(log.since()).not.toContain("OR '1'='1");
  });

  it('answers a step-up rule with the RFC 9470 challenge', async () => {
    const log = new StatementLog('pg');
    log.mark();
    const reply = await call(app, 'POST', '/api/find', { body: { name: 'vip' }, headers: { 'x-user': 'alice' } });
    expect(reply.status).toBe(401);
    expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_user_authentication"/);
    expect(log.since()).not.toContain("name = 'vip'");
  });

  it('60 requests in flight at once: every attack refused, every benign one served, each finding names its request', async () => {
    const { problems, refused } = await interleavedLoad(app, { n: 60, graphql: false, prefix: '/api/find', findingsFile });
    expect(problems).toEqual([]);
    expect(refused).toBe(30);
  });
});
