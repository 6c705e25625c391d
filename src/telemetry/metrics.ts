import type { Attributes, Counter, Meter } from '@opentelemetry/api';
import type { MeterProvider, MetricProducer, MetricReader, PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { InspectionDurations } from './inspection-durations.js';
import type { Recorder } from './telemetry.js';
import { agentVersion } from './telemetry.js';
import { AsyncResource } from 'node:async_hooks';
import { ATTR, RESOURCE, SPAN_ANOMALY, SPAN_FINDING, SPAN_STEP_UP } from './attributes.js';
import { dropped, guardMetricExporter, type Signal } from './export-health.js';
import { errorMessage, log, warnOnce } from '../log.js';

/**
 * Metrics through a private OpenTelemetry meter provider (never registered globally, like the tracer
 * provider). Instruments are fed by the same one call as spans (`Telemetry.span`), so every finding and
 * step-up event counts exactly once. Cardinality is bounded by construction: attributes are rule names,
 * categories, outcomes, sink kinds and route *templates* — never user ids, addresses, paths or input.
 */

/** Every instrument, by name: the README documents each. */
export const METRIC = {
  FINDINGS: 'stepguard.findings',
  STEP_UP_CHALLENGES: 'stepguard.step_up.challenges',
  STEP_UP_VERIFICATIONS: 'stepguard.step_up.verifications',
  STEP_UP_FAILURES: 'stepguard.step_up.failures',
  STEP_UP_LOCKOUTS: 'stepguard.step_up.lockouts',
  STEP_UP_GRANTS_USED: 'stepguard.step_up.grants_used',
  ANOMALIES: 'stepguard.anomalies',
  INSPECTION_DURATION: 'stepguard.inspection.duration',
  DROPPED: 'stepguard.telemetry.dropped',
} as const;

/** A value that is not a short lower-case token (an error message, say) is reported as `other`. */
const TOKEN = /^[a-z0-9][a-z0-9._-]{0,47}$/;

export class MetricsRecorder implements Recorder {
  private readonly findings: Counter;
  private readonly challenges: Counter;
  private readonly verifications: Counter;
  private readonly failures: Counter;
  private readonly lockouts: Counter;
  private readonly grantsUsed: Counter;
  private readonly anomalies: Counter;
  constructor(
    meter: Meter,
    private readonly provider?: Pick<MeterProvider, 'forceFlush' | 'shutdown'>,
  ) {
    this.findings = meter.createCounter(METRIC.FINDINGS, { unit: '{finding}', description: 'Findings and policy matches, by rule, kind, outcome and route' });
    this.challenges = meter.createCounter(METRIC.STEP_UP_CHALLENGES, { unit: '{challenge}', description: 'Step-up challenges issued' });
    this.verifications = meter.createCounter(METRIC.STEP_UP_VERIFICATIONS, { unit: '{verification}', description: 'Successful step-up verifications' });
    this.failures = meter.createCounter(METRIC.STEP_UP_FAILURES, { unit: '{failure}', description: 'Failed step-up verifications, by reason' });
    this.lockouts = meter.createCounter(METRIC.STEP_UP_LOCKOUTS, { unit: '{lockout}', description: 'Verifications refused because the user or client is locked out' });
    this.grantsUsed = meter.createCounter(METRIC.STEP_UP_GRANTS_USED, { unit: '{grant}', description: 'Requests let through by a step-up grant' });
    this.anomalies = meter.createCounter(METRIC.ANOMALIES, { unit: '{anomaly}', description: 'Unusual patterns flagged, by kind, rule and route' });
    // METRIC.INSPECTION_DURATION is aggregated outside the SDK (inspection-durations.ts), recorded by LazyMetrics.
    meter
      .createObservableCounter(METRIC.DROPPED, { unit: '{item}', description: 'Spans, metric points and findings-log lines dropped because export failed or a queue was full' })
      .addCallback((result) => {
        for (const signal of Object.keys(dropped) as Signal[]) result.observe(dropped[signal], { 'stepguard.signal': signal });
      });
  }

  record(name: string, a: Attributes): void {
    if (name === SPAN_FINDING) {
      const attributes: Attributes = {
        [ATTR.RULE_NAME]: token(a[ATTR.RULE_NAME], '(none)'),
        [ATTR.RULE_CATEGORY]: token(a[ATTR.RULE_CATEGORY], '(none)'),
        [ATTR.KIND]: token(a[ATTR.KIND], 'policy'),
        [ATTR.OUTCOME]: token(a[ATTR.OUTCOME], 'reported'),
        [ATTR.SINK]: token(a[ATTR.SINK], 'other'),
      };
      // Only a template: a raw path (`/users/123`) would make one series per id.
      if (typeof a[ATTR.HTTP_ROUTE] === 'string') attributes[ATTR.HTTP_ROUTE] = a[ATTR.HTTP_ROUTE];
      this.findings.add(1, attributes);
      return;
    }
    if (name === SPAN_STEP_UP) {
      const rule = { [ATTR.RULE_NAME]: token(a[ATTR.STEP_UP_RULE], '(none)') };
      switch (a[ATTR.STEP_UP_EVENT]) {
        case 'challenge_issued':
          return this.challenges.add(1, rule);
        case 'verified':
          return this.verifications.add(1, rule);
        case 'failed':
          return this.failures.add(1, { ...rule, [ATTR.STEP_UP_REASON]: token(a[ATTR.STEP_UP_REASON], 'other') });
        case 'locked_out':
          return this.lockouts.add(1, rule);
        case 'grant_used':
          return this.grantsUsed.add(1, rule);
        default:
          return;
      }
    }
    if (name === SPAN_ANOMALY) {
      const attributes: Attributes = {
        [ATTR.ANOMALY_KIND]: token(a[ATTR.ANOMALY_KIND], 'other'),
        [ATTR.RULE_NAME]: token(a[ATTR.RULE_NAME], '(none)'),
      };
      if (typeof a[ATTR.HTTP_ROUTE] === 'string') attributes[ATTR.HTTP_ROUTE] = a[ATTR.HTTP_ROUTE];
      this.anomalies.add(1, attributes);
    }
  }

  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }
}

