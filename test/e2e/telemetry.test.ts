/**
 * Findings on the wire: a loopback OTLP/HTTP receiver gets what a real backend would (JSON and protobuf),
 * and the tests check names, attributes, parentage under an app's own OTel SDK, and redaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, fixture, startApp, type RunningApp } from '../helpers/app.js';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { resetPg } from '../helpers/db.js';
import { MYSQL_URL, PG_URL, requirePostgres } from '../helpers/services.js';

const receiver = new OtlpReceiver();
let receiverUrl: string;
const apps: RunningApp[] = [];

const otelEnv = (protocol: string, extra: Record<string, string> = {}) => ({
  SG_PG_URL: PG_URL,
  SG_MYSQL_URL: MYSQL_URL,
  OTEL_TRACES_EXPORTER: 'otlp',
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
  OTEL_BSP_SCHEDULE_DELAY: '50',
  STEPGUARD_RULES: '',
  ...extra,
});

const findings = (where: (s: ReceivedSpan) => boolean) => (spans: ReceivedSpan[]) => spans.filter((s) => s.name === 'stepguard.finding' && where(s));

beforeAll(async () => {
  await requirePostgres();
  await resetPg();
  receiverUrl = await receiver.start();
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await receiver.stop();
});

describe('finding spans over OTLP/HTTP JSON', () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startApp(fixture('express-app.cjs'), {
      env: otelEnv('http/json', { STEPGUARD_MODE: 'block', OTEL_SERVICE_NAME: 'json-app' }),
    });
    apps.push(app);
  });

  it("exports from the agent's own context: the exporter's HTTP call is never judged as the request's late sink call", async () => {
    for (let k = 0; k < 3; k++) {
      const reply = await call(app, 'GET', `/sql/pg/string?q=${encodeURIComponent(`' OR 'own${k}'='own${k}`)}`);
      expect(reply.status).toBe(403);
      const incident = (reply.json() as { instance: string }).instance.split(':').pop();
      const mine = findings((s) => s.attributes['stepguard.incident_id'] === incident);
      await receiver.waitFor((spans) => mine(spans).length > 0);
    }
    // The batch's timer and export used to run in the context of the request whose finding ended the span. (The
    // app's own work after the agent's 403 — express hashing an ETag for its error reply — is reported, by design.)
    const late = app.stderr().split('\n').filter((line) => line.includes('ran after its request'));
    expect(late.filter((line) => !line.includes('crypto.createHash ran after'))).toEqual([]);
  });

  it('exports a blocked attack with security_rule.*, request and redacted sink attributes', async () => {
    const reply = await call(app, 'GET', `/sql/pg/string?q=${encodeURIComponent("' OR 'hunter2'='hunter2")}`);
    expect(reply.status).toBe(403);
    const incident = (reply.json() as { instance: string }).instance.split(':').pop();
    const [span] = findings((s) => s.attributes['stepguard.incident_id'] === incident)(await receiver.waitFor((s) => findings((x) => x.attributes['stepguard.incident_id'] === incident)(s).length > 0));
    const a = span!.attributes;
    expect(span!.resource['service.name']).toBe('json-app');
    expect(span!.scope).toBe('stepguard');
    expect(span!.status.code).toBe(2);
    expect(a['security_rule.name']).toBe('sql-injection');
    expect(a['security_rule.uuid']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a['security_rule.category']).toBe('injection');
    expect(a['security_rule.ruleset.name']).toBe('stepguard-default');
    expect(a['security_rule.version']).toBe('1.0.0');
    expect(a['db.system.name']).toBe('postgresql');
    expect(a['db.query.text']).toBe('SELECT id, name FROM users WHERE name = ?');
    expect(a['http.request.method']).toBe('GET');
    expect(a['http.route']).toBe('/sql/:db/:context');
    expect(a['url.path']).toBe('/sql/pg/string');
    expect(a['client.address']).toBe('127.0.0.1');
    expect(String(a['code.stacktrace'])).toContain('express-app.cjs');
    expect(String(a['code.stacktrace'])).not.toContain('node_modules');
    expect(a['stepguard.action']).toBe('block');
    expect(a['stepguard.outcome']).toBe('blocked');
    expect(a['stepguard.kind']).toBe('attack');
    expect(a['stepguard.detector']).toBe('sql-injection');
    expect(a['stepguard.sink']).toBe('sql');
    expect(a['stepguard.operation']).toBe('pg.pool.query');
    expect(a['stepguard.source']).toBe('query.q');
    expect(a['stepguard.payload']).toBe("' ** '**'='**");
    // The raw input never left the process.
    expect(receiver.rawBodies.join('\n')).not.toContain('hunter2');
  });

  it('reports a concatenated benign input as a vulnerability, and nothing for a parameterised query', async () => {
    const vuln = await call(app, 'GET', '/sql/pg/string?q=carol');
    expect(vuln.status).toBe(200);
    const param = await call(app, 'GET', '/param/pg?name=carol');
    expect(param.status).toBe(200);
    const isVuln = findings((s) => s.attributes['stepguard.kind'] === 'vulnerability' && s.attributes['url.path'] === '/sql/pg/string');
    const vulnSpan = isVuln(await receiver.waitFor((s) => isVuln(s).length > 0))[0]!;
    expect(vulnSpan.attributes['security_rule.name']).toBe('sql-unparameterised');
    expect(vulnSpan.attributes['stepguard.outcome']).toBe('reported');
    expect(vulnSpan.attributes['stepguard.action']).toBe('monitor');
    expect(vulnSpan.status.code).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(findings((s) => s.attributes['url.path'] === '/param/pg')(receiver.spans)).toEqual([]);
  });
});

describe('finding spans over OTLP/HTTP protobuf (the default protocol)', () => {
  it('arrives decoded with the same attributes', async () => {
    const app = await startApp(fixture('express-app.cjs'), {
      env: otelEnv('http/protobuf', { OTEL_SERVICE_NAME: 'proto-app' }),
    });
    apps.push(app);
    const reply = await call(app, 'GET', `/sql/pg/number?q=${encodeURIComponent('1 OR 1=1')}`);
    expect(reply.status).toBe(200); // monitor mode (default): reported, not blocked
    const spans = await receiver.waitFor((s) => s.some((x) => x.resource['service.name'] === 'proto-app' && x.name === 'stepguard.finding'));
    const span = spans.find((x) => x.resource['service.name'] === 'proto-app' && x.attributes['stepguard.kind'] === 'attack')!;
    expect(span.attributes['stepguard.outcome']).toBe('reported');
    expect(span.attributes['stepguard.action']).toBe('monitor');
    expect(span.attributes['stepguard.mode']).toBe('monitor');
    expect(span.attributes['db.query.text']).toBe('SELECT id, name FROM users WHERE id = ?');
    expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('an app with its own OpenTelemetry SDK', () => {
  it('keeps its telemetry, and our finding is a child of its active span', async () => {
    const app = await startApp(fixture('otel-app.cjs'), {
      env: otelEnv('http/json', { APP_OTLP_URL: receiverUrl, STEPGUARD_SERVICE_NAME: 'agent-side' }),
    });
    apps.push(app);
    const reply = await call(app, 'GET', `/find?q=${encodeURIComponent("x' OR '1'='1")}`);
    const { traceId, spanId } = reply.json() as { traceId: string; spanId: string };
    const spans = await receiver.waitFor((s) => s.some((x) => x.name === 'app GET /find') && s.some((x) => x.traceId === traceId && x.name === 'stepguard.finding'));
    const ours = spans.find((x) => x.traceId === traceId && x.name === 'stepguard.finding')!;
    expect(ours.parentSpanId).toBe(spanId);
    expect(ours.resource['service.name']).toBe('agent-side');
    const theirs = spans.find((x) => x.name === 'app GET /find')!;
    expect(theirs.resource['service.name']).toBe('app-with-otel');
    // Our spans never went through the app's pipeline.
    expect(spans.filter((x) => x.name === 'stepguard.finding' && x.resource['service.name'] === 'app-with-otel')).toEqual([]);
  });
});
