/**
 * The default telemetry pipelines: the tracer and the meter provider live in the export thread, and the app's
 * thread sends plain records and answers the reader's pulls. Against real loopback receivers: spans and counts
 * arrive as they did from an SDK in the app's thread (delta temporality included); a thread that cannot start,
 * or that stops holding spans or counts, hands everything over to an SDK in the app's thread and nothing is lost.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { ATTR, SPAN_FINDING, SPAN_STEP_UP } from '../../../src/telemetry/attributes.js';
import { MetricsRecorder } from '../../../src/telemetry/counters.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { ExportThread } from '../../../src/telemetry/thread-exporter.js';
import { ThreadMetrics } from '../../../src/telemetry/thread-metrics.js';
import { OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { OtlpMetricsReceiver } from '../../helpers/otlp-metrics-receiver.js';
import { captureStderr } from '../../helpers/stderr.js';

const THREAD_ENTRY = resolve(__dirname, '../../../dist/src/telemetry/export-thread.js');
const dir = mkdtempSync(join(tmpdir(), 'stepguard-pipelines-'));
const dying = join(dir, 'dying-thread.cjs');
writeFileSync(dying, "require('node:worker_threads').parentPort.on('message', () => process.exit(3));\n");

const receiver = new OtlpReceiver();
const metricsReceiver = new OtlpMetricsReceiver();
let tracesUrl: string;
let metricsUrl: string;

// The thread copies the environment when it starts: variables are changed in place and put back after each test.
const KEYS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE', 'OTEL_BSP_SCHEDULE_DELAY'] as const;
const saved = Object.fromEntries(KEYS.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const key of KEYS) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
});

beforeAll(async () => {
  tracesUrl = await receiver.start();
  metricsUrl = await metricsReceiver.start();
});
afterAll(async () => {
  await receiver.stop();
  await metricsReceiver.stop();
});

const stderr = captureStderr();

const finding = (rule: string) => ({ [ATTR.RULE_NAME]: rule, [ATTR.RULE_CATEGORY]: 'injection', [ATTR.KIND]: 'attack', [ATTR.OUTCOME]: 'blocked', [ATTR.SINK]: 'sql', [ATTR.HTTP_ROUTE]: '/users' });

function telemetryWith(thread: ExportThread, service: string): Telemetry {
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = tracesUrl;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  return new Telemetry({ enabled: true, serviceName: service, thread });
}

describe('spans', () => {
  it('are recorded by the tracer in the export thread, with the status and the resource they had', async () => {
    const telemetry = telemetryWith(new ExportThread({ file: THREAD_ENTRY }), 'pipeline-spans');
    telemetry.span(SPAN_FINDING, finding('sql-injection'), { message: 'blocked' });
    telemetry.span(SPAN_STEP_UP, { [ATTR.STEP_UP_EVENT]: 'verified' });
    await telemetry.flush();
    const got = (await receiver.waitFor((all) => all.filter((s) => s.resource['service.name'] === 'pipeline-spans').length === 2)).filter((s) => s.resource['service.name'] === 'pipeline-spans');
    const span = got.find((s) => s.name === SPAN_FINDING)!;
    expect(span.attributes[ATTR.RULE_NAME]).toBe('sql-injection');
    expect(span.status).toMatchObject({ code: 2, message: 'blocked' });
    expect(span.parentSpanId).toBeUndefined();
    expect(got.map((s) => s.name).sort()).toEqual([SPAN_FINDING, SPAN_STEP_UP]);
    await telemetry.shutdown();
    expect(stderr().join('')).toBe('');
  });

  it('go to an SDK in the app thread when the thread cannot start, and the agent says so once', async () => {
    const thread = new ExportThread({
      start: () => {
        throw new Error('ERR_ACCESS_DENIED: worker threads are not allowed');
      },
    });
    const telemetry = telemetryWith(thread, 'pipeline-no-thread');
    telemetry.span(SPAN_FINDING, finding('one'));
    await new Promise((r) => setImmediate(r));
    telemetry.span(SPAN_FINDING, finding('two'));
    await telemetry.flush();
    const got = await receiver.waitFor((all) => all.filter((s) => s.resource['service.name'] === 'pipeline-no-thread').length === 2);
    expect(got.filter((s) => s.resource['service.name'] === 'pipeline-no-thread').map((s) => s.attributes[ATTR.RULE_NAME]).sort()).toEqual(['one', 'two']);
    expect(stderr().filter((l) => l.includes('worker threads are not allowed'))).toHaveLength(1); // said once, though two batches met it
    await telemetry.shutdown();
  });

  it('that the thread held when it stopped are recorded in the app thread, with every later one', async () => {
    const telemetry = telemetryWith(new ExportThread({ file: dying }), 'pipeline-dying');
    telemetry.span(SPAN_FINDING, finding('held'));
    await new Promise((r) => setTimeout(r, 300)); // the thread takes the batch and exits
    telemetry.span(SPAN_FINDING, finding('later'));
    await telemetry.flush();
    const got = await receiver.waitFor((all) => all.filter((s) => s.resource['service.name'] === 'pipeline-dying').length === 2);
    expect(got.filter((s) => s.resource['service.name'] === 'pipeline-dying').map((s) => s.attributes[ATTR.RULE_NAME]).sort()).toEqual(['held', 'later']);
    // (The notice that the thread stopped is said once per process: an earlier test may have said it.)
    expect(stderr().filter((l) => l.includes('the export thread stopped')).length).toBeLessThanOrEqual(1);
    await telemetry.shutdown();
  });
});

class ManualReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** A meter provider in this thread, as `metricsFromEnv` would make one, read by hand. */
function localRecorder(): { recorder: MetricsRecorder; values: () => Promise<Record<string, number>> } {
  const reader = new ManualReader();
  const provider = new MeterProvider({ readers: [reader] });
  const recorder = new MetricsRecorder(provider.getMeter('stepguard'), provider);
  const values = async (): Promise<Record<string, number>> => {
    const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
    const out: Record<string, number> = {};
    for (const scope of resourceMetrics.scopeMetrics)
      for (const metric of scope.metrics) for (const point of metric.dataPoints) if (typeof point.value === 'number') out[`${metric.descriptor.name} ${String(Object.values(point.attributes)[0])}`] = point.value;
    return out;
  };
  return { recorder, values };
}

