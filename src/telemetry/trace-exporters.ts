import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { warnOnce } from '../log.js';

/**
 * The span exporter named by `OTEL_TRACES_EXPORTER`, configured by the standard `OTEL_EXPORTER_OTLP_*`
 * variables. Used in the app's thread (console, or OTLP when the export thread is off) and in the export
 * thread, which has a copy of the app's environment.
 */

export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** The OTLP protocol for spans; an unsupported one is said once (in the app's thread) and replaced. */
export function otlpTraceProtocol(env: NodeJS.ProcessEnv = process.env): OtlpProtocol {
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol === 'http/json' || protocol === 'http/protobuf') return protocol;
  warnOnce('telemetry:protocol', `OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported by stepguard; using http/protobuf`);
  return 'http/protobuf';
}

/* eslint-disable @typescript-eslint/no-require-imports -- each exporter loads only when it is chosen, at the first span */
export function otlpTraceExporter(protocol: OtlpProtocol): SpanExporter {
  if (protocol === 'http/json') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter();
  }
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter();
}

export function consoleSpanExporter(): SpanExporter {
  return new (require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base')).ConsoleSpanExporter();
}
/* eslint-enable @typescript-eslint/no-require-imports */
