import type { Attributes, HrTime } from '@opentelemetry/api';
import { AsyncResource } from 'node:async_hooks';
import { errorMessage, log } from '../log.js';
import { droppedTotal, type Signal } from './export-health.js';
import type { CollectionState, InspectionDurations } from './inspection-durations.js';
import { COUNTERS, counterOf, DROPPED_METRIC, METRIC, type MetricsRecorder } from './counters.js';
import type { Recorder } from './telemetry.js';
import { sharedExportThread, type ExportThread, type PipelineSettings, type ThreadPull } from './thread-exporter.js';
import type { OtlpProtocol } from './trace-exporters.js';

/**
 * Metrics whose meter provider and periodic reader live in the export thread (`export-thread.ts`): this thread
 * keeps only the counts — one number per counter and attribute set, and the inspection-duration histogram — and
 * hands them over as plain data points when the reader collects. So the app's thread loads nothing of the SDK,
 * whose modules the app's garbage collector would otherwise walk for as long as the process runs.
 *
 * Nothing starts before the first event. If the thread cannot start or stops, the counts so far move to a meter
 * provider in this thread (`local`), which exports from then on; the agent says so once.
 */

interface Sum {
  readonly counter: string;
  readonly attributes: Attributes;
  value: number;
}

const SIGNALS: readonly Signal[] = ['spans', 'metrics', 'findings_log'];

export class ThreadMetrics implements Recorder {
  private readonly sums = new Map<string, Sum>();
  private durations: InspectionDurations | undefined;
  private durationState: CollectionState | undefined;
  private started: HrTime | undefined;
  private lastPull: HrTime | undefined;
  /** Delta temporality: each sum and dropped count as the reader last saw it. */
  private readonly seen = new Map<string, number>();
  private state: 'idle' | 'starting' | 'thread' | 'local' | 'shut' = 'idle';
  private thread: ExportThread | undefined;
  private local: MetricsRecorder | undefined;
  /** Created at start, outside any request: the thread starts in no request's context. */
  private readonly scope = new AsyncResource('stepguard.metrics-thread');

  constructor(
    private readonly settings: PipelineSettings,
    private readonly protocol: OtlpProtocol,
    private readonly makeLocal: (durations: InspectionDurations) => MetricsRecorder | undefined,
    private readonly threadOf: () => ExportThread = sharedExportThread,
  ) {}

  record(name: string, attributes: Attributes): void {
    if (this.local) return this.local.record(name, attributes);
    if (this.state === 'shut') return;
    const counted = counterOf(name, attributes);
    if (!counted) return;
    const key = `${counted.counter}\u0000${JSON.stringify(counted.attributes)}`;
    const sum = this.sums.get(key);
    if (sum) sum.value++;
    else this.sums.set(key, { counter: counted.counter, attributes: counted.attributes, value: 1 });
    this.startSoon();
  }

  inspected(kind: string, seconds: number): void {
    if (this.state === 'shut') return;
    this.inspectionDurations().record(kind, seconds);
    if (this.state === 'idle') this.startSoon();
  }

  async flush(): Promise<void> {
    if (this.state === 'starting') this.scope.runInAsyncScope(() => this.start());
    if (this.state === 'thread') await this.ask('flush');
    await this.local?.flush();
  }

  async shutdown(): Promise<void> {
    if (this.state === 'starting') this.scope.runInAsyncScope(() => this.start());
    const wasThread = this.state === 'thread';
    this.state = 'shut';
    if (wasThread && this.thread) {
      await this.ask('shutdown');
      this.thread.onPull(undefined);
      await this.thread.release();
    }
    await this.local?.shutdown();
  }

  private inspectionDurations(): InspectionDurations {
    if (this.durations) return this.durations;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the first inspection, off the start-up path
    const { InspectionDurations, hrNow } = require('./inspection-durations.js') as typeof import('./inspection-durations.js');
    this.started ??= hrNow();
    this.durations = new InspectionDurations();
    return this.durations;
  }

  private startSoon(): void {
    if (this.state !== 'idle') return;
    this.state = 'starting';
    setImmediate(() => this.scope.runInAsyncScope(() => this.start()));
  }

