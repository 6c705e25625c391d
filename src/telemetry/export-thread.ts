/**
 * The export thread's entry point (a `worker_threads` Worker started by `ThreadSpanExporter`). It holds the
 * OTLP exporter: its modules, its serializer and its HTTP requests live in this thread's isolate, not the
 * app's, so the app's own HTTP code never shares inline caches with the exporter's requests (in the app's
 * thread the loaded exporter made every later request of a plain server about 7 k instructions dearer).
 * Nothing of the agent runs here: the thread starts with no preload, so nothing is instrumented.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { spansFromWire } from './span-wire.js';
import { otlpTraceExporter, type OtlpProtocol } from './trace-exporters.js';
import type { ThreadReply, ThreadRequest } from './thread-exporter.js';

const port = parentPort;
if (!port) throw new Error('stepguard: the export thread must be started as a worker');

const exporter: SpanExporter = otlpTraceExporter((workerData as { protocol: OtlpProtocol }).protocol);

function reply(message: ThreadReply): void {
  port!.postMessage(message);
}

function failure(id: number, error: unknown): ThreadReply {
  return { id, code: 1, error: error instanceof Error ? error.message : String(error) };
}

port.on('message', (request: ThreadRequest) => {
  const { id } = request;
  try {
    switch (request.op) {
      case 'export':
        exporter.export(spansFromWire(request.batch), (result) => reply(result.error ? { id, code: result.code, error: result.error.message } : { id, code: result.code }));
        return;
      case 'flush':
        (exporter.forceFlush?.() ?? Promise.resolve()).then(
          () => reply({ id, code: 0 }),
          (e: unknown) => reply(failure(id, e)),
        );
        return;
      case 'shutdown':
        exporter.shutdown().then(
          () => reply({ id, code: 0 }),
          (e: unknown) => reply(failure(id, e)),
        );
        return;
    }
  } catch (e) {
    reply(failure(id, e));
  }
});
