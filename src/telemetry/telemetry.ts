import type { Attributes, Context, Tracer } from '@opentelemetry/api';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AsyncResource } from 'node:async_hooks';
import { log, warnOnce } from '../log.js';
import { ATTR, RESOURCE } from './attributes.js';
import { boundedBatchProcessor } from './export-health.js';
import { whileAgentLoads } from '../instrument/loading.js';

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
 */

export interface TelemetryOptions {
  readonly enabled: boolean;
  readonly serviceName: string | undefined;
  /** For embedding and tests: explicit processors instead of the env-configured exporter. */
  readonly spanProcessors?: readonly SpanProcessor[];
  /** Run the OTLP exporter in a thread of its own (default true); see `thread-exporter.ts`. */
  readonly exportThread?: boolean;
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
    if (this.buffered.length > 0) this.loaderScope.runInAsyncScope(() => this.loadNow());
    await this.provider?.forceFlush().catch(() => undefined);
    await Promise.all(this.recorders.map((r) => r.flush?.().catch(() => undefined)));
  }

  async shutdown(): Promise<void> {
    if (this.buffered.length > 0) this.loaderScope.runInAsyncScope(() => this.loadNow());
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

  /** Loads the SDK and the exporter (once), then sends what was buffered. */
  private loadNow(): void {
    if (!this.wanted || this.tracer || this.loadFailed) return;
    try {
      const { BasicTracerProvider, resources } = sdk();
      const processors = this.options.spanProcessors ?? processorsFromEnv(this.options.exportThread ?? true);
      if (processors.length === 0) {
        this.loadFailed = true;
        return;
      }
      const serviceName = this.options.serviceName ?? process.env.OTEL_SERVICE_NAME ?? defaultServiceName();
      const resource = resources
        .resourceFromAttributes({ [RESOURCE.SERVICE_NAME]: serviceName })
        .merge(resources.detectResources({ detectors: [resources.envDetector] }))
        .merge(resources.resourceFromAttributes({ [RESOURCE.SERVICE_NAME]: serviceName }));
      const provider = new BasicTracerProvider({ resource, spanProcessors: [...processors] });
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

function defaultServiceName(): string {
  return `unknown_service:${process.argv0 ?? 'node'}`;
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
