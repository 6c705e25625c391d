import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { AsyncResource } from 'node:async_hooks';
import { log } from '../log.js';

/**
 * Export that tells and stays bounded. An OTLP endpoint that is closed or hangs must not cost the app
 * memory: the span queue is capped, at most one export per exporter is in flight (a hanging one blocks the
 * next batch, which is dropped and counted instead of piling up behind it), and failed batches are counted
 * as dropped. The agent says once when an exporter starts failing and once when it recovers.
 */

export type Signal = 'spans' | 'metrics' | 'findings_log';

/** Items dropped since start, per signal: read by the `stepguard.telemetry.dropped` metric. */
export const dropped: Record<Signal, number> = { spans: 0, metrics: 0, findings_log: 0 };

export function countDropped(signal: Signal, n: number): void {
  dropped[signal] += n;
}

/** What the export thread dropped (its own batch processor and exporter guards), as it last reported. */
const droppedInThread: Record<'spans' | 'metrics', number> = { spans: 0, metrics: 0 };

export type DroppedCounts = Readonly<Record<'spans' | 'metrics', number>>;

/** The export thread's totals since it started; it sends them with every answer. */
export function noteThreadDropped(counts: DroppedCounts): void {
  droppedInThread.spans = Math.max(droppedInThread.spans, counts.spans);
  droppedInThread.metrics = Math.max(droppedInThread.metrics, counts.metrics);
}

/** Dropped since start, in this thread and in the export thread. */
export function droppedTotal(signal: Signal): number {
  return dropped[signal] + (signal === 'findings_log' ? 0 : droppedInThread[signal]);
}

/** Export result codes of @opentelemetry/core (not imported: the SDK is loaded lazily). */
const SUCCESS = 0;
const FAILED = 1;
type ExportResult = { code: number; error?: Error };

/** Remembers whether an exporter is failing, so a transition is reported once each way. */
export class ExportHealth {
  private failing = false;

  constructor(private readonly what: string) {}

  get isFailing(): boolean {
    return this.failing;
  }

  result(ok: boolean, error?: Error): void {
    if (!ok && !this.failing) {
      this.failing = true;
      log.warn(
        `export of ${this.what} is failing (${error?.message ?? 'no reason given'}); requests are unaffected, ` +
          `data is dropped and counted (stepguard.telemetry.dropped) until the endpoint answers again`,
      );
    } else if (ok && this.failing) {
      this.failing = false;
      log.info(`export of ${this.what} recovered`);
    }
  }
}

/**
 * Runs `exporter.export` with at most one call in flight. A batch that arrives while the previous one is
 * still pending is dropped (counted) rather than queued: that queue is what grew without bound when the
 * endpoint hung, because the batch processor times out and moves on while the exporter keeps waiting.
 */
function guardedExport<T>(
  signal: Signal,
  health: ExportHealth,
  size: (items: T) => number,
  run: (items: T, done: (result: ExportResult) => void) => void,
): (items: T, done: (result: ExportResult) => void) => void {
  let inFlight = false;
  return (items, done) => {
    if (inFlight) {
      countDropped(signal, size(items));
      health.result(false, new Error('the previous export has not finished'));
      done({ code: FAILED, error: new Error('stepguard: previous export still pending; batch dropped') });
      return;
    }
    inFlight = true;
    let settled = false;
    const finish = (result: ExportResult): void => {
      if (settled) return;
      settled = true;
      inFlight = false;
      const ok = result.code === SUCCESS;
      if (!ok) countDropped(signal, size(items));
      health.result(ok, result.error);
      done(result);
    };
    try {
      run(items, finish);
    } catch (error) {
      finish({ code: FAILED, error: error as Error });
    }
  };
}

export function maxSpanQueue(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.OTEL_BSP_MAX_QUEUE_SIZE);
  return Number.isInteger(n) && n > 0 ? n : 2048;
}

type BatchProcessorClass = new (exporter: SpanExporter) => SpanProcessor;

/** A batch span processor whose queue and in-flight exports are bounded and whose failures are reported. */
export function boundedBatchProcessor(Batch: BatchProcessorClass, exporter: SpanExporter, name: string): SpanProcessor {
  const health = new ExportHealth(`spans (OTEL_TRACES_EXPORTER=${name})`);
  const limit = maxSpanQueue();
  let queued = 0;
  const exportOnce = guardedExport<ReadableSpan[]>('spans', health, (spans) => spans.length, (spans, done) => exporter.export(spans, done));
  const guarded: SpanExporter = {
    export(spans, done) {
      queued = Math.max(0, queued - spans.length);
      exportOnce(spans, done);
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
  const batch = new Batch(guarded);
  // A span ends inside the request that produced the finding; the batch's timer — and the export it runs, an
  // outgoing HTTP call — would otherwise belong to that request and be judged as its (stale) sink call. The
  // processor is created where the SDK loads, outside any request, and hands spans to the batch from there.
  const scope = new AsyncResource('stepguard.span-batch');
  const enqueue = (span: ReadableSpan): void => batch.onEnd(span);
  return {
    onStart: (span: Span, parent: Context) => batch.onStart(span, parent),
    onEnd(span: ReadableSpan) {
      // Unsampled spans never enter the batch queue, so they are not counted against it.
      if ((span.spanContext().traceFlags & 1) === 0) return batch.onEnd(span);
      if (queued >= limit) {
        countDropped('spans', 1);
        health.result(false, new Error(`more than ${limit} spans waiting`));
        return;
      }
      queued++;
      scope.runInAsyncScope(enqueue, undefined, span);
    },
    forceFlush: () => batch.forceFlush(),
    shutdown: () => batch.shutdown(),
  };
}

/** The same guard for a push metric exporter (the periodic reader may start an export every interval). */
export function guardMetricExporter(exporter: PushMetricExporter, name: string): PushMetricExporter {
  const health = new ExportHealth(`metrics (OTEL_METRICS_EXPORTER=${name})`);
  const exportOnce = guardedExport<ResourceMetrics>('metrics', health, dataPoints, (metrics, done) => exporter.export(metrics, done));
  const guarded: PushMetricExporter = {
    export: (metrics, done) => exportOnce(metrics, done),
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
  };
  if (exporter.selectAggregationTemporality) guarded.selectAggregationTemporality = exporter.selectAggregationTemporality.bind(exporter);
  if (exporter.selectAggregation) guarded.selectAggregation = exporter.selectAggregation.bind(exporter);
  return guarded;
}

function dataPoints(metrics: ResourceMetrics): number {
  let n = 0;
  for (const scope of metrics.scopeMetrics) for (const metric of scope.metrics) n += metric.dataPoints.length;
  return n;
}
