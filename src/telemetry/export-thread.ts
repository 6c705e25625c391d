/**
 * The export thread's entry point (a `worker_threads` Worker started by `ExportThread`). It holds the OTLP
 * exporters for spans and metrics: their modules, serializers and HTTP requests live in this thread's isolate,
 * not the app's, so the app's own HTTP code never shares inline caches with the exporters' requests (in the
 * app's thread a loaded span exporter made every later request of a plain server about 7 k instructions dearer).
 * Nothing of the agent runs here: the thread starts with no preload, so nothing is instrumented.
 */
import { parentPort } from 'node:worker_threads';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { metricsFromWire, spansFromWire, type WireBatch, type WireMetrics } from './export-wire.js';
import type { OtlpProtocol } from './trace-exporters.js';
import type { Signal, ThreadReply, ThreadRequest } from './thread-exporter.js';

const port = parentPort;
if (!port) throw new Error('stepguard: the export thread must be started as a worker');

type Exporter = SpanExporter | PushMetricExporter;
const exporters = new Map<string, Exporter>();

/* eslint-disable @typescript-eslint/no-require-imports -- each exporter loads when its signal first arrives */
function create(signal: Signal, protocol: OtlpProtocol): Exporter {
  if (signal === 'spans') {
    return (require('./trace-exporters.js') as typeof import('./trace-exporters.js')).otlpTraceExporter(protocol);
  }
  if (protocol === 'http/json') {
    return new (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter();
  }
  return new (require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
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

function reply(message: ThreadReply): void {
  port!.postMessage(message);
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

port.on('message', (request: ThreadRequest) => {
  const { id } = request;
  try {
    const exporter = exporterFor(request.signal, request.protocol);
    switch (request.op) {
      case 'export': {
        const done = (result: { code: number; error?: Error }): void => reply(result.error ? { id, code: result.code, error: result.error.message } : { id, code: result.code });
        if (request.signal === 'spans') (exporter as SpanExporter).export(spansFromWire(request.batch as WireBatch), done);
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
        exporters.delete(`${request.signal} ${request.protocol}`);
        settle(id, exporter.shutdown());
        return;
    }
  } catch (e) {
    reply(failure(id, e));
  }
});
