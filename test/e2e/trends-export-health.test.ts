/**
 * Export that tells: with the OTLP endpoint closed, requests are served as usual, the agent says once that
 * export is failing, and once that it recovered when the endpoint comes up; the dropped spans are counted in
 * the `stepguard.telemetry.dropped` metric that then arrives.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import net from 'node:net';
import { call, fixture, startApp, type RunningApp } from '../helpers/app.js';
import { OtlpMetricsReceiver } from '../helpers/otlp-metrics-receiver.js';
import { MYSQL_URL, PG_URL, requirePostgres } from '../helpers/services.js';

let app: RunningApp;
const receiver = new OtlpMetricsReceiver();

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function until(what: string, probe: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr:\n${app.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

beforeAll(async () => {
  await requirePostgres();
});

afterAll(async () => {
  await app?.stop();
  await receiver.stop().catch(() => undefined);
});

it('says once that export fails and once that it recovered; requests are unaffected; drops are counted', async () => {
  const port = await freePort();
  app = await startApp(fixture('express-app.cjs'), {
    env: {
      SG_PG_URL: PG_URL,
      SG_MYSQL_URL: MYSQL_URL,
      STEPGUARD_RULES: '',
      OTEL_SERVICE_NAME: 'export-health',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_METRIC_EXPORT_INTERVAL: '300',
      STEPGUARD_LOG_FINDINGS: 'false',
    },
  });
  for (let i = 0; i < 5; i++) {
    const reply = await call(app, 'GET', `/sql/pg/number?q=${encodeURIComponent(`${i} OR 1=1`)}`);
    expect(reply.status).toBe(200); // monitor mode: served as usual while export fails
  }
  await until('the failure notice', () => app.stderr().includes('export of spans (OTEL_TRACES_EXPORTER=otlp) is failing'));
  for (let i = 0; i < 5; i++) await call(app, 'GET', `/sql/pg/number?q=${encodeURIComponent(`${i} OR 2=2`)}`);
  expect(count(app.stderr(), 'export of spans (OTEL_TRACES_EXPORTER=otlp) is failing')).toBe(1);

  // The endpoint comes up on the same port.
  await receiver.start(port);
  await call(app, 'GET', `/sql/pg/number?q=${encodeURIComponent('9 OR 1=1')}`);
  await until('the recovery notice', () => app.stderr().includes('export of spans (OTEL_TRACES_EXPORTER=otlp) recovered'));
  await until('the dropped-spans metric', () => receiver.series('export-health', 'stepguard.telemetry.dropped').some((s) => s.attributes['stepguard.signal'] === 'spans' && s.value > 0));
  await new Promise((r) => setTimeout(r, 700));
  expect(count(app.stderr(), 'is failing')).toBeLessThanOrEqual(2); // spans once; metrics at most once
  expect(count(app.stderr(), 'export of spans (OTEL_TRACES_EXPORTER=otlp) is failing')).toBe(1);
  expect(count(app.stderr(), 'export of spans (OTEL_TRACES_EXPORTER=otlp) recovered')).toBe(1);
});
