/**
 * End-to-end: a vulnerable Express app against real PostgreSQL and MariaDB. Each exploit is first shown to
 * work without the agent (its effect is observed), then shown to be refused in block mode: 403 problem+json
 * that reveals nothing, and the database's own statement log proves the statement never arrived.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { call, fixture, startApp, type Reply, type RunningApp } from '../helpers/app.js';
import { auditMarkers, clearAudit, resetMysql, resetPg, StatementLog } from '../helpers/db.js';
import { MYSQL_URL, PG_URL, requireMysql, requirePostgres } from '../helpers/services.js';
import { readCorpus } from '../helpers/corpus.js';

const require = createRequire(import.meta.url);
const templates = require('../fixtures/apps/templates.cjs') as { sql: Record<string, string>; fill: (t: string, v: string) => string };

interface AttackCase {
  context: string;
  dialects: Array<'postgres' | 'mysql'>;
  effect: 'rows' | 'union' | 'stacked' | 'delay' | 'error' | 'login';
  payload: string;
}
interface BenignCase {
  context: string;
  payload: string;
}


const attacks = readCorpus<AttackCase>('sql-injection.attack.jsonl');
const benign = readCorpus<BenignCase>('sql-injection.benign.jsonl');
const DB_OF = { postgres: 'pg', mysql: 'mysql' } as const;

const appEnv = { SG_PG_URL: PG_URL, SG_MYSQL_URL: MYSQL_URL, STEPGUARD_RULES: '' };
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  await Promise.all([requirePostgres(), requireMysql()]);
  await Promise.all([resetPg(), resetMysql()]);
  [bare, guarded] = await Promise.all([
    startApp(fixture('express-app.cjs'), { agent: false, env: appEnv }),
    startApp(fixture('express-app.cjs'), { env: { ...appEnv, STEPGUARD_MODE: 'block' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
});

/** Alternates delivery: query string, JSON body, nested JSON body — all are user input. */
function send(app: RunningApp, db: string, context: string, payload: string, index: number): Promise<Reply> {
  const path = `/sql/${db}/${context}`;
  switch (index % 3) {
    case 0:
      return call(app, 'GET', `${path}?q=${encodeURIComponent(payload)}`);
    case 1:
      return call(app, 'POST', path, { body: { q: payload } });
    default:
      return call(app, 'POST', path, { body: { filter: { name: payload } } });
  }
}

async function exploitWorked(c: AttackCase, db: 'pg' | 'mysql', reply: Reply): Promise<boolean> {
  const body = reply.text;
  switch (c.effect) {
    case 'rows':
      return reply.status === 200 && (reply.json() as { rows: unknown[] }).rows.length >= 2;
    case 'login':
      return reply.status === 200 && (reply.json() as { rows: unknown[] }).rows.length >= 1;
    case 'union':
    case 'error':
      return body.includes('TOPSECRET-');
    case 'stacked':
      return (await auditMarkers(db)).includes('pwned');
    case 'delay':
      return (reply.json() as { ms: number }).ms >= 250;
  }
}

function expectOpaque403(reply: Reply): void {
  expect(reply.status).toBe(403);
  expect(reply.headers.get('content-type')).toBe('application/problem+json');
  const body = reply.json() as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
  expect(body.status).toBe(403);
  // Nothing about the agent's internals: no rule, detector, statement or stack.
  expect(reply.text).not.toMatch(/sql|inject|stepguard\.|detector|stack|select|\bat\s/i);
}

const cases = attacks.flatMap((c, i) => c.dialects.map((dialect) => ({ c, i, db: DB_OF[dialect] })));

describe('SQL injection corpus', () => {
  it('has at least 40 attacks covering the required techniques', () => {
    expect(attacks.length).toBeGreaterThanOrEqual(40);
    const effects = new Set(attacks.map((a) => a.effect));
    for (const e of ['rows', 'union', 'stacked', 'delay', 'login']) expect(effects).toContain(e);
    const contexts = new Set(attacks.map((a) => a.context));
    for (const ctx of ['string', 'number', 'order', 'like', 'login']) expect(contexts).toContain(ctx);
    expect(benign.length).toBeGreaterThanOrEqual(50);
  });

  it.each(cases.map(({ c, i, db }) => [`${db} ${c.context} ${c.effect}: ${c.payload}`, c, i, db] as const))(
    '%s',
    async (_name, c, i, db) => {
      await clearAudit(db);
      const withoutAgent = await send(bare, db, c.context, c.payload, i);
      expect(await exploitWorked(c, db, withoutAgent), `exploit should work without the agent: ${withoutAgent.text}`).toBe(true);

      await clearAudit(db);
      const log = new StatementLog(db);
      log.mark();
      const statement = templates.fill(templates.sql[c.context]!, c.payload);
      const withAgent = await send(guarded, db, c.context, c.payload, i);
      expectOpaque403(withAgent);
      // The server never received the statement.
      await new Promise((r) => setTimeout(r, 50));
      expect(log.since()).not.toContain(statement.slice(0, 200));
      expect(await auditMarkers(db)).not.toContain('pwned');
    },
  );
});

describe('benign input in block mode', () => {
  it.each(benign.map((b) => [b.payload, b] as const))('%s passes unchanged', async (_name, b) => {
    for (const db of ['pg', 'mysql'] as const) {
      const context = ['string', 'like', 'login'].includes(b.context) ? b.context : 'string';
      const path = `/escaped/${db}/${context}?q=${encodeURIComponent(b.payload)}`;
      const [plain, protectedReply] = await Promise.all([call(bare, 'GET', path), call(guarded, 'GET', path)]);
      expect(protectedReply.status).toBe(plain.status);
      expect(protectedReply.text).toBe(plain.text);
      const param = `/param/${db}?name=${encodeURIComponent(b.payload)}`;
      const [p1, p2] = await Promise.all([call(bare, 'GET', param), call(guarded, 'GET', param)]);
      expect(p2.status).toBe(200);
      expect(p2.text).toBe(p1.text);
    }
  });

  it('reported no attack for any benign input', () => {
    expect(guarded.stderr()).not.toMatch(/attack sql-injection .*(escaped|param)/);
    const attackLines = guarded.stderr().split('\n').filter((l) => l.includes('attack sql-injection'));
    expect(attackLines.every((l) => l.includes('/sql/'))).toBe(true);
  });
});
