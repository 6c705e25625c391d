import type { Attributes, Context, Tracer } from '@opentelemetry/api';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AsyncResource } from 'node:async_hooks';
import { log, warnOnce } from '../log.js';
import { ATTR } from './attributes.js';
import { boundedBatchProcessor } from './export-health.js';
import { whileAgentLoads } from '../instrument/loading.js';
import type { WireContext } from './export-wire.js';
import type { ThreadSpans } from './thread-spans.js';
import type { ExportThread, WireFinding } from './thread-exporter.js';

/**
 * A private tracer provider: never registered globally, so an app with its own OpenTelemetry SDK keeps
 * all of its telemetry (registering first would make the app's own `start()` fail silently). Our spans
 * still join the app's traces: they are started under `context.active()`, which is the app's server
 * span when the app has OTel. The exporter is chosen by the standard OTEL_* variables.
 *
 * Nothing of the SDK is loaded at start: most processes never produce a span, and the SDK, the resource
 * detectors and the exporter cost more start-up time than the rest of the agent. The first span is
 * buffered (with its parent and its times) and the SDK is loaded on the next turn of the event loop, off
 * the request that produced it; spans arriving meanwhile join the buffer, which is bounded.
 *
 * With the default exporter (OTLP from the export thread) the SDK never loads in the app's thread at all: the tracer
 * lives in the export thread, and each tick's spans go to it as plain records (`thread-spans.ts`). The app's thread
 * loads the OpenTelemetry API only when the app has registered a context manager of its own, to find the parent.
 */

export interface TelemetryOptions {
  readonly enabled: boolean;
  readonly serviceName: string | undefined;
  /** For embedding and tests: explicit processors instead of the env-configured exporter. */
  readonly spanProcessors?: readonly SpanProcessor[];
  /** Run the OTLP exporter in a thread of its own (default true); see `thread-exporter.ts`. */
  readonly exportThread?: boolean;
  /** For tests: the export thread to use instead of the process's shared one. */
  readonly thread?: ExportThread;
}

/**
 * Something fed every finding and step-up event, whether or not spans are exported (metrics, the findings
 * log, the anomaly tracker). Attributes arrive already redacted. A recorder must not block: it buffers.
 */
export interface Recorder {
  record(name: string, attributes: Attributes, error?: { message: string }): void;
  flush?(): Promise<void>;
  shutdown?(): Promise<void>;
}

interface BufferedSpan {
  readonly name: string;
  readonly attributes: Attributes;
  readonly error: { message: string } | undefined;
  readonly parent: Context;
  readonly startTime: number;
}

/** The global the OpenTelemetry API (major version 1) keeps its registered parts in, whichever copy of it the app loaded. */
const OTEL_API_GLOBAL = Symbol.for('opentelemetry.js.api.1');

/** Spans kept while the SDK loads; a flood beyond this (thousands of findings in one tick) is dropped. */
const MAX_BUFFERED_SPANS = 1024;
/** OpenTelemetry's SpanStatusCode.ERROR, without loading the API to name it. */
const STATUS_ERROR = 2;

export class Telemetry {
  /** Whether spans are exported at all; decided at start from the settings, without loading anything. */
  private readonly wanted: boolean;
  private tracer: Tracer | undefined;
  private provider: { forceFlush(): Promise<void>; shutdown(): Promise<void> } | undefined;
  private buffered: BufferedSpan[] = [];
  private readonly recorders: Recorder[] = [];
  private loadScheduled = false;
  private loadFailed = false;
  /** Spans go to the tracer in the export thread (until it cannot take them: then false for good). */
  private viaThread: boolean;
  private threadSpans: ThreadSpans | undefined;
  private toThread: WireFinding[] = [];
  private drainScheduled = false;
  /** Whether an in-process SDK's OTLP exporter hands its batches to the export thread. */
  private exportThread: boolean;
  /** Created at start, outside any request: the SDK loads in no request's context, so its own file reads are never judged. */
  private readonly loaderScope = new AsyncResource('stepguard.telemetry-load');

