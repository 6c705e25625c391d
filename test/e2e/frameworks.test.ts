/**
 * The agent's 403 (block) and 401 (step-up challenge) reach the client the same way in Express 4 and 5,
 * Fastify, Koa and plain `http`, whatever the app's error handling would have done: framework default, its
 * own 500, nothing at all, or swallowing the error and answering 200. Input arrives through route params
 * and JSON bodies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, REPO, startApp, type RunningApp } from '../helpers/app.js';
import { resetPg, StatementLog } from '../helpers/db.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';

const FRAMEWORKS = ['express4', 'express5', 'fastify', 'koa', 'http'] as const;
const STYLES = ['default', '500', 'nothing', 'swallow'] as const;
const ATTACK = "x' OR '1'='1";
const STORE = mkdtempSync(join(tmpdir(), 'sg-frameworks-'));
const SECRET = 'frameworks-test-secret-0123456789abcdef';

beforeAll(async () => {
  await requirePostgres();
  await resetPg();
  // alice has an authenticator, so a step-up answers with a challenge (not "enroll first").
  const enrolled = spawnSync(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'enroll', 'alice', '--store-dir', STORE], { env: { ...process.env, STEPGUARD_SECRET: SECRET }, encoding: 'utf8' });
  expect(enrolled.status, enrolled.stdout + enrolled.stderr).toBe(0);
});

describe.each(FRAMEWORKS)('%s', (framework) => {
  describe.each(STYLES)('error style %s', (style) => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await startApp(fixture('frameworks.cjs'), {
        env: {
          SG_PG_URL: PG_URL,
          SG_FRAMEWORK: framework,
          SG_ERROR_STYLE: style,
          STEPGUARD_MODE: 'block',
          STEPGUARD_RULES: join(REPO, 'test/fixtures/rules/vip-step-up.yaml'),
          STEPGUARD_CONFIG: join(REPO, 'test/fixtures/config/header-identity.config.cjs'),
          STEPGUARD_STORE_DIR: STORE,
          STEPGUARD_SECRET: SECRET,
        },
      });
    });
    afterAll(() => app?.stop());

    it('serves benign requests as usual', async () => {
      const reply = await call(app, 'GET', '/find/alice');
      expect(reply.status).toBe(200);
      expect(reply.json()).toEqual({ rows: [{ id: 1, name: 'alice' }] });
    });

    it.each([
      ['a route parameter', 'GET', `/find/${encodeURIComponent(ATTACK)}`, undefined],
      ['a JSON body', 'POST', '/find', { name: ATTACK }],
    ] as const)('answers an attack in %s with 403 problem+json', async (_what, method, path, body) => {
      const log = new StatementLog('pg');
      log.mark();
      const reply = await call(app, method, path, body === undefined ? {} : { body });
      expect(reply.status).toBe(403);
      expect(reply.headers.get('content-type')).toBe('application/problem+json');
      expect((reply.json() as { title: string }).title).toBe('Forbidden');
      expect(log.since()).not.toContain("OR '1'='1");
      // The connection stays usable (keep-alive) and the next request is normal.
      expect((await call(app, 'GET', '/find/bob')).status).toBe(200);
    });

    it('answers a step-up rule with the RFC 9470 challenge, and the statement does not run', async () => {
      const log = new StatementLog('pg');
      log.mark();
      const reply = await call(app, 'GET', '/find/vip', { headers: { 'x-user': 'alice' } });
      expect(reply.status).toBe(401);
      expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_user_authentication", .*max_age="60"$/);
      expect(reply.json()).toMatchObject({ type: 'urn:stepguard:problem:step-up-required', status: 401, max_age: 60 });
      expect(log.since()).not.toContain("name = 'vip'");
    });
  });
});
