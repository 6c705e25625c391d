import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { AggregationOption, AggregationTemporality, InstrumentType, PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { join } from 'node:path';
import type { Worker, WorkerOptions } from 'node:worker_threads';
import type { Attributes } from '@opentelemetry/api';
import { warnOnce } from '../log.js';
import { noteThreadDropped, type DroppedCounts } from './export-health.js';
import { metricsToWire, spansToWire, type WireBatch, type WireContext, type WireMetrics } from './export-wire.js';
import type { OtlpProtocol } from './trace-exporters.js';

/**
 * Exporters that hand their data to a thread of their own, where the OTLP exporters run (see `export-thread.ts`
 * for why). To the batch processor and the metric reader they are ordinary exporters: one call, one answer.
 * One thread serves spans and metrics; it starts with the first of them and ends when both have shut down.
 *
 * The thread never keeps the app alive by itself: it is referenced only while an answer is awaited, as the
 * in-process exporter's socket would be. If it cannot start or stops, the agent says so once and each signal
 * exports from the app's thread from then on; what was in flight at that moment fails and is counted as dropped.
 */

export type Signal = 'spans' | 'metrics';

/**
 * What a signal's pipeline in the thread is made with (`thread-spans.ts`, `thread-metrics.ts`): the thread then
 * holds the tracer or meter provider itself, and the app's thread sends plain records to it.
 */
export interface PipelineSettings {
  readonly serviceName: string;
  readonly version: string;
  /** Metrics only: OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT as the app's thread read them. */
  readonly exportIntervalMillis?: number;
  readonly exportTimeoutMillis?: number;
}

/** One span for the thread's tracer to record: the agent's spans are points in time with attributes. */
export interface WireFinding {
  readonly name: string;
  readonly attributes: Attributes;
  readonly error?: string;
  /** The app's active span when there was one: the span joins its trace, and the sampler sees its flags. */
  readonly parent?: WireContext;
  /** Milliseconds since the epoch. */
  readonly time: number;
}

export type ThreadRequest = { readonly id: number; readonly signal: Signal; readonly protocol: OtlpProtocol } & (
  | { readonly op: 'export'; readonly batch: WireBatch | WireMetrics }
  | { readonly op: 'open'; readonly pipeline?: PipelineSettings }
  | { readonly op: 'record'; readonly spans: readonly WireFinding[] }
  | { readonly op: 'flush' }
  | { readonly op: 'shutdown' }
);

/** The SDK's enum values the app's thread needs to build metric data (it does not load the SDK to learn them). */
export interface MetricEnums {
  readonly sumPoint: number;
  readonly histogramPoint: number;
  readonly cumulative: number;
  readonly doubleValue: number;
}

/** The thread's metric reader collecting: it asks the app's thread for the data points (`thread-metrics.ts`). */
export interface ThreadPull {
  readonly pull: number;
  readonly temporality: { readonly sum: number; readonly histogram: number };
  readonly enums: MetricEnums;
  readonly dropped: DroppedCounts;
}

/** The answer to a pull: `ScopeMetrics.metrics` as plain data, or why there is none. */
export interface PulledMetrics {
  readonly op: 'pulled';
  readonly pull: number;
  readonly metrics?: readonly unknown[];
  readonly error?: string;
}

export type ToThread = ThreadRequest | PulledMetrics;

export interface ThreadReply {
  readonly id: number;
  readonly code: number;
  readonly error?: string;
  /** The thread's own drops since it started, sent with every answer. */
  readonly dropped?: DroppedCounts;
}

type Answer = (reply: ThreadReply) => void;
type ExportResult = { code: number; error?: Error };
export type Request = ThreadRequest extends infer R ? (R extends ThreadRequest ? Omit<R, 'id'> : never) : never;

/** ExportResultCode.FAILED of @opentelemetry/core (not imported: nothing else of it is needed here). */
const FAILED = 1;

export type StartThread = (file: string, options: WorkerOptions) => Worker;

const startWorker: StartThread = (file, options) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the exporters, at the first span or metric export
  const { Worker: WorkerClass } = require('node:worker_threads') as typeof import('node:worker_threads');
  return new WorkerClass(file, options);
};

export interface ExportThreadOptions {
  /** The compiled entry point; by default `export-thread.js` beside this file. */
  readonly file?: string;
  readonly start?: StartThread;
}

/** The thread and the answers it owes. Started at the first `acquire`, terminated at the last `release`. */
export class ExportThread {
  private worker: Worker | undefined;
  private started = false;
  private users = 0;
  private readonly pending = new Map<number, Answer>();
  private nextId = 1;
  private stopping = false;
  private puller: ((pull: ThreadPull) => readonly unknown[]) | undefined;
  private readonly goneListeners: Array<(reason: string) => void> = [];

