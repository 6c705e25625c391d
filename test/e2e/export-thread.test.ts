/**
 * Spans leave through the export thread: a short-lived app under the agent sends its finding to a real
 * OTLP receiver, ends on its own while the receiver keeps the exporter's connection open (the thread must not
 * hold the app), and never loads the OTLP exporter in its own thread. With the thread switched off the same
 * app loads the exporter itself, which is what the first run shows it avoided.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { REGISTER, REPO, fixture } from '../helpers/app.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { OtlpMetricsReceiver } from '../helpers/otlp-metrics-receiver.js';

// An idle exporter connection outlives the test: an app that waited for it would show as a hang.
const receiver = new OtlpReceiver({ keepAliveTimeoutMs: 120_000 });
const metricsReceiver = new OtlpMetricsReceiver();
let url: string;
let metricsUrl: string;

beforeAll(async () => {
  url = await receiver.start();
  metricsUrl = await metricsReceiver.start();
});
afterAll(async () => {
  await receiver.stop();
  await metricsReceiver.stop();
});

function runOnce(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.env.SG_NODE_BINARY ?? process.execPath,
      ['--require', REGISTER, fixture('short-lived-app.cjs')],
      {
        cwd: REPO,
        timeout: 30_000,
        env: {
          ...process.env,
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_METRICS_EXPORTER: 'none',
          OTEL_EXPORTER_OTLP_ENDPOINT: url,
          // Longer than the run may take: the span must leave at exit (the agent flushes on beforeExit), and a
          // thread that kept the app alive would keep it until this timer fired.
          OTEL_BSP_SCHEDULE_DELAY: '120000',
          STEPGUARD_RULES: '',
          STEPGUARD_LOG_FINDINGS: 'false',
          ...env,
        },
      },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

const exporterModules = (stdout: string): string[] => JSON.parse(/EXPORTER_MODULES (.*)/.exec(stdout)?.[1] ?? 'null') as string[];
const otelModules = (stdout: string): string[] => JSON.parse(/OTEL_MODULES (.*)/.exec(stdout)?.[1] ?? 'null') as string[];

it.each(['http/protobuf', 'http/json'])("exports over %s from the thread, ends on its own, and loads no exporter in the app's thread", async (protocol) => {
  const service = `short-lived-${protocol.replace('/', '-')}`;
  const run = await runOnce({ OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_SERVICE_NAME: service });
  expect(run.stderr).not.toContain('export thread stopped');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('SERVED');
  expect(exporterModules(run.stdout)).toEqual([]);
  const spans = await receiver.waitFor((all) => all.some((s) => s.resource['service.name'] === service));
  const finding = spans.find((s) => s.resource['service.name'] === service)!;
  expect(finding.name).toBe('stepguard.finding');
  expect(finding.attributes['security_rule.name']).toBe('insecure-config');
  expect(finding.attributes['stepguard.reason']).toMatch(/^missing-/);
});

it.each(['http/protobuf', 'http/json'])("with spans and metrics on (the default) over %s, the app's thread loads nothing of OpenTelemetry, and both arrive", async (protocol) => {
  const service = `short-lived-default-${protocol.replace('/', '-')}`;
  const run = await runOnce({
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_SERVICE_NAME: service,
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=ci',
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${metricsUrl}/v1/metrics`,
  });
  expect(run.stderr).not.toContain('export thread');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('SERVED');
  // Not the API, not the SDK, not the resources: the tracer and the meter provider are the export thread's.
  expect(otelModules(run.stdout)).toEqual([]);
  const spans = await receiver.waitFor((all) => all.some((s) => s.resource['service.name'] === service));
  const finding = spans.find((s) => s.resource['service.name'] === service)!;
  expect(finding.name).toBe('stepguard.finding');
  expect(finding.resource['deployment.environment']).toBe('ci');
  expect(finding.attributes['security_rule.name']).toBe('insecure-config');
  expect(finding.parentSpanId ?? '').toBe(''); // the app has no tracing of its own: a root span
  // The last collection at exit counts every finding span (one per missing header), and the drops (none).
  const findings = spans.filter((s) => s.resource['service.name'] === service && s.name === 'stepguard.finding');
  expect(findings.length).toBeGreaterThan(0);
  await metricsReceiver.waitFor('the findings counter', () => metricsReceiver.series(service, 'stepguard.findings').length > 0);
  expect(metricsReceiver.series(service, 'stepguard.findings')).toEqual([
    expect.objectContaining({ attributes: expect.objectContaining({ 'security_rule.name': 'insecure-config', 'stepguard.outcome': 'reported' }), value: findings.length }),
  ]);
  expect(metricsReceiver.series(service, 'stepguard.telemetry.dropped').map((p) => [p.attributes['stepguard.signal'], p.value]).sort()).toEqual([
    ['findings_log', 0],
    ['metrics', 0],
    ['spans', 0],
  ]);
});

it("with STEPGUARD_EXPORT_THREAD=false the app's thread exports, and loads the exporter", async () => {
  const run = await runOnce({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_SERVICE_NAME: 'short-lived-in-process', STEPGUARD_EXPORT_THREAD: 'false' });
  expect(run.code).toBe(0);
  expect(exporterModules(run.stdout)).toEqual(expect.arrayContaining([expect.stringContaining('exporter-trace-otlp-proto')]));
  await receiver.waitFor((all) => all.some((s) => s.resource['service.name'] === 'short-lived-in-process'));
});