  constructor(private readonly options: TelemetryOptions) {
    if (options.enabled && !options.spanProcessors) {
      for (const name of exporterNames()) {
        if (name !== 'none' && !isKnownExporter(name)) log.warn(`OTEL_TRACES_EXPORTER=${name} is not supported by stepguard (use otlp, console or none); ignored`);
      }
    }
    this.wanted =
      options.enabled &&
      !isTrue(process.env.OTEL_SDK_DISABLED) &&
      (options.spanProcessors ? options.spanProcessors.length > 0 : !exporterNames().includes('none') && exporterNames().some(isKnownExporter));
    this.exportThread = options.exportThread ?? true;
    this.viaThread = this.wanted && !options.spanProcessors && this.exportThread && exporterNames().every((name) => name === 'otlp');
  }

  get active(): boolean {
    return this.wanted && !this.loadFailed;
  }

  /** Adds a recorder fed by every later `span()` call (trends: metrics, findings log, anomalies). */
  addRecorder(recorder: Recorder): void {
    this.recorders.push(recorder);
  }

  /**
   * One short span, parented on the app's active span when there is one. Never throws. The agent's own work:
   * the modules it loads and the files its recorders write are not the app's sink calls (the first span of a
   * process loads the OpenTelemetry API inside the request that produced it, often after its 403 was sent).
   */
  span(name: string, attributes: Attributes, error?: { message: string }): void {
    whileAgentLoads(() => this.spanNow(name, attributes, error));
  }

  private spanNow(name: string, attributes: Attributes, error?: { message: string }): void {
    for (const recorder of this.recorders) {
      try {
        recorder.record(name, attributes, error);
      } catch (e) {
        warnOnce(`telemetry:recorder:${recorder.constructor.name}`, `a trends recorder failed and skipped an event: ${(e as Error).message}`);
      }
    }
    if (!this.wanted || this.loadFailed) return;
    try {
      if (this.viaThread) {
        this.queueForThread({ name, attributes, ...(error ? { error: error.message } : {}), ...parentOfActive(), time: performance.timeOrigin + performance.now() });
        return;
      }
      const parent = otelApi().context.active();
      if (!this.tracer) {
        this.buffer({ name, attributes, error, parent, startTime: performance.timeOrigin + performance.now() });
        return;
      }
      this.record(this.tracer, name, attributes, error, parent);
    } catch (e) {
      warnOnce('telemetry:span', `could not record a span: ${(e as Error).message}`);
    }
  }

  async flush(): Promise<void> {
    if (this.toThread.length > 0) this.loaderScope.runInAsyncScope(() => this.drain());
    if (this.buffered.length > 0) this.loaderScope.runInAsyncScope(() => this.loadNow());
    await this.threadSpans?.flush();
    await this.provider?.forceFlush().catch(() => undefined);
    await Promise.all(this.recorders.map((r) => r.flush?.().catch(() => undefined)));
  }

  async shutdown(): Promise<void> {
    if (this.toThread.length > 0) this.loaderScope.runInAsyncScope(() => this.drain());
    if (this.buffered.length > 0) this.loaderScope.runInAsyncScope(() => this.loadNow());
    await this.threadSpans?.shutdown();
    await this.provider?.shutdown().catch(() => undefined);
    await Promise.all(this.recorders.map((r) => r.shutdown?.().catch(() => undefined)));
  }

  private record(tracer: Tracer, name: string, attributes: Attributes, error: { message: string } | undefined, parent: Context, startTime?: number): void {
    const span = tracer.startSpan(name, startTime === undefined ? { attributes } : { attributes, startTime }, parent);
    if (error) span.setStatus({ code: STATUS_ERROR, message: error.message });
    span.end(startTime);
  }