function token(value: unknown, fallback: string): string {
  if (typeof value !== 'string' || value === '') return fallback;
  return TOKEN.test(value) ? value : 'other';
}

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
  const lazy = new LazyMetrics((durations) => createMetrics(names, serviceName, env, durations, exportThread));
  if (names.includes('prometheus')) lazy.loadNow();
  active = lazy;
  return lazy;
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

function createMetrics(names: readonly string[], serviceName: string | undefined, env: NodeJS.ProcessEnv, durations: InspectionDurations, exportThread: boolean): MetricsRecorder | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the metrics SDK loads only when metrics are exported
  const sdk = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the SDK
  const { resourceFromAttributes, detectResources, envDetector } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the SDK
  const { ValueType } = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const service = serviceName ?? env.OTEL_SERVICE_NAME ?? `unknown_service:${process.argv0 ?? 'node'}`;
  const resource = resourceFromAttributes({ [RESOURCE.SERVICE_NAME]: service })
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ [RESOURCE.SERVICE_NAME]: service }));
  const scope = { name: 'stepguard', version: agentVersion() };
  const enums = { histogramPoint: sdk.DataPointType.HISTOGRAM, histogramInstrument: sdk.InstrumentType.HISTOGRAM, cumulative: sdk.AggregationTemporality.CUMULATIVE, doubleValue: ValueType.DOUBLE };
  const readers: MetricReader[] = [];
  for (const name of names) {
    const producer = durations.producer(METRIC.INSPECTION_DURATION, resource, scope, enums);
    const reader = readerFor(name, sdk, env, [producer], exportThread);
    producer.reader = reader;
    if (reader) readers.push(reader);
  }
  if (readers.length === 0) return undefined;
  const provider = new sdk.MeterProvider({ resource, readers });
  return new MetricsRecorder(provider.getMeter(scope.name, scope.version), provider);
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
        const asked = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
        if (asked !== 'http/json' && asked !== 'http/protobuf') warnOnce('metrics:protocol', `OTEL_EXPORTER_OTLP_PROTOCOL=${asked} is not supported by stepguard; metrics use http/protobuf`);
        const protocol = asked === 'http/json' ? 'http/json' : 'http/protobuf';
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
