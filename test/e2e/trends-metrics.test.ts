/**
 * Metrics on the wire: the bank example under the agent exports to a loopback OTLP receiver over both
 * protocols, and after the scripted run of attacks and step-ups every counter holds exactly the expected
 * value, with bounded attributes only (no user id, no path, no input).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningApp } from '../helpers/app.js';
import { OtlpMetricsReceiver, type Series } from '../helpers/otlp-metrics-receiver.js';
import { requirePostgres } from '../helpers/services.js';
import { EXPECTED, runScenario, startBank } from '../helpers/trends-scenario.js';

const receiver = new OtlpMetricsReceiver();
let endpoint: string;
const apps: RunningApp[] = [];

beforeAll(async () => {
  await requirePostgres();
  endpoint = await receiver.start();
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await receiver.stop();
});

const total = (list: Series[], where: (s: Series) => boolean = () => true) => list.filter(where).reduce((n, s) => n + s.value, 0);

describe.each(['http/json', 'http/protobuf'])('metrics over OTLP %s', (protocol) => {
  const service = `bank-metrics-${protocol.replace('/', '-')}`;

  it('count exactly the scripted attacks, vulnerabilities and step-ups', async () => {
    const app = await startBank(mkdtempSync(join(tmpdir(), 'sg-metrics-')), {
      OTEL_SERVICE_NAME: service,
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_METRIC_EXPORT_INTERVAL: '200',
    });
    apps.push(app);
    await runScenario(app);
    const get = (metric: string) => receiver.series(service, metric);
    await receiver.waitFor('the grants-used counter', () => total(get('stepguard.step_up.grants_used')) === EXPECTED.grantsUsed);
    // One more export so that every counter reflects the whole run.
    const seen = receiver.exports;
    await receiver.waitFor('another export', () => receiver.exports > seen + 1);

    const findings = get('stepguard.findings');
    expect(findings.find((s) => s.attributes['stepguard.kind'] === 'attack')).toEqual({
      service,
      metric: 'stepguard.findings',
      unit: '{finding}',
      attributes: {
        'security_rule.name': 'sql-injection',
        'security_rule.category': 'injection',
        'stepguard.kind': 'attack',
        'stepguard.outcome': 'blocked',
        'stepguard.sink': 'sql',
        'http.route': '/payees',
      },
      value: EXPECTED.attacksBlocked,
    });
    expect(total(findings, (s) => s.attributes['stepguard.kind'] === 'vulnerability' && s.attributes['security_rule.name'] === 'sql-unparameterised')).toBe(EXPECTED.vulnerabilities);
    expect(total(findings, (s) => s.attributes['stepguard.outcome'] === 'challenged' && s.attributes['security_rule.name'] === 'transfer-step-up' && s.attributes['http.route'] === '/transfer')).toBe(EXPECTED.challenged);
    expect(total(findings)).toBe(EXPECTED.attacksBlocked + EXPECTED.vulnerabilities + EXPECTED.challenged);

    const rule = { 'security_rule.name': 'transfer-step-up' };
    expect(get('stepguard.step_up.challenges').map((s) => [s.attributes, s.value])).toEqual([[rule, EXPECTED.challenges]]);
    expect(get('stepguard.step_up.verifications').map((s) => [s.attributes, s.value])).toEqual([[rule, EXPECTED.verified]]);
    expect(get('stepguard.step_up.failures').map((s) => [s.attributes, s.value])).toEqual([[{ ...rule, 'stepguard.step_up.reason': 'invalid' }, EXPECTED.failures]]);
    expect(get('stepguard.step_up.grants_used').map((s) => [s.attributes, s.value])).toEqual([[rule, EXPECTED.grantsUsed]]);
    expect(total(get('stepguard.step_up.lockouts'))).toBe(0);

    const durations = get('stepguard.inspection.duration');
    const sql = durations.find((s) => s.attributes['stepguard.sink'] === 'sql')!;
    expect(sql.unit).toBe('s');
    expect(sql.value).toBeGreaterThanOrEqual(5); // every judged statement of the run
    expect(sql.sum!).toBeGreaterThan(0);
    expect(get('stepguard.telemetry.dropped').map((s) => s.attributes['stepguard.signal']).sort()).toEqual(['findings_log', 'metrics', 'spans']);

    // Bounded cardinality: no user ids, client addresses, paths or input in any metric attribute.
    const wire = receiver.rawBodies.join('\n');
    for (const forbidden of ['alice', '127.0.0.1', 'user.id', 'url.path', 'client.address', 'UNION']) expect(wire).not.toContain(forbidden);
  });
});

it('both protocols were really used', () => {
  expect([...receiver.contentTypes].sort()).toEqual(['application/json', 'application/x-protobuf']);
});
