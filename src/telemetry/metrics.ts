import type { Attributes } from '@opentelemetry/api';
import type { MeterProvider, MetricProducer, MetricReader, PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { InspectionDurations } from './inspection-durations.js';
import type { Recorder } from './telemetry.js';
import { agentVersion } from './telemetry.js';
import { AsyncResource } from 'node:async_hooks';
import { dropped, guardMetricExporter } from './export-health.js';
import type { MetricsRecorder } from './counters.js';
import type { ThreadMetrics } from './thread-metrics.js';
import { errorMessage, log, warnOnce } from '../log.js';
import type { OtlpProtocol } from './trace-exporters.js';

/**
 * Metrics through a private OpenTelemetry meter provider (never registered globally, like the tracer
 * provider). Instruments are fed by the same one call as spans (`Telemetry.span`), so every finding and
 * step-up event counts exactly once. Cardinality is bounded by construction: attributes are rule names,
 * categories, outcomes, sink kinds and route *templates* — never user ids, addresses, paths or input.
 */



// ---- the timing call in inspect() ------------------------------------------------------------------------

let active: { inspected(kind: string, seconds: number): void } | undefined;

/**
 * `fn(a, b, c)`, timed into `stepguard.inspection.duration` when metrics are on. Fixed arity, so the hot
 * path allocates no closure or argument array; with metrics off it is one check and the call.
 */
export function measureInspection<A, B, C, R>(kind: string, fn: (a: A, b: B, c: C) => R, a: A, b: B, c: C): R {
  const metrics = active;
  if (!metrics) return fn(a, b, c);
  const clock = (inspectionClock ??= performance);
  const start = clock.now();
  try {
    return fn(a, b, c);
  } finally {
    metrics.inspected(kind, (clock.now() - start) / 1000);
  }
}

/**
 * The global `performance`, read once: Node defines it on the global object with a getter, and each read of it went
 * through V8's global-load handler (about 180 instructions, twice per judged call).
 */
let inspectionClock: { now(): number } | undefined;

// ---- provider from the environment ---------------------------------------------------------------------

/**
 * OTEL_METRICS_EXPORTER, defaulting to `otlp` like the spec — except that an app that turned span export off
 * (`OTEL_TRACES_EXPORTER=none`) and said nothing about metrics gets none either, rather than a surprise
 * exporter and its start-up cost.
 */
export function metricsExporterNames(env: NodeJS.ProcessEnv = process.env): string[] {
  const tracesOff = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none';
  return (env.OTEL_METRICS_EXPORTER ?? (tracesOff ? 'none' : 'otlp'))
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

/**
 * The recorder for the exporters named by OTEL_METRICS_EXPORTER, or undefined when there are none. Nothing
 * is loaded at start: the metrics SDK and its exporters load after the first event (outside any request,
 * like the tracer), so a process that never inspects anything pays nothing and exports nothing at exit.
 * A Prometheus endpoint is the exception: it must answer scrapes from the start.
 */
export function metricsFromEnv(serviceName: string | undefined, env: NodeJS.ProcessEnv = process.env, exportThread = true): Recorder | undefined {
  const names = metricsExporterNames(env);
  if (names.length === 0 || names.includes('none')) return undefined;
  if (exportThread && names.every((name) => name === 'otlp')) {
    // The default: the meter provider lives in the export thread, and this thread keeps only the counts.
    const protocol = otlpMetricsProtocol(env);
    const threaded = new OnFirstEvent(() => {
      /* eslint-disable @typescript-eslint/no-require-imports -- loaded with the first event, not at start */
      const { ThreadMetrics: Threaded } = require('./thread-metrics.js') as typeof import('./thread-metrics.js');
      const { serviceNameOf } = require('./resource.js') as typeof import('./resource.js');
      /* eslint-enable @typescript-eslint/no-require-imports */
      const interval = positive(env.OTEL_METRIC_EXPORT_INTERVAL, 60_000);
      const settings = { serviceName: serviceNameOf(serviceName, env), version: agentVersion(), exportIntervalMillis: interval, exportTimeoutMillis: positive(env.OTEL_METRIC_EXPORT_TIMEOUT, 30_000) };
      return new Threaded(settings, protocol, (durations) => createMetrics(names, serviceName, env, durations, false));
    });
    active = threaded;
    return threaded;
  }
  const lazy = new LazyMetrics((durations) => createMetrics(names, serviceName, env, durations, exportThread));
  if (names.includes('prometheus')) lazy.loadNow();
  active = lazy;
  return lazy;
}

/** `ThreadMetrics`, made at the first event; from then on the timing call in inspect() reaches it directly. */
class OnFirstEvent implements Recorder {
  private real: ThreadMetrics | undefined;

  constructor(private readonly make: () => ThreadMetrics) {}

  private metrics(): ThreadMetrics {
    if (this.real) return this.real;
    this.real = this.make();
    if (active === this) active = this.real;
    return this.real;
  }

  record(name: string, attributes: Attributes): void {
    this.metrics().record(name, attributes);
  }

  inspected(kind: string, seconds: number): void {
    this.metrics().inspected(kind, seconds);
  }

  async flush(): Promise<void> {
    await this.real?.flush();
  }

  async shutdown(): Promise<void> {
    if (active === this || (this.real && active === this.real)) active = undefined;
    await this.real?.shutdown();
  }
}

/** Calls kept while the SDK loads; beyond this (a flood in one tick) they are dropped. */
const MAX_PENDING = 1024;

class LazyMetrics implements Recorder {
  private real: MetricsRecorder | undefined;
  private failed = false;
  private scheduled = false;
  private pending: Array<(m: MetricsRecorder) => void> = [];
  /** Created at start, outside any request: the SDK's own file reads are never judged as a request's. */
  private readonly scope = new AsyncResource('stepguard.metrics-load');

  /** Made at the first inspection (its module is not loaded at start). */
  private durations: InspectionDurations | undefined;

  constructor(private readonly create: (durations: InspectionDurations) => MetricsRecorder | undefined) {}

  private inspectionDurations(): InspectionDurations {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the first inspection, off the start-up path
    return (this.durations ??= new (require('./inspection-durations.js') as typeof import('./inspection-durations.js')).InspectionDurations());
  }

  record(name: string, attributes: Attributes): void {
    if (this.real) return this.real.record(name, attributes);
    this.defer((m) => m.record(name, attributes));
  }

  /** Aggregated at once, whether the SDK has loaded or not (inspection-durations.ts); the SDK loads to export it. */
  inspected(kind: string, seconds: number): void {
    if (this.failed) return;
    this.inspectionDurations().record(kind, seconds);
    if (!this.real) this.scheduleLoad();
  }

  async flush(): Promise<void> {
    if (this.pending.length > 0) this.loadNow();
    await this.real?.flush();
  }

  async shutdown(): Promise<void> {
    if (active === this) active = undefined;
    if (this.pending.length > 0) this.loadNow();
    await this.real?.shutdown();
  }

  loadNow(): void {
    if (this.real || this.failed) return;
    this.scope.runInAsyncScope(() => {
      try {
        this.real = this.create(this.inspectionDurations());
        if (!this.real) this.failed = true;
      } catch (error) {
        this.failed = true;
        log.warn(`metrics are off: ${errorMessage(error)}`);
      }
    });
    const pending = this.pending;
    this.pending = [];
    if (this.real) for (const call of pending) call(this.real);
  }

  private defer(call: (m: MetricsRecorder) => void): void {
    if (this.failed) return;
    if (this.pending.length >= MAX_PENDING) {
      dropped.metrics++;
      return;
    }
    this.pending.push(call);
    this.scheduleLoad();
  }

  private scheduleLoad(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.loadNow());
  }
}

export function createMetrics(names: readonly string[], serviceName: string | undefined, env: NodeJS.ProcessEnv, durations: InspectionDurations, exportThread: boolean): MetricsRecorder | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the SDK
  const counters = require('./counters.js') as typeof import('./counters.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the metrics SDK loads only when metrics are exported
  const sdk = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the SDK
  const { ValueType } = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the SDK
  const { agentResource, serviceNameOf } = require('./resource.js') as typeof import('./resource.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the SDK
  const resource = agentResource(require('@opentelemetry/resources') as typeof import('@opentelemetry/resources'), serviceNameOf(serviceName, env));
  const scope = { name: 'stepguard', version: agentVersion() };
  const enums = { histogramPoint: sdk.DataPointType.HISTOGRAM, histogramInstrument: sdk.InstrumentType.HISTOGRAM, cumulative: sdk.AggregationTemporality.CUMULATIVE, doubleValue: ValueType.DOUBLE };
  const readers: MetricReader[] = [];
  for (const name of names) {
    const producer = durations.producer(counters.METRIC.INSPECTION_DURATION, resource, scope, enums);
    const reader = readerFor(name, sdk, env, [producer], exportThread);
    producer.reader = reader;
    if (reader) readers.push(reader);
  }
  if (readers.length === 0) return undefined;
  const provider = new sdk.MeterProvider({ resource, readers });
  return new counters.MetricsRecorder(provider.getMeter(scope.name, scope.version), provider);
}

/** The OTLP protocol for metrics; an unsupported one is said once and replaced. */
function otlpMetricsProtocol(env: NodeJS.ProcessEnv): OtlpProtocol {
  const asked = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (asked !== 'http/json' && asked !== 'http/protobuf') warnOnce('metrics:protocol', `OTEL_EXPORTER_OTLP_PROTOCOL=${asked} is not supported by stepguard; metrics use http/protobuf`);
  return asked === 'http/json' ? 'http/json' : 'http/protobuf';
}

function positive(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

function readerFor(name: string, sdk: typeof import('@opentelemetry/sdk-metrics'), env: NodeJS.ProcessEnv, metricProducers: MetricProducer[], exportThread: boolean): MetricReader | undefined {
  const periodic = (exporter: PushMetricExporter): MetricReader => {
    const interval = positive(env.OTEL_METRIC_EXPORT_INTERVAL, 60_000);
    return new sdk.PeriodicExportingMetricReader({
      exporter: guardMetricExporter(exporter, name),
      metricProducers,
      exportIntervalMillis: interval,
      exportTimeoutMillis: Math.min(interval, positive(env.OTEL_METRIC_EXPORT_TIMEOUT, 30_000)),
    });
  };
  try {
    switch (name) {
      case 'otlp': {
        const protocol = otlpMetricsProtocol(env);
        const local = (): PushMetricExporter => {
          /* eslint-disable @typescript-eslint/no-require-imports -- loaded only for the chosen protocol */
          if (protocol === 'http/json') return new (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter();
          return new (require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
          /* eslint-enable @typescript-eslint/no-require-imports */
        };
        if (!exportThread) return periodic(local());
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the exporter
        const { ThreadMetricExporter } = require('./thread-exporter.js') as typeof import('./thread-exporter.js');
        return periodic(new ThreadMetricExporter({ protocol, local }));
      }
      case 'prometheus': {
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when chosen
        const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus');
        // Loopback unless told otherwise: the scrape endpoint has no authentication.
        const host = env.OTEL_EXPORTER_PROMETHEUS_HOST ?? '127.0.0.1';
        const port = positive(env.OTEL_EXPORTER_PROMETHEUS_PORT, 9464);
        return new PrometheusExporter({ host, port, metricProducers }, (error) => {
          if (error) log.warn(`the Prometheus metrics endpoint could not start on ${host}:${port}: ${errorMessage(error)}`);
          else log.info(`metrics for Prometheus at http://${host}:${port}/metrics`);
        });
      }
      case 'console':
        return periodic(new sdk.ConsoleMetricExporter());
      default:
        log.warn(`OTEL_METRICS_EXPORTER=${name} is not supported by stepguard (use otlp, prometheus, console or none); ignored`);
        return undefined;
    }
  } catch (error) {
    log.warn(`the ${name} metrics exporter could not start: ${errorMessage(error)}`);
    return undefined;
  }
}