  private start(): void {
    if (this.state !== 'starting') return;
    this.inspectionDurations(); // sets the start of the cumulative series, before any pull
    let thread: ExportThread;
    try {
      thread = this.threadOf();
      thread.acquire();
    } catch (e) {
      return this.toLocal(errorMessage(e));
    }
    this.thread = thread;
    if (!thread.alive) {
      void thread.release();
      return this.toLocal('the export thread could not start');
    }
    this.state = 'thread';
    thread.onPull((pull) => this.pulled(pull));
    thread.onGone((reason) => this.scope.runInAsyncScope(() => this.toLocal(reason)));
    thread.request({ signal: 'metrics', protocol: this.protocol, op: 'open', pipeline: this.settings }, (reply) => {
      if (reply.code !== 0) this.scope.runInAsyncScope(() => this.toLocal(reply.error ?? 'the metrics pipeline could not start'));
    });
  }

  private ask(op: 'flush' | 'shutdown'): Promise<void> {
    const thread = this.thread;
    if (!thread?.alive) return Promise.resolve();
    return new Promise((resolve) => thread.request({ signal: 'metrics', protocol: this.protocol, op }, () => resolve()));
  }

  /** The counts so far, and everything after, go to a meter provider in this thread. */
  private toLocal(reason: string): void {
    if (this.state === 'local' || this.state === 'shut') return;
    const wasThread = this.state === 'thread';
    this.state = 'local';
    if (this.thread) {
      this.thread.onPull(undefined);
      if (wasThread) void this.thread.release();
    }
    if (this.thread?.alive) log.warn(`metrics are exported from the app's thread from now on: the export thread could not take them (${reason})`);
    try {
      this.local = this.makeLocal(this.inspectionDurations());
    } catch (e) {
      log.warn(`metrics are off: ${errorMessage(e)}`);
    }
    if (!this.local) return;
    for (const sum of this.sums.values()) this.local.add(sum.counter, sum.value, sum.attributes);
    this.sums.clear();
  }

  /** The data points for the thread's reader, as the SDK's `ScopeMetrics.metrics` would hold them. */
  private pulled(pull: ThreadPull): unknown[] {
    const { enums, temporality } = pull;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded by now (the first event loaded it)
    const now = (require('./inspection-durations.js') as typeof import('./inspection-durations.js')).hrNow();
    const started = this.started ?? now;
    const since = this.lastPull ?? started;
    const cumulative = temporality.sum === enums.cumulative;
    const point = (key: string, attributes: Attributes, value: number, always: boolean): object | undefined => {
      if (cumulative) return { startTime: started, endTime: now, attributes, value };
      const delta = value - (this.seen.get(key) ?? 0);
      this.seen.set(key, value);
      return delta > 0 || always ? { startTime: since, endTime: now, attributes, value: delta } : undefined;
    };
    const sum = (name: string, unit: string, description: string, dataPoints: object[]): object => ({
      descriptor: { name, description, unit, valueType: enums.doubleValue },
      aggregationTemporality: temporality.sum,
      dataPointType: enums.sumPoint,
      dataPoints,
      isMonotonic: true,
    });
    const metrics: object[] = [];
    for (const counter of COUNTERS) {
      const points: object[] = [];
      for (const [key, s] of this.sums) {
        if (s.counter !== counter.name) continue;
        const p = point(key, s.attributes, s.value, false);
        if (p) points.push(p);
      }
      if (points.length > 0) metrics.push(sum(counter.name, counter.unit, counter.description, points));
    }
    // Observed at every collection, as the SDK's observable counter was: zero included.
    const dropped = SIGNALS.map((signal) => point(`${METRIC.DROPPED}\u0000${signal}`, { [DROPPED_METRIC.attribute]: signal }, droppedTotal(signal), true)!);
    metrics.push(sum(METRIC.DROPPED, DROPPED_METRIC.unit, DROPPED_METRIC.description, dropped));
    const histogram = this.durations?.collect(METRIC.INSPECTION_DURATION, temporality.histogram, { histogramPoint: enums.histogramPoint, cumulative: enums.cumulative, doubleValue: enums.doubleValue }, (this.durationState ??= this.durations.collectionState()));
    if (histogram) metrics.push(histogram);
    this.lastPull = now;
    return metrics;
  }
}