const settings = (service: string) => ({ serviceName: service, version: '9.9.9', exportIntervalMillis: 3_600_000, exportTimeoutMillis: 5_000 });

describe('metrics', () => {
  it('are counted here and exported by the thread, in delta temporality when the exporter asks for it', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = metricsUrl;
    process.env.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE = 'delta';
    const thread = new ExportThread({ file: THREAD_ENTRY });
    const metrics = new ThreadMetrics(settings('pipeline-delta'), 'http/json', () => undefined, () => thread);
    for (let i = 0; i < 3; i++) metrics.record(SPAN_FINDING, finding('sql-injection'));
    metrics.inspected('sql', 0.000_02);
    await metrics.flush();
    const findings = () => metricsReceiver.series('pipeline-delta', 'stepguard.findings');
    await metricsReceiver.waitFor('the first export', () => findings().length === 1);
    expect(findings()[0]).toMatchObject({ value: 3, attributes: { [ATTR.RULE_NAME]: 'sql-injection', [ATTR.HTTP_ROUTE]: '/users' } });
    expect(metricsReceiver.series('pipeline-delta', 'stepguard.inspection.duration')[0]).toMatchObject({ value: 1, unit: 's' });
    metrics.record(SPAN_FINDING, finding('sql-injection'));
    metrics.record(SPAN_FINDING, finding('sql-injection'));
    const exports = metricsReceiver.exports;
    await metrics.flush();
    await metricsReceiver.waitFor('the second export', () => metricsReceiver.exports > exports);
    expect(findings()[0]!.value).toBe(2); // what was added since the first export, not the total
    await metrics.shutdown();
    expect(thread.alive).toBe(false);
    expect(stderr().join('')).toBe('');
  });

  it('counted before the thread turned out unable to start are exported from the app thread', async () => {
    const local = localRecorder();
    const thread = new ExportThread({
      start: () => {
        throw new Error('ERR_ACCESS_DENIED: worker threads are not allowed');
      },
    });
    const metrics = new ThreadMetrics(settings('pipeline-metrics-no-thread'), 'http/json', () => local.recorder, () => thread);
    metrics.record(SPAN_FINDING, finding('before'));
    metrics.record(SPAN_FINDING, finding('before'));
    await new Promise((r) => setImmediate(r));
    metrics.record(SPAN_FINDING, finding('after'));
    expect(await local.values()).toMatchObject({ 'stepguard.findings before': 2, 'stepguard.findings after': 1 });
    await metrics.shutdown();
  });

  it('counted while the thread ran carry over when it stops', async () => {
    const local = localRecorder();
    const thread = new ExportThread({ file: dying });
    const metrics = new ThreadMetrics(settings('pipeline-metrics-dying'), 'http/json', () => local.recorder, () => thread);
    metrics.record(SPAN_FINDING, finding('before'));
    await new Promise((r) => setTimeout(r, 300)); // the thread is opened, and exits
    expect(thread.alive).toBe(false);
    metrics.record(SPAN_FINDING, finding('after'));
    expect(await local.values()).toMatchObject({ 'stepguard.findings before': 1, 'stepguard.findings after': 1 });
    await metrics.shutdown();
  });
});
