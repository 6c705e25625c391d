/**
 * End-to-end: `OTEL_METRICS_EXPORTER=prometheus` serves the agent's metrics on loopback, including the
 * inspection-duration histogram the agent aggregates itself (src/telemetry/inspection-durations.ts) next to the
 * SDK's own instruments: a scrape shows its buckets, count and sum per sink kind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, REPO, startApp, type RunningApp } from '../helpers/app.js';

let app: RunningApp;
let metricsPort: number;
const dir = mkdtempSync(join(tmpdir(), 'sg-prometheus-'));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  metricsPort = await freePort();
  app = await startApp(fixture('config-app.cjs'), {
    env: {
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: join(REPO, 'test/fixtures/rules/config-wipe.yaml'),
      STEPGUARD_STORE_DIR: dir,
      STEPGUARD_SECRET: 'prometheus-test-secret-with-at-least-32-chars!!',
      SG_CONFIG_DIR: dir,
      OTEL_METRICS_EXPORTER: 'prometheus',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort),
    },
  });
});

afterAll(async () => {
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('metrics for Prometheus', () => {
  it('a scrape shows the inspection-duration histogram per sink kind and the finding counter', async () => {
    for (let i = 0; i < 3; i++) expect((await call(app, 'GET', `/mixed/page?n=${i}`)).status).toBe(200);
    const scrape = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const html = (name: string) => new RegExp(`^stepguard_inspection_duration_${name}\\{[^}]*stepguard_sink="html"[^}]*\\} (\\S+)`, 'm').exec(scrape)?.[1];
    // Every HTML response of the three was judged (they hold `<`); the heads once (the route's head repeats).
    expect(Number(html('count'))).toBeGreaterThanOrEqual(3);
    expect(Number(html('sum'))).toBeGreaterThan(0);
    const buckets = [...scrape.matchAll(/^stepguard_inspection_duration_bucket\{[^}]*stepguard_sink="html"[^}]*le="([^"]+)"[^}]*\} (\S+)/gm)];
    expect(buckets.map((m) => m[1])).toContain('+Inf');
    expect(Number(buckets.find((m) => m[1] === '+Inf')![2])).toBe(Number(html('count')));
    expect(scrape).toMatch(/^stepguard_findings_total\{[^}]*security_rule_name="insecure-config"/m);
  });
});
