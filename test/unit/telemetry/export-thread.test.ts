/**
 * The span export thread: spans cross to it as plain data and come out as the same OTLP payload; the real
 * thread (the compiled entry point) delivers them to a loopback receiver; a thread that cannot start or that
 * stops hands over to an exporter in the app's thread, says so once, and fails only the batch it held.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TraceFlags, context, trace, type Span, type SpanContext } from '@opentelemetry/api';
import { resources, tracing } from '@opentelemetry/sdk-node';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InstrumentType, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OtlpMetricsReceiver } from '../../helpers/otlp-metrics-receiver.js';
import { metricsFromWire, metricsToWire, spansFromWire, spansToWire } from '../../../src/telemetry/export-wire.js';
import { ExportThread, ThreadMetricExporter, ThreadSpanExporter } from '../../../src/telemetry/thread-exporter.js';
import { OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { captureStderr } from '../../helpers/stderr.js';

const require = createRequire(import.meta.url);
type Serializer = { serializeRequest(spans: ReadableSpan[]): Uint8Array | undefined };
type MetricsSerializer = { serializeRequest(metrics: ResourceMetrics): Uint8Array | undefined };
const { JsonTraceSerializer, ProtobufTraceSerializer, JsonMetricsSerializer, ProtobufMetricsSerializer } = require('@opentelemetry/otlp-transformer') as {
  JsonTraceSerializer: Serializer;
  ProtobufTraceSerializer: Serializer;
  JsonMetricsSerializer: MetricsSerializer;
  ProtobufMetricsSerializer: MetricsSerializer;
};

const THREAD_ENTRY = resolve(__dirname, '../../../dist/src/telemetry/export-thread.js');

/** Spans with every part the serializers read: remote parent with trace state, links, events, error status. */
function sampleSpans(): ReadableSpan[] {
  const memory = new tracing.InMemorySpanExporter();
  const resource = resources.resourceFromAttributes({ 'service.name': 'wire-test', 'deployment.environment': 'ci' });
  const provider = new tracing.BasicTracerProvider({ resource, spanProcessors: [new tracing.SimpleSpanProcessor(memory)] });
  const tracer = provider.getTracer('stepguard', '9.9.9', { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' });
  const remote: SpanContext = {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: { serialize: () => 'vendor=value' } as SpanContext['traceState'] & object,
  };
  const parent = trace.setSpanContext(context.active(), remote);
  const finding: Span = tracer.startSpan(
    'stepguard.finding',
    { attributes: { 'stepguard.rule': 'sql-injection', 'stepguard.score': 0.75, 'stepguard.blocked': true, 'stepguard.inputs': ['query.q', 'body.name'] }, links: [{ context: remote, attributes: { why: 'cause' } }] },
    parent,
  );
  finding.addEvent('judged', { 'stepguard.tokens': 12 });
  finding.setStatus({ code: 2, message: 'blocked' });
  finding.end();
  tracer.startSpan('stepguard.step_up').end();
  return memory.getFinishedSpans();
}

describe('spans as plain data', () => {
  it('survive a structured copy and serialize to the same OTLP JSON and protobuf payloads', () => {
    const spans = sampleSpans();
    expect(spans).toHaveLength(2);
    const copied = spansFromWire(structuredClone(spansToWire(spans)));
    const json = (s: ReadableSpan[]) => Buffer.from(JsonTraceSerializer.serializeRequest(s)!).toString();
    expect(json(copied)).toBe(json(spans));
    expect(json(copied)).toContain('vendor=value');
    expect(Buffer.from(ProtobufTraceSerializer.serializeRequest(copied)!).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!))).toBe(true);
  });

  it('sends a resource and a scope shared by spans once', () => {
    const wire = spansToWire(sampleSpans());
    expect(wire.resources).toHaveLength(1);
    expect(wire.scopes).toHaveLength(1);
    expect(wire.spans.map((s) => [s.resource, s.scope])).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });
});

class ManualReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** A collection with a counter, a histogram and an observable gauge, under one resource. */
async function sampleMetrics(service = 'wire-metrics'): Promise<ResourceMetrics> {
  const reader = new ManualReader();
  const provider = new MeterProvider({ resource: resources.resourceFromAttributes({ 'service.name': service }), readers: [reader] });
  const meter = provider.getMeter('stepguard', '9.9.9');
  meter.createCounter('stepguard.findings', { unit: '{finding}' }).add(3, { 'stepguard.kind': 'attack' });
  const histogram = meter.createHistogram('stepguard.inspection.duration', { unit: 's' });
  for (const v of [0.0001, 0.002, 0.5]) histogram.record(v, { 'stepguard.sink': 'sql' });
  meter.createObservableGauge('stepguard.requests.live').addCallback((r) => r.observe(7));
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics;
}

class RecordingExporter implements SpanExporter {
  readonly exported: string[] = [];
  export(spans: ReadableSpan[], done: (r: { code: number }) => void): void {
    this.exported.push(...spans.map((s) => s.name));
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

function exportNow(exporter: SpanExporter, spans: ReadableSpan[]): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

// The thread copies the environment when it starts; Node copies the real environment, so the tests change
// variables in place (never by replacing process.env) and put them back after each test.
const OTEL_KEYS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TIMEOUT'] as const;
const savedEnv = Object.fromEntries(OTEL_KEYS.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const key of OTEL_KEYS) {
    if (savedEnv[key] === undefined) delete process.env[key];
    else process.env[key] = savedEnv[key];
  }
});

const stderr = captureStderr();

describe('metrics as plain data', () => {
  it('survive a structured copy and serialize to the same OTLP JSON and protobuf payloads', async () => {
    const metrics = await sampleMetrics();
    const copied = metricsFromWire(structuredClone(metricsToWire(metrics)));
    const json = (m: ResourceMetrics) => Buffer.from(JsonMetricsSerializer.serializeRequest(m)!).toString();
    expect(json(copied)).toBe(json(metrics));
    expect(json(copied)).toContain('stepguard.inspection.duration');
    expect(Buffer.from(ProtobufMetricsSerializer.serializeRequest(copied)!).equals(Buffer.from(ProtobufMetricsSerializer.serializeRequest(metrics)!))).toBe(true);
  });
});

describe('the export thread', () => {
  const receiver = new OtlpReceiver();
  let url: string;
  beforeAll(async () => {
    url = await receiver.start();
  });
  afterAll(async () => {
    await receiver.stop();
  });

  it.each(['http/json', 'http/protobuf'] as const)('delivers spans to the OTLP endpoint over %s and shuts down without a word', async (protocol) => {
    // The thread reads the OTEL_* variables from its copy of the environment, taken when it starts.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = url;
    const exporter = new ThreadSpanExporter({ protocol, thread: new ExportThread({ file: THREAD_ENTRY }), inProcess: () => new RecordingExporter() });
    const before = receiver.spans.length;
    const result = await exportNow(exporter, sampleSpans());
    expect(result).toEqual({ code: 0 });
    const got = (await receiver.waitFor((s) => s.length >= before + 2)).slice(before);
    expect(got.map((s) => s.name).sort()).toEqual(['stepguard.finding', 'stepguard.step_up']);
    const finding = got.find((s) => s.name === 'stepguard.finding')!;
    expect(finding.parentSpanId).toBe('b7ad6b7169203331');
    expect(finding.attributes['stepguard.rule']).toBe('sql-injection');
    expect(finding.resource['service.name']).toBe('wire-test');
    expect(finding.status).toMatchObject({ code: 2, message: 'blocked' });
    expect(exporter.threaded).toBe(true);
    await exporter.forceFlush();
    await exporter.shutdown();
    expect(exporter.threaded).toBe(false);
    expect(stderr().join('')).toBe('');
  });

  it('answers a failed export with the reason the thread saw', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://127.0.0.1:9/';
    process.env.OTEL_EXPORTER_OTLP_TIMEOUT = '500';
    const exporter = new ThreadSpanExporter({ protocol: 'http/json', thread: new ExportThread({ file: THREAD_ENTRY }) });
    try {
      const result = await exportNow(exporter, sampleSpans());
      expect(result.code).toBe(1);
      expect(result.error?.message).toMatch(/ECONNREFUSED|timeout|Timeout/);
      expect(exporter.threaded).toBe(true); // a failing endpoint is not a failing thread
    } finally {
      await exporter.shutdown();
    }
  });
});