  constructor(private readonly options: ExportThreadOptions = {}) {}

  /** Whether requests go to the thread (false before the first user, and once it has stopped or could not start). */
  get alive(): boolean {
    return this.worker !== undefined;
  }

  acquire(): void {
    this.users++;
    if (this.started) return;
    this.started = true;
    try {
      const worker = (this.options.start ?? startWorker)(this.options.file ?? join(__dirname, 'export-thread.js'), {
        // No preload (the app's `--require stepguard/register`), no inspector port: nothing of the agent or the
        // app's flags in the thread; it reads the OTEL_* variables from its copy of the environment.
        execArgv: [],
        resourceLimits: { maxOldGenerationSizeMb: 64 },
      });
      worker.on('message', (message: ThreadReply | ThreadPull) => ('pull' in message ? this.pulled(message) : this.answer(message)));
      worker.on('error', (error: Error) => this.gone(worker, error.message));
      worker.on('exit', (code: number) => this.gone(worker, `exit code ${code}`));
      worker.unref(); // after the listeners: attaching a 'message' listener refs the thread's port again
      this.worker = worker;
    } catch (e) {
      this.gone(undefined, (e as Error).message);
    }
  }

  /** A user is done (after its own shutdown request was answered); the last one ends the thread. */
  release(): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    const worker = this.worker;
    if (this.users > 0 || !worker) return Promise.resolve();
    this.stopping = true;
    this.worker = undefined;
    return worker.terminate().then(
      () => undefined,
      () => undefined,
    );
  }

  /** Sends a request; `answer` is called exactly once, with a failure if the thread is or goes away. */
  request(request: Request, answer: Answer): void {
    const worker = this.worker;
    const id = this.nextId++;
    if (!worker) {
      answer({ id, code: FAILED, error: 'the export thread is not running' });
      return;
    }
    this.pending.set(id, answer);
    worker.ref();
    try {
      worker.postMessage({ ...request, id } as ThreadRequest satisfies ToThread);
    } catch (e) {
      this.answer({ id, code: FAILED, error: `could not hand the data to the export thread: ${(e as Error).message}` });
    }
  }

  /** Called once if the thread stops on its own or cannot start (not when the last user releases it). */
  onGone(listener: (reason: string) => void): void {
    this.goneListeners.push(listener);
  }

  /** Who answers the thread's metric reader when it collects (one metrics pipeline per process). */
  onPull(puller: ((pull: ThreadPull) => readonly unknown[]) | undefined): void {
    this.puller = puller;
  }

  private pulled(pull: ThreadPull): void {
    noteThreadDropped(pull.dropped);
    let answer: PulledMetrics;
    try {
      answer = { op: 'pulled', pull: pull.pull, metrics: this.puller ? this.puller(pull) : [] };
    } catch (e) {
      answer = { op: 'pulled', pull: pull.pull, error: (e as Error).message };
    }
    try {
      this.worker?.postMessage(answer satisfies ToThread);
    } catch (e) {
      warnOnce('telemetry:pull', `could not hand the metrics to the export thread: ${(e as Error).message}`);
    }
  }

  private answer(reply: ThreadReply): void {
    if (reply.dropped) noteThreadDropped(reply.dropped);
    const answer = this.pending.get(reply.id);
    if (!answer) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    answer(reply);
  }

  private gone(worker: Worker | undefined, reason: string): void {
    if (worker !== undefined && worker !== this.worker) return; // already handled ('error' is followed by 'exit'), or terminated by release()
    this.worker = undefined;
    if (!this.stopping) {
      warnOnce('telemetry:thread', `the export thread stopped (${reason}); spans and metrics are exported from the app's thread from now on`);
    }
    const waiting = [...this.pending];
    this.pending.clear();
    for (const [id, answer] of waiting) answer({ id, code: FAILED, error: `the export thread stopped (${reason})` });
    if (!this.stopping) for (const listener of this.goneListeners.splice(0)) listener(reason);
  }
}

let shared: ExportThread | undefined;

/** The process's export thread, shared by the span and metric exporters. */
export function sharedExportThread(): ExportThread {
  return (shared ??= new ExportThread());
}

function resultOf(reply: ThreadReply): ExportResult {
  return reply.error === undefined ? { code: reply.code } : { code: reply.code, error: new Error(reply.error) };
}

/** What both exporters share: the thread while it lives, then an exporter in the app's thread. */
abstract class ThreadClient<InProcess extends { shutdown(): Promise<void>; forceFlush?(): Promise<void> }> {
  private fallback: InProcess | undefined;
  private shutDown = false;

