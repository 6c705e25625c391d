/**
 * Hot reload: the rules file is edited while the app serves a steady load. No request fails, the new rule
 * is in force within a second, and an invalid edit keeps the previous rules and says why.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, logged, startApp, type RunningApp } from '../helpers/app.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { resetPg } from '../helpers/db.js';
import { MYSQL_URL, PG_URL, requirePostgres } from '../helpers/services.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-reload-'));
const file = join(dir, 'rules.yaml');
const receiver = new OtlpReceiver();
let app: RunningApp;

const policy = (statement: string) =>
  ['ruleset: reload-test', 'rules:', '  - id: no-carol', '    title: Nobody looks up carol', '    category: policy', `    when: { sink: sql, statement: "${statement}" }`, '    action: block', ''].join('\n');

/** Editors replace files: write a temp file and rename it over the original. */
function edit(text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

beforeAll(async () => {
  await requirePostgres();
  await resetPg();
  writeFileSync(file, policy("* WHERE name = 'nobody'"));
  const otlp = await receiver.start();
  app = await startApp(fixture('express-app.cjs'), {
    env: {
      SG_PG_URL: PG_URL,
      SG_MYSQL_URL: MYSQL_URL,
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: file,
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    },
  });
});

afterAll(async () => {
  await app?.stop();
  await receiver.stop();
});

describe('editing the rules file while the app serves', () => {
  it('applies a valid edit within a second without failing a request, and keeps the last good rules on an invalid one', async () => {
    // Steady background load on a route the rules never touch: every response must be a 200.
    let running = true;
    const statuses: number[] = [];
    const errors: string[] = [];
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (running) {
          try {
            statuses.push((await call(app, 'GET', '/sql/pg/string?q=alice')).status);
          } catch (error) {
            errors.push(String(error));
          }
        }
      }),
    );

    expect((await call(app, 'GET', '/sql/pg/string?q=carol')).status).toBe(200);
    edit(policy("* WHERE name = 'carol'"));
    const editedAt = Date.now();
    let inForceAfter = -1;
    while (Date.now() - editedAt < 1000) {
      if ((await call(app, 'GET', '/sql/pg/string?q=carol')).status === 403) {
        inForceAfter = Date.now() - editedAt;
        break;
      }
    }
    expect(inForceAfter, 'the edited rule was not in force within a second').toBeGreaterThanOrEqual(0);

    // An invalid edit: reported with file:line:column, previous rules stay in force.
    edit(policy("* WHERE name = 'carol'").replace('action: block', 'action: blok'));
    await logged(app, 'rules not reloaded', 3000);
    expect(app.stderr()).toContain(`${file}:7:13: rules[0].action: expected one of monitor, step_up, block, got "blok" (did you mean "block"?)`);
    expect(app.stderr()).toContain('keeping the previous');
    expect((await call(app, 'GET', '/sql/pg/string?q=carol')).status).toBe(403);
    // Monitor-mode fallback does not happen on reload: the shipped injection rules still block.
    expect((await call(app, 'GET', `/sql/pg/string?q=${encodeURIComponent("' OR '1'='1")}`)).status).toBe(403);

    // The load must have overlapped both edits: let it serve a few more requests before stopping it (a count,
    // not a rate: a loaded machine serves fewer per second).
    const servedBefore = statuses.length;
    const loadDeadline = Date.now() + 20_000;
    while ((statuses.length <= 20 || statuses.length < servedBefore + 4) && Date.now() < loadDeadline) await new Promise((r) => setTimeout(r, 20));
    running = false;
    await load;
    expect(errors).toEqual([]);
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const spans = await receiver.waitFor((s) => s.filter((x) => x.name === 'stepguard.rules.reload').length >= 2);
    const reloads = spans.filter((x) => x.name === 'stepguard.rules.reload').map((x) => x.attributes['stepguard.rules.result']);
    expect(reloads).toContain('applied');
    expect(reloads).toContain('rejected');
  });
});