  private buffer(span: BufferedSpan): void {
    if (this.buffered.length >= MAX_BUFFERED_SPANS) {
      warnOnce('telemetry:buffer', `more than ${MAX_BUFFERED_SPANS} spans before the exporter was ready; the rest were dropped`);
      return;
    }
    this.buffered.push(span);
    if (this.loadScheduled) return;
    this.loadScheduled = true;
    setImmediate(() => this.loaderScope.runInAsyncScope(() => this.loadNow()));
  }

  private queueForThread(span: WireFinding): void {
    if (this.toThread.length >= MAX_BUFFERED_SPANS) {
      warnOnce('telemetry:buffer', `more than ${MAX_BUFFERED_SPANS} spans in one turn of the event loop; the rest were dropped`);
      return;
    }
    this.toThread.push(span);
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => this.loaderScope.runInAsyncScope(() => this.drain()));
  }

  /** Sends the queued spans to the export thread (starting it with the first), or to the SDK if it cannot take them. */
  private drain(): void {
    this.drainScheduled = false;
    const batch = this.toThread;
    this.toThread = [];
    if (batch.length === 0) return;
    if (this.viaThread && !this.threadSpans) {
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the first span
        const { ThreadSpans } = require('./thread-spans.js') as typeof import('./thread-spans.js');
        const protocol = exporters().otlpTraceProtocol();
        const settings = { serviceName: resource().serviceNameOf(this.options.serviceName), version: agentVersion() };
        this.threadSpans = ThreadSpans.start(settings, protocol, (lost) => this.loaderScope.runInAsyncScope(() => this.inThisThread(lost)), this.options.thread);
      } catch (e) {
        warnOnce('telemetry:thread-spans', `spans are recorded in the app's thread: ${(e as Error).message}`);
      }
      if (!this.threadSpans) return this.inThisThread(batch);
    }
    if (this.threadSpans) this.threadSpans.send(batch);
    else this.inThisThread(batch);
  }

  /** From now on spans are recorded by an SDK in this thread; `spans` (which the export thread did not take) first. */
  private inThisThread(spans: readonly WireFinding[]): void {
    this.viaThread = false;
    this.exportThread = false;
    this.threadSpans = undefined;
    const pending = [...spans, ...this.toThread];
    this.toThread = [];
    if (this.loadFailed) return;
    try {
      const api = otelApi();
      for (const s of pending) {
        const parent = s.parent ? api.trace.setSpanContext(api.ROOT_CONTEXT, contextFromWire(s.parent)) : api.ROOT_CONTEXT;
        const error = s.error === undefined ? undefined : { message: s.error };
        // A later batch's answer can arrive after the SDK has loaded: recorded at once then.
        if (this.tracer) this.record(this.tracer, s.name, s.attributes, error, parent, s.time);
        else this.buffer({ name: s.name, attributes: s.attributes, error, parent, startTime: s.time });
      }
    } catch (e) {
      warnOnce('telemetry:span', `could not record a span: ${(e as Error).message}`);
    }
    if (!this.tracer) this.loadNow();
  }

  /** Loads the SDK and the exporter (once), then sends what was buffered. */
  private loadNow(): void {
    if (!this.wanted || this.tracer || this.loadFailed) return;
    try {
      const { BasicTracerProvider, resources } = sdk();
      const processors = this.options.spanProcessors ?? processorsFromEnv(this.exportThread);
      if (processors.length === 0) {
        this.loadFailed = true;
        return;
      }
      const { agentResource, serviceNameOf } = resource();
      const provider = new BasicTracerProvider({ resource: agentResource(resources, serviceNameOf(this.options.serviceName)), spanProcessors: [...processors] });
      this.provider = provider;
      this.tracer = provider.getTracer('stepguard', agentVersion());
    } catch (e) {
      this.loadFailed = true;
      this.buffered = [];
      log.error(`telemetry is off: the OpenTelemetry SDK could not be loaded (${(e as Error).message})`);
      return;
    }
    const pending = this.buffered;
    this.buffered = [];
    for (const s of pending) {
      try {
        this.record(this.tracer, s.name, s.attributes, s.error, s.parent, s.startTime);
      } catch (e) {
        warnOnce('telemetry:span', `could not record a span: ${(e as Error).message}`);
      }
    }
  }
}