  protected constructor(
    protected readonly signal: Signal,
    protected readonly protocol: OtlpProtocol,
    protected readonly thread: ExportThread,
    private readonly makeInProcess: () => InProcess,
  ) {
    thread.acquire();
    // The thread loads this signal's exporter now, not at the first export (a minute later for metrics): the
    // cost falls where the agent loads its other telemetry modules, at the first finding or inspection.
    if (thread.alive) thread.request({ signal, protocol, op: 'open' }, () => undefined);
  }

  /** Whether this signal's exports go to the thread. */
  get threaded(): boolean {
    return this.thread.alive && !this.shutDown;
  }

  protected inProcess(): InProcess {
    return (this.fallback ??= this.makeInProcess());
  }

  /** Exports through the thread (`wire` makes the plain-data copy) or, when it is gone, through `local`. */
  protected exportVia(wire: () => WireBatch | WireMetrics, done: (result: ExportResult) => void, local: (exporter: InProcess) => void): void {
    if (!this.threaded) {
      let exporter: InProcess;
      try {
        exporter = this.inProcess();
      } catch (e) {
        done({ code: FAILED, error: new Error(`the ${this.signal} exporter could not be loaded: ${(e as Error).message}`) });
        return;
      }
      local(exporter);
      return;
    }
    let batch: WireBatch | WireMetrics;
    try {
      batch = wire();
    } catch (e) {
      done({ code: FAILED, error: e as Error });
      return;
    }
    this.thread.request({ signal: this.signal, protocol: this.protocol, op: 'export', batch }, (reply) => done(resultOf(reply)));
  }

  forceFlush(): Promise<void> {
    if (!this.threaded) return this.fallback?.forceFlush?.() ?? Promise.resolve();
    return new Promise((resolve) => this.thread.request({ signal: this.signal, protocol: this.protocol, op: 'flush' }, () => resolve()));
  }

  shutdown(): Promise<void> {
    if (this.shutDown) return Promise.resolve();
    const threaded = this.threaded;
    this.shutDown = true;
    const local = this.fallback?.shutdown() ?? Promise.resolve();
    if (!threaded) return local.then(() => this.thread.release());
    return new Promise<void>((resolve) => this.thread.request({ signal: this.signal, protocol: this.protocol, op: 'shutdown' }, () => resolve()))
      .then(() => local)
      .then(() => this.thread.release());
  }
}

export interface ThreadSpanExporterOptions {
  readonly protocol: OtlpProtocol;
  readonly thread?: ExportThread;
  /** The exporter used when the thread cannot run; by default the OTLP exporter in the app's thread. */
  readonly inProcess?: () => SpanExporter;
}

export class ThreadSpanExporter extends ThreadClient<SpanExporter> implements SpanExporter {
  constructor(options: ThreadSpanExporterOptions) {
    super('spans', options.protocol, options.thread ?? sharedExportThread(), options.inProcess ?? (() => inProcessSpanExporter(options.protocol)));
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.exportVia(() => spansToWire(spans), done, (exporter) => exporter.export(spans, done));
  }
}

export interface ThreadMetricExporterOptions {
  readonly protocol: OtlpProtocol;
  readonly thread?: ExportThread;
  /**
   * An exporter made in the app's thread from the same environment: asked which temporality and aggregation each
   * instrument gets (the reader asks synchronously), and used for export when the thread cannot run. Making one
   * sends nothing.
   */
  readonly local: () => PushMetricExporter;
}

export class ThreadMetricExporter extends ThreadClient<PushMetricExporter> implements PushMetricExporter {
  constructor(options: ThreadMetricExporterOptions) {
    super('metrics', options.protocol, options.thread ?? sharedExportThread(), options.local);
    this.inProcess(); // asked for temporality at every collection; made now, with the reader
  }

  export(metrics: ResourceMetrics, done: (result: ExportResult) => void): void {
    this.exportVia(() => metricsToWire(metrics), done, (exporter) => exporter.export(metrics, done));
  }

  selectAggregationTemporality(instrumentType: InstrumentType): AggregationTemporality {
    const local = this.inProcess();
    // CUMULATIVE, as the SDK assumes for an exporter that does not say.
    return local.selectAggregationTemporality?.(instrumentType) ?? (1 as AggregationTemporality);
  }

  selectAggregation(instrumentType: InstrumentType): AggregationOption {
    const local = this.inProcess();
    return local.selectAggregation?.(instrumentType) ?? ({ type: 0 } as AggregationOption);
  }
}

function inProcessSpanExporter(protocol: OtlpProtocol): SpanExporter {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when the thread cannot run
  const { otlpTraceExporter } = require('./trace-exporters.js') as typeof import('./trace-exporters.js');
  return otlpTraceExporter(protocol);
}
