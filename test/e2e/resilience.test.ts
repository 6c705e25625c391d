/**
 * The host never breaks: an agent bug, a malformed rule file, a bad setting, an unreachable OTLP endpoint
 * and an unsupported driver version each leave the app serving, with one clear message.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, logged, REGISTER, REPO, startApp, type RunningApp } from '../helpers/app.js';
import { resetMysql, resetPg } from '../helpers/db.js';
import { MYSQL_URL, PG_URL, requireMysql, requirePostgres } from '../helpers/services.js';

const env = { SG_PG_URL: PG_URL, SG_MYSQL_URL: MYSQL_URL, STEPGUARD_RULES: '' };
const ATTACK = `/sql/pg/string?q=${encodeURIComponent("' OR '1'='1")}`;
let app: RunningApp | undefined;

const count = (text: string, needle: string) => text.split(needle).length - 1;

beforeAll(async () => {
  await Promise.all([requirePostgres(), requireMysql()]);
  await Promise.all([resetPg(), resetMysql()]);
});

afterEach(async () => {
  await app?.stop();
  app = undefined;
});

describe('loading', () => {
  it('starts once even when the preload is required twice', async () => {
    app = await startApp(fixture('express-app.cjs'), { env, nodeArgs: ['--require', REGISTER] });
    expect(count(app.stderr(), '[stepguard] active:')).toBe(1);
    expect((await call(app, 'GET', '/hello')).status).toBe(200);
  });
});

describe('uploads (multer)', () => {
  it('judges uploaded file names and contents', async () => {
    app = await startApp(fixture('express-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } });
    const send = (name: string, content: string) => {
      const form = new FormData();
      form.append('file', new Blob([content]), name);
      return fetch(`${app!.url}/upload/pg`, { method: 'POST', body: form });
    };
    expect((await send('alice', 'bob')).status).toBe(200);
    expect((await send("x' OR '1'='1", 'bob')).status).toBe(403);
    expect((await send('alice', "x' OR '1'='1")).status).toBe(403);
  });
});

describe('the host app keeps serving', () => {
  it('when a detector throws: the call proceeds (fail open), one warning, then the detector is switched off', async () => {
    app = await startApp(fixture('broken-detector.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } });
    for (let i = 0; i < 12; i++) {
      const reply = await call(app, 'GET', ATTACK);
      expect(reply.status).toBe(200);
      expect((reply.json() as { rows: unknown[] }).rows.length).toBe(3);
    }
    // Logged at the tenth call; the last replies can still be read before it.
    await logged(app, 'detector sql-injection failed 10 times and is now disabled');
    expect(count(app.stderr(), 'detector sql-injection failed; the call proceeds')).toBe(1);
    expect(count(app.stderr(), 'detector sql-injection failed 10 times and is now disabled')).toBe(1);
    expect(app.stderr()).not.toMatch(/Uncaught|at Object\.<anonymous>/);
  });

  it('when a rule file is malformed: file:line:column and field are named, and the agent falls back to monitor mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-rules-'));
    const file = join(dir, 'custom.yaml');
    writeFileSync(file, ['ruleset: custom', 'rules:', '  - id: my-rule', '    title: Mine', '    category: injection', '    detector: sql-injection', '    action: blok', ''].join('\n'));
    app = await startApp(fixture('express-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block', STEPGUARD_RULES: file } });
    expect(app.stderr()).toContain(`${file}:7:13: rules[0].action: expected one of monitor, step_up, block, got "blok" (did you mean "block"?)`);
    expect(count(app.stderr(), 'running in MONITOR mode')).toBe(1);
    expect((await call(app, 'GET', '/hello')).status).toBe(200);
    // Monitor mode: the attack is reported, not blocked.
    expect((await call(app, 'GET', ATTACK)).status).toBe(200);
    await logged(app, 'attack sql-injection reported');
  });

  it('when a setting is invalid: the variable and the expected values are named', async () => {
    app = await startApp(fixture('express-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'blok' } });
    expect(app.stderr()).toContain('env STEPGUARD_MODE: expected monitor | block, got "blok"');
    expect((await call(app, 'GET', '/hello')).status).toBe(200);
  });

  it('when the OTLP endpoint is unreachable: requests are neither slowed nor broken', async () => {
    app = await startApp(fixture('express-app.cjs'), {
      env: { ...env, OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_BSP_SCHEDULE_DELAY: '10' },
    });
    const started = Date.now();
    for (let i = 0; i < 30; i++) {
      const reply = await call(app, 'GET', i % 2 ? ATTACK : '/sql/pg/string?q=alice');
      expect(reply.status).toBe(200);
    }
    expect(Date.now() - started).toBeLessThan(5000);
    expect(app.child.exitCode).toBeNull();
  });

  it('when a driver version is unsupported: announced loudly at start-up, and the app still works', async () => {
    app = await startApp(fixture('plain-sql.cjs'), {
      env: { ...env, SG_DRIVER: 'mysql2', SG_DRIVER_MODULE: join(REPO, 'test/versions/mysql2-0.15.8/node_modules/mysql2'), STEPGUARD_MODE: 'block' },
    });
    const reply = await call(app, 'GET', '/?q=alice');
    expect(reply.status).toBe(200);
    expect((reply.json() as { rows: unknown[] }).rows).toEqual([{ id: 1, name: 'alice' }]);
    expect(count(app.stderr(), 'mysql2@0.15.8 is NOT protected: stepguard supports mysql2 >=1.0.0 <4')).toBe(1);
  });
});