/* eslint-disable @typescript-eslint/no-require-imports -- loaded at the first span, not at start */
function otelApi(): typeof import('@opentelemetry/api') {
  return require('@opentelemetry/api') as typeof import('@opentelemetry/api');
}

function resource(): typeof import('./resource.js') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the first span
  return require('./resource.js') as typeof import('./resource.js');
}

function contextFromWire(wire: WireContext): import('@opentelemetry/api').SpanContext {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- only when spans move back from the export thread
  return (require('./export-wire.js') as typeof import('./export-wire.js')).contextFromWire(wire);
}

/**
 * `{ parent }`: the app's active span, when the app has registered a context manager with the OpenTelemetry API;
 * otherwise `{}` without loading the API (with nothing registered, it would answer the root context).
 */
function parentOfActive(): { parent?: WireContext } {
  const registered = (globalThis as { [OTEL_API_GLOBAL]?: { context?: unknown } })[OTEL_API_GLOBAL];
  if (!registered?.context) return {};
  const { context, trace } = otelApi();
  const spanContext = trace.getSpanContext(context.active());
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return {};
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- only in apps with OpenTelemetry of their own
  return { parent: (require('./export-wire.js') as typeof import('./export-wire.js')).contextToWire(spanContext) };
}

/** The tracing SDK without sdk-node, which would also load the metrics, logs and every exporter. */
function sdk(): { BasicTracerProvider: typeof import('@opentelemetry/sdk-trace-base').BasicTracerProvider; resources: typeof import('@opentelemetry/resources') } {
  const { BasicTracerProvider } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  return { BasicTracerProvider, resources: require('@opentelemetry/resources') as typeof import('@opentelemetry/resources') };
}
/* eslint-enable @typescript-eslint/no-require-imports */

function isKnownExporter(name: string): boolean {
  return name === 'otlp' || name === 'console';
}

function exporterNames(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.OTEL_TRACES_EXPORTER ?? 'otlp')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

function exporters(): typeof import('./trace-exporters.js') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the SDK, at the first span
  return require('./trace-exporters.js') as typeof import('./trace-exporters.js');
}

function processorsFromEnv(exportThread: boolean): SpanProcessor[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the SDK, at the first span
  const tracing = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const out: SpanProcessor[] = [];
  for (const name of exporterNames()) {
    if (name === 'none') return [];
    const exporter = exporterFor(name, exportThread);
    // Batching keeps export off the request path; a dead endpoint only drops spans (bounded queue).
    if (exporter) out.push(boundedBatchProcessor(tracing.BatchSpanProcessor, exporter, name));
  }
  return out;
}

function exporterFor(name: string, exportThread: boolean): SpanExporter | undefined {
  switch (name) {
    case 'otlp': {
      const protocol = exporters().otlpTraceProtocol();
      if (!exportThread) return exporters().otlpTraceExporter(protocol);
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the exporter, at the first span
      const { ThreadSpanExporter } = require('./thread-exporter.js') as typeof import('./thread-exporter.js');
      return new ThreadSpanExporter({ protocol });
    }
    case 'console':
      return exporters().consoleSpanExporter();
    default:
      return undefined; // said at start (see the constructor)
  }
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes)$/i.test(value.trim());
}

let cachedVersion: string | undefined;
export function agentVersion(): string {
  if (cachedVersion) return cachedVersion;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's own manifest
    cachedVersion = (require('../../../package.json') as { version: string }).version;
  } catch {
    cachedVersion = '0.0.0';
  }
  return cachedVersion;
}

export { ATTR };
