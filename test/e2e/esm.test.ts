/**
 * ES-module apps under `node --import stepguard/register`: pg and mysql2 imported with `import` (including
 * `mysql2/promise`), and `node:child_process` / `node:fs` named imports, are protected; the preload starts
 * once. Apps the agent cannot fully protect are told so at start-up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, fixture, REPO, startApp, type RunningApp } from '../helpers/app.js';
import { resetMysql, resetPg, StatementLog } from '../helpers/db.js';
import { MYSQL_URL, PG_URL, requireMysql, requirePostgres } from '../helpers/services.js';

const env = { SG_PG_URL: PG_URL, SG_MYSQL_URL: MYSQL_URL, STEPGUARD_RULES: '', STEPGUARD_MODE: 'block' };
const ATTACK = encodeURIComponent("' OR '1'='1");
const apps: RunningApp[] = [];

beforeAll(async () => {
  await Promise.all([requirePostgres(), requireMysql()]);
  await Promise.all([resetPg(), resetMysql()]);
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
});

describe.each([
  ['the package name (exports map, import condition)', ['--import', 'stepguard/register']],
  ['the built file', ['--import', `${REPO}/dist/src/register-esm.mjs`]],
])('an ESM app started with --import via %s', (_how, nodeArgs) => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startApp(fixture('esm-app.mjs'), { agent: false, nodeArgs, env });
    apps.push(app);
  });

  it('starts the agent exactly once and says nothing about missing coverage', () => {
    expect(app.stderr().split('[stepguard] active:').length - 1).toBe(1);
    expect(app.stderr()).not.toContain('NOT protected');
  });

  it.each([['pg'], ['mysql']] as const)('refuses SQL injection through %s imported with `import`', async (db) => {
    const log = new StatementLog(db);
    expect((await call(app, 'GET', `/${db}?q=alice`)).json()).toEqual({ rows: [{ id: 1, name: 'alice' }] });
    log.mark();
    const reply = await call(app, 'GET', `/${db}?q=${ATTACK}`);
    expect(reply.status).toBe(403);
    await new Promise((r) => setTimeout(r, 50));
    expect(log.since()).not.toContain("OR '1'='1");
  });

  it('refuses shell injection through a named import of node:child_process', async () => {
    expect((await call(app, 'GET', '/shell?q=hello')).json()).toEqual({ stdout: 'hello\n' });
    expect((await call(app, 'GET', `/shell?q=${encodeURIComponent('a; id')}`)).status).toBe(403);
  });

  it('leaves unrelated named imports working (node:fs/promises)', async () => {
    expect((await call(app, 'GET', '/read')).status).toBe(200);
  });
});

describe('apps the agent cannot fully protect are told so at start-up', () => {
  it('an ESM app started with --require only', async () => {
    const app = await startApp(fixture('esm-app.mjs'), { env });
    apps.push(app);
    expect(app.stderr()).toContain('esm-app.mjs is an ES module: packages it imports (pg, mysql2, …) are NOT protected with --require');
    expect(app.stderr()).toContain('node --import stepguard/register');
    // Builtins are covered either way.
    expect((await call(app, 'GET', `/shell?q=${encodeURIComponent('a; id')}`)).status).toBe(403);
  });

  it('a bundled app', async () => {
    const app = await startApp(fixture('bundle-like.cjs'), { env });
    apps.push(app);
    expect(app.stderr()).toContain('looks like a webpack bundle');
    expect(app.stderr()).toContain('Mark pg, mysql2 and other drivers as externals');
    expect((await call(app, 'GET', '/')).text).toBe('bundled');
  });

});

describe('subpath entry points', () => {
  it('a CommonJS app that only requires mysql2/promise is protected', async () => {
    const app = await startApp(fixture('mysql-promise-only.cjs'), { env });
    apps.push(app);
    expect((await call(app, 'GET', '/?q=alice')).json()).toEqual({ rows: [{ id: 1, name: 'alice' }] });
    expect((await call(app, 'GET', `/?q=${ATTACK}`)).status).toBe(403);
  });
});