describe('one thread for spans and metrics', () => {
  const metricsReceiver = new OtlpMetricsReceiver();
  afterAll(async () => {
    await metricsReceiver.stop();
  });

  it('delivers metrics, outlives the span exporter shutting down, and ends with the last user', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = await metricsReceiver.start();
    const thread = new ExportThread({ file: THREAD_ENTRY });
    const spans = new ThreadSpanExporter({ protocol: 'http/json', thread });
    const metrics = new ThreadMetricExporter({ protocol: 'http/json', thread, local: () => new OTLPMetricExporter() });
    expect(metrics.selectAggregationTemporality(InstrumentType.COUNTER)).toBe(AggregationTemporality.CUMULATIVE); // the local exporter's answer: cumulative (OTel's default)
    await spans.shutdown();
    expect(spans.threaded).toBe(false);
    expect(thread.alive).toBe(true);
    const collected = await sampleMetrics('thread-metrics');
    const exported = await new Promise<{ code: number; error?: Error }>((resolve) => metrics.export(collected, resolve));
    expect(exported.error?.message).toBeUndefined();
    expect(exported.code).toBe(0);
    await metricsReceiver.waitFor('the counter', () => metricsReceiver.series('thread-metrics', 'stepguard.findings').some((p) => p.value === 3));
    const histogram = metricsReceiver.series('thread-metrics', 'stepguard.inspection.duration');
    expect(histogram).toHaveLength(1);
    expect(histogram[0]).toMatchObject({ value: 3, unit: 's' });
    await metrics.shutdown();
    expect(thread.alive).toBe(false);
    expect(stderr().join('')).toBe('');
  });
});

describe('when the thread is not there', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stepguard-thread-'));

  it('that cannot start: exports in the app thread and says so once', async () => {
    const fallback = new RecordingExporter();
    const exporter = new ThreadSpanExporter({
      protocol: 'http/json',
      thread: new ExportThread({
        start: () => {
          throw new Error('ERR_ACCESS_DENIED: worker threads are not allowed');
        },
      }),
      inProcess: () => fallback,
    });
    expect(exporter.threaded).toBe(false);
    expect(await exportNow(exporter, sampleSpans())).toEqual({ code: 0 });
    expect(await exportNow(exporter, sampleSpans())).toEqual({ code: 0 });
    expect(fallback.exported).toHaveLength(4);
    const notices = stderr().filter((l) => l.includes('the export thread stopped'));
    expect(notices.join('')).toContain('worker threads are not allowed');
    expect(notices).toHaveLength(1);
  });

  it('that dies holding a batch: that batch fails, later ones go to the app thread', async () => {
    const dying = join(dir, 'dying-thread.cjs');
    writeFileSync(dying, "require('node:worker_threads').parentPort.on('message', () => process.exit(3));\n");
    const fallback = new RecordingExporter();
    const exporter = new ThreadSpanExporter({ protocol: 'http/json', thread: new ExportThread({ file: dying }), inProcess: () => fallback });
    const held = await exportNow(exporter, sampleSpans());
    expect(held.code).toBe(1);
    expect(held.error?.message).toContain('export thread stopped (exit code 3)');
    expect(exporter.threaded).toBe(false);
    expect(await exportNow(exporter, sampleSpans())).toEqual({ code: 0 });
    expect(fallback.exported).toEqual(['stepguard.finding', 'stepguard.step_up']);
    await exporter.shutdown();
  });

  it('whose entry point throws on load: the error is the reason, and nothing waits forever', async () => {
    const broken = join(dir, 'broken-thread.cjs');
    writeFileSync(broken, "throw new Error('cannot find module @opentelemetry/exporter-trace-otlp-proto');\n");
    const fallback = new RecordingExporter();
    const exporter = new ThreadSpanExporter({ protocol: 'http/json', thread: new ExportThread({ file: broken }), inProcess: () => fallback });
    const first = await exportNow(exporter, sampleSpans());
    // Either the thread was already gone (exported in the app thread) or it died holding the batch.
    if (first.code === 1) expect(first.error?.message).toContain('cannot find module');
    expect(await exportNow(exporter, sampleSpans())).toEqual({ code: 0 });
    expect(exporter.threaded).toBe(false);
  });
});
