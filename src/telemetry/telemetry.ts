import { context, SpanStatusCode, type Attributes, type Tracer } from '@opentelemetry/api';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { tracing as Tracing, resources as Resources } from '@opentelemetry/sdk-node';
import { log, warnOnce } from '../log.js';
import { ATTR } from './attributes.js';
import { boundedBatchProcessor } from './export-health.js';

/**
 * A private tracer provider: never registered globally, so an app with its own OpenTelemetry SDK keeps
 * all of its telemetry (registering first would make the app's own `start()` fail silently). Our spans
 * still join the app's traces: they are started under `context.active()`, which is the app's server
 * span when the app has OTel. The exporter is chosen by the standard OTEL_* variables.
 */

export interface TelemetryOptions {
  readonly enabled: boolean;
  readonly serviceName: string | undefined;
  /** For embedding and tests: explicit processors instead of the env-configured exporter. */
  readonly spanProcessors?: readonly SpanProcessor[];
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

export class Telemetry {
  private readonly tracer: Tracer | undefined;
  private readonly provider: { forceFlush(): Promise<void>; shutdown(): Promise<void> } | undefined;
  private readonly recorders: Recorder[] = [];

  constructor(options: TelemetryOptions) {
    if (!options.enabled || isTrue(process.env.OTEL_SDK_DISABLED)) return;
    // The SDK costs ~120 ms to load: only when something will be exported.
    if (!options.spanProcessors && exporterNames().every((n) => n === 'none')) return;
    const { tracing, resources } = sdk();
    const processors = options.spanProcessors ?? processorsFromEnv();
    if (processors.length === 0) return;
    const serviceName = options.serviceName ?? process.env.OTEL_SERVICE_NAME ?? defaultServiceName();
    const resource = resources
      .resourceFromAttributes({ 'service.name': serviceName })
      .merge(resources.detectResources({ detectors: [resources.envDetector] }))
      .merge(resources.resourceFromAttributes({ 'service.name': serviceName }));
    const provider = new tracing.BasicTracerProvider({ resource, spanProcessors: [...processors] });
    this.provider = provider;
    this.tracer = provider.getTracer('stepguard', agentVersion());
  }

  get active(): boolean {
    return this.tracer !== undefined;
  }

  /** Adds a recorder fed by every later `span()` call (trends: metrics, findings log, anomalies). */
  addRecorder(recorder: Recorder): void {
    this.recorders.push(recorder);
  }

  /** One short span, parented on the app's active span when there is one. Never throws. */
  span(name: string, attributes: Attributes, error?: { message: string }): void {
    for (const recorder of this.recorders) {
      try {
        recorder.record(name, attributes, error);
      } catch (e) {
        warnOnce(`telemetry:recorder:${recorder.constructor.name}`, `a trends recorder failed and skipped an event: ${(e as Error).message}`);
      }
    }
    if (!this.tracer) return;
    try {
      const span = this.tracer.startSpan(name, { attributes }, context.active());
      if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      span.end();
    } catch (e) {
      warnOnce('telemetry:span', `could not record a span: ${(e as Error).message}`);
    }
  }

  async flush(): Promise<void> {
    await this.provider?.forceFlush().catch(() => undefined);
    await Promise.all(this.recorders.map((r) => r.flush?.().catch(() => undefined)));
  }

  async shutdown(): Promise<void> {
    await this.provider?.shutdown().catch(() => undefined);
    await Promise.all(this.recorders.map((r) => r.shutdown?.().catch(() => undefined)));
  }
}

function sdk(): { tracing: typeof Tracing; resources: typeof Resources } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when spans are exported
  return require('@opentelemetry/sdk-node') as { tracing: typeof Tracing; resources: typeof Resources };
}

function exporterNames(): string[] {
  return (process.env.OTEL_TRACES_EXPORTER ?? 'otlp')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

function processorsFromEnv(): SpanProcessor[] {
  const { tracing } = sdk();
  const out: SpanProcessor[] = [];
  for (const name of exporterNames()) {
    if (name === 'none') return [];
    const exporter = exporterFor(name);
    // Batching keeps export off the request path; a dead or hanging endpoint only drops spans, counted, from
    // a bounded queue, and says so once when export starts failing and once when it recovers.
    if (exporter) out.push(boundedBatchProcessor(tracing.BatchSpanProcessor, exporter, name));
  }
  return out;
}

function exporterFor(name: string): SpanExporter | undefined {
  switch (name) {
    case 'otlp': {
      const protocol = (process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? process.env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
      if (protocol === 'http/json') {
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only for the chosen protocol
        const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
        return new OTLPTraceExporter();
      }
      if (protocol !== 'http/protobuf') {
        warnOnce('telemetry:protocol', `OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported by stepguard; using http/protobuf`);
      }
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only for the chosen protocol
      const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto');
      return new OTLPTraceExporter();
    }
    case 'console':
      return new (sdk().tracing.ConsoleSpanExporter)();
    default:
      log.warn(`OTEL_TRACES_EXPORTER=${name} is not supported by stepguard (use otlp, console or none); ignored`);
      return undefined;
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
