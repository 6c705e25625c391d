/**
 * The export thread's entry point (a `worker_threads` Worker started by `ExportThread`). It holds the OTLP
 * exporters for spans and metrics: their modules, serializers and HTTP requests live in this thread's isolate,
 * not the app's, so the app's own HTTP code never shares inline caches with the exporters' requests (in the
 * app's thread a loaded span exporter made every later request of a plain server about 7 k instructions dearer).
 * Nothing of the agent runs here: the thread starts with no preload, so nothing is instrumented.
 *
 * With a pipeline (`open` with settings), the thread also holds the SDK: the tracer provider with its sampler,
 * limits and batch processor, and the meter provider with its periodic reader. The app's thread then sends plain
 * records (`record`) and answers the reader's pulls, and never loads the SDK: its modules kept about 2.4 MiB on
 * the app's heap, which every garbage collection of the app walked (Node 20 `/hello`: about 11 k instructions
 * per request).
 */
import { parentPort } from 'node:worker_threads';
import type { Tracer } from '@opentelemetry/api';
import type { BasicTracerProvider, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { CollectionResult, MeterProvider, MetricReader, PushMetricExporter, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { boundedBatchProcessor, dropped, guardMetricExporter } from './export-health.js';
import { contextFromWire, metricsFromWire, spansFromWire, type WireBatch, type WireMetrics } from './export-wire.js';
import { agentResource } from './resource.js';
import type { OtlpProtocol } from './trace-exporters.js';
import type { MetricEnums, PipelineSettings, PulledMetrics, Signal, ThreadPull, ThreadReply, ThreadRequest, ToThread, WireFinding } from './thread-exporter.js';

const port = parentPort;
if (!port) throw new Error('stepguard: the export thread must be started as a worker');

type Exporter = SpanExporter | PushMetricExporter;
const exporters = new Map<string, Exporter>();

interface Pipeline {
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}
interface SpanPipeline extends Pipeline {
  record(spans: readonly WireFinding[]): void;
}
const pipelines: { spans?: SpanPipeline; metrics?: Pipeline } = {};

/* eslint-disable @typescript-eslint/no-require-imports -- each exporter and SDK loads when its signal first arrives */
function create(signal: Signal, protocol: OtlpProtocol): Exporter {
  if (signal === 'spans') {
    return (require('./trace-exporters.js') as typeof import('./trace-exporters.js')).otlpTraceExporter(protocol);
  }
  if (protocol === 'http/json') {
    return new (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter();
  }
  return new (require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
}

function api(): typeof import('@opentelemetry/api') {
  return require('@opentelemetry/api') as typeof import('@opentelemetry/api');
}

function resources(): typeof import('@opentelemetry/resources') {
  return require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
}

/** The agent's tracer, as the app's thread had it: env-configured sampler and limits, a bounded batch processor. */
function spanPipeline(protocol: OtlpProtocol, settings: PipelineSettings): SpanPipeline {
  const tracing = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { ROOT_CONTEXT, trace } = api();
  const processor = boundedBatchProcessor(tracing.BatchSpanProcessor, create('spans', protocol) as SpanExporter, 'otlp');
  const provider: BasicTracerProvider = new tracing.BasicTracerProvider({ resource: agentResource(resources(), settings.serviceName), spanProcessors: [processor] });
  const tracer: Tracer = provider.getTracer('stepguard', settings.version);
  return {
    record(spans) {
      for (const s of spans) {
        const parent = s.parent ? trace.setSpanContext(ROOT_CONTEXT, contextFromWire(s.parent)) : ROOT_CONTEXT;
        const span = tracer.startSpan(s.name, { attributes: s.attributes, startTime: s.time }, parent);
        if (s.error !== undefined) span.setStatus({ code: 2 /* SpanStatusCode.ERROR */, message: s.error });
        span.end(s.time);
      }
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

const pulls = new Map<number, (answer: PulledMetrics) => void>();
let nextPull = 1;

/** Asks the app's thread for its data points; a thread too busy to answer in time fails this collection only. */
function pull(temporality: ThreadPull['temporality'], enums: MetricEnums, timeoutMillis: number): Promise<readonly unknown[]> {
  return new Promise((resolve, reject) => {
    const id = nextPull++;
    const timer = setTimeout(() => {
      pulls.delete(id);
      reject(new Error(`the app's thread did not hand over its metrics within ${timeoutMillis} ms`));
    }, timeoutMillis);
    pulls.set(id, (answer) => {
      clearTimeout(timer);
      if (answer.error !== undefined) reject(new Error(answer.error));
      else resolve(answer.metrics ?? []);
    });
    port!.postMessage({ pull: id, temporality, enums, dropped: { spans: dropped.spans, metrics: dropped.metrics } } satisfies ThreadPull);
  });
}

/** The agent's meter provider: a periodic reader whose only producer is the app's thread (`thread-metrics.ts`). */
function metricPipeline(protocol: OtlpProtocol, settings: PipelineSettings): Pipeline {
  const sdk = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
  const { ValueType } = api();
  const resource = agentResource(resources(), settings.serviceName);
  const scope = { name: 'stepguard', version: settings.version };
  const enums: MetricEnums = { sumPoint: sdk.DataPointType.SUM, histogramPoint: sdk.DataPointType.HISTOGRAM, cumulative: sdk.AggregationTemporality.CUMULATIVE, doubleValue: ValueType.DOUBLE };
  const interval = settings.exportIntervalMillis ?? 60_000;
  let reader: MetricReader | undefined;
  const producer = {
    collect: async (options?: { timeoutMillis?: number }): Promise<CollectionResult> => {
      const temporality = {
        sum: reader?.selectAggregationTemporality(sdk.InstrumentType.COUNTER) ?? enums.cumulative,
        histogram: reader?.selectAggregationTemporality(sdk.InstrumentType.HISTOGRAM) ?? enums.cumulative,
      };
      const metrics = await pull(temporality, enums, options?.timeoutMillis ?? settings.exportTimeoutMillis ?? 30_000);
      const scopeMetrics = metrics.length === 0 ? [] : [{ scope, metrics: metrics as ScopeMetrics['metrics'] }];
      return { resourceMetrics: { resource, scopeMetrics }, errors: [] };
    },
  };
  reader = new sdk.PeriodicExportingMetricReader({
    exporter: guardMetricExporter(create('metrics', protocol) as PushMetricExporter, 'otlp'),
    metricProducers: [producer],
    exportIntervalMillis: interval,
    exportTimeoutMillis: Math.min(interval, settings.exportTimeoutMillis ?? 30_000),
  });
  const provider: MeterProvider = new sdk.MeterProvider({ resource, readers: [reader] });
  return { forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
}
/* eslint-enable @typescript-eslint/no-require-imports */

function exporterFor(signal: Signal, protocol: OtlpProtocol): Exporter {
  const key = `${signal} ${protocol}`;
  let exporter = exporters.get(key);
  if (!exporter) {
    exporter = create(signal, protocol);
    exporters.set(key, exporter);
  }
  return exporter;
}

function reply(message: Omit<ThreadReply, 'dropped'>): void {
  port!.postMessage({ ...message, dropped: { spans: dropped.spans, metrics: dropped.metrics } } satisfies ThreadReply);
}

function failure(id: number, error: unknown): ThreadReply {
  return { id, code: 1, error: error instanceof Error ? error.message : String(error) };
}

function settle(id: number, promise: Promise<void> | undefined): void {
  (promise ?? Promise.resolve()).then(
    () => reply({ id, code: 0 }),
    (e: unknown) => reply(failure(id, e)),
  );
}

function handle(request: ThreadRequest): void {
  const { id, signal, protocol } = request;
  if (request.op === 'open' && request.pipeline) {
    if (signal === 'spans') pipelines.spans ??= spanPipeline(protocol, request.pipeline);
    else pipelines.metrics ??= metricPipeline(protocol, request.pipeline);
    reply({ id, code: 0 });
    return;
  }
  if (request.op === 'record') {
    const spans = pipelines.spans;
    if (!spans) throw new Error('spans arrived before their pipeline was opened');
    spans.record(request.spans);
    reply({ id, code: 0 });
    return;
  }
  const pipeline = pipelines[signal];
  if (pipeline && (request.op === 'flush' || request.op === 'shutdown')) {
    if (request.op === 'shutdown') delete pipelines[signal];
    settle(id, request.op === 'flush' ? pipeline.forceFlush() : pipeline.shutdown());
    return;
  }
  const exporter = exporterFor(signal, protocol);
  switch (request.op) {
    case 'export': {
      const done = (result: { code: number; error?: Error }): void => reply(result.error ? { id, code: result.code, error: result.error.message } : { id, code: result.code });
      if (signal === 'spans') (exporter as SpanExporter).export(spansFromWire(request.batch as WireBatch), done);
      else (exporter as PushMetricExporter).export(metricsFromWire(request.batch as WireMetrics), done);
      return;
    }
    case 'open':
      reply({ id, code: 0 });
      return;
    case 'flush':
      settle(id, exporter.forceFlush?.());
      return;
    case 'shutdown':
      exporters.delete(`${signal} ${protocol}`);
      settle(id, exporter.shutdown());
      return;
  }
}

port.on('message', (message: ToThread) => {
  if (message.op === 'pulled') {
    const answer = pulls.get(message.pull);
    pulls.delete(message.pull);
    answer?.(message);
    return;
  }
  try {
    handle(message);
  } catch (e) {
    reply(failure(message.id, e));
  }
});
