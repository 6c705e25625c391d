/**
 * Apps that render refusals themselves (STEPGUARD_RESPOND=app): the agent only fails the call; the app
 * catches StepUpRequiredError / BlockedError and renders the standard response with stepUp.responseFor().
 * The user comes from `identify(req)` in a config file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, REPO, startApp, type RunningApp } from '../helpers/app.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';

let app: RunningApp;

beforeAll(async () => {
  await requirePostgres();
  app = await startApp(fixture('respond-app.cjs'), {
    env: {
      SG_PG_URL: PG_URL,
      STEPGUARD_MODE: 'block',
      STEPGUARD_CONFIG: join(REPO, 'test/fixtures/config/respond-app.config.cjs'),
      STEPGUARD_RULES: join(REPO, 'test/fixtures/rules/widgets.yaml'),
      STEPGUARD_STORE_DIR: mkdtempSync(join(tmpdir(), 'sg-respond-')),
      STEPGUARD_SECRET: 'respond-app-test-secret-0123456789abcdef',
    },
  });
});
afterAll(() => app?.stop());

describe('STEPGUARD_RESPOND=app', () => {
  it('lets the app render a step-up challenge with the standard header and fields', async () => {
    const reply = await call(app, 'DELETE', '/widgets/gear', { headers: { 'x-user': 'alice' } });
    expect(reply.status).toBe(401);
    expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_user_authentication", .*max_age="60"$/);
    expect(reply.json()).toMatchObject({ type: 'urn:stepguard:problem:step-up-required', rendered_by: 'app', hint: 'open your authenticator app', max_age: 60 });
  });

  it('lets the app render a block', async () => {
    const reply = await call(app, 'DELETE', `/widgets/${encodeURIComponent("x' OR '1'='1")}`, { headers: { 'x-user': 'alice' } });
    expect(reply.status).toBe(403);
    expect(reply.json()).toMatchObject({ title: 'Forbidden', rendered_by: 'app' });
  });

  it('without identify() finding a user, the operation is refused (403), not challenged', async () => {
    const reply = await call(app, 'DELETE', '/widgets/gear');
    expect(reply.status).toBe(403);
    expect(reply.json()).toMatchObject({ rendered_by: 'app' });
  });
});
