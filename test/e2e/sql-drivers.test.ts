/**
 * End-to-end: the classic `mysql` driver against MariaDB and `postgres` (porsager) against PostgreSQL, in a
 * vulnerable Express app. Each exploit — a tautology that returns every user, a stacked statement that writes
 * to the audit table — is first shown to work without the agent, then refused in block mode with an opaque
 * 403 problem+json and no effect. Benign input gets the same answer with and without the agent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, fixture, startApp, type Reply, type RunningApp } from '../helpers/app.js';
import { auditMarkers, clearAudit, resetMysql, resetPg } from '../helpers/db.js';
import { MYSQL_URL, PG_URL, requireMysql, requirePostgres } from '../helpers/services.js';

const env = { SG_PG_URL: PG_URL, SG_MYSQL_URL: MYSQL_URL, STEPGUARD_RULES: '' };
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  await Promise.all([requirePostgres(), requireMysql()]);
  await Promise.all([resetPg(), resetMysql()]);
  [bare, guarded] = await Promise.all([
    startApp(fixture('sql-drivers-app.cjs'), { agent: false, env }),
    startApp(fixture('sql-drivers-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
});

const send = (app: RunningApp, route: string, q: string, viaBody: boolean): Promise<Reply> =>
  viaBody ? call(app, 'POST', route, { body: { q } }) : call(app, 'GET', `${route}?q=${encodeURIComponent(q)}`);

function expectOpaque403(reply: Reply): void {
  expect(reply.status).toBe(403);
  expect(reply.headers.get('content-type')).toBe('application/problem+json');
  expect(Object.keys(reply.json() as object).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
  expect(reply.text).not.toMatch(/sql|inject|select|stack|stepguard\./i);
}

const rowCount = (reply: Reply) => (reply.json() as { rows: unknown[] }).rows.length;

const cases = [
  { driver: 'mysql', route: '/mysql', db: 'mysql' },
  { driver: 'postgres (sql.unsafe)', route: '/postgres', db: 'pg' },
  { driver: 'postgres (nested unsafe fragment)', route: '/postgres-fragment', db: 'pg' },
] as const;

describe.each(cases)('$driver', ({ route, db }) => {
  it('tautology: every user without the agent, refused with it', async () => {
    const payload = "' OR '1'='1";
    const withoutAgent = await send(bare, route, payload, false);
    expect(withoutAgent.status).toBe(200);
    expect(rowCount(withoutAgent)).toBe(3);
    expectOpaque403(await send(guarded, route, payload, false));
  });

  it('stacked statement: writes to the audit table without the agent, refused with it (nothing written)', async () => {
    const payload = "x'; INSERT INTO audit VALUES ('pwned'); SELECT id, name FROM users WHERE name = 'x";
    await clearAudit(db);
    const withoutAgent = await send(bare, route, payload, true);
    expect(withoutAgent.status, withoutAgent.text).toBe(200);
    expect(await auditMarkers(db)).toContain('pwned');

    await clearAudit(db);
    expectOpaque403(await send(guarded, route, payload, true));
    await new Promise((r) => setTimeout(r, 100));
    expect(await auditMarkers(db)).not.toContain('pwned');
  });

  it.each(['alice', 'Zoë', "O'Brien", 'bob smith', '1 OR 1=1 is a string here'])('benign %j: same answer with and without the agent', async (payload) => {
    // The app escapes the quote itself for O'Brien-style input: doubled quotes stay inside the literal.
    const value = payload.split("'").join("''");
    const [plain, protectedReply] = await Promise.all([send(bare, route, value, false), send(guarded, route, value, false)]);
    expect(protectedReply.status).toBe(plain.status);
    expect(protectedReply.text).toBe(plain.text);
  });
});

describe('reports', () => {
  it('every refusal was logged as an attack through the right driver', () => {
    const attacks = guarded.stderr().split('\n').filter((l) => l.includes('attack sql-injection blocked'));
    expect(attacks.filter((l) => l.includes('op=mysql.query'))).toHaveLength(2);
    expect(attacks.filter((l) => l.includes('op=postgres.unsafe'))).toHaveLength(2);
    expect(attacks.filter((l) => l.includes('op=postgres.sql'))).toHaveLength(2);
    expect(attacks).toHaveLength(6);
  });
});
