import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { join } from 'node:path';
import type { Worker, WorkerOptions } from 'node:worker_threads';
import { warnOnce } from '../log.js';
import { spansToWire, type WireBatch } from './span-wire.js';
import { otlpTraceExporter, type OtlpProtocol } from './trace-exporters.js';

/**
 * A span exporter that hands finished batches to a thread of their own, where the OTLP exporter runs (see
 * `export-thread.ts` for why). To the batch processor it is an ordinary exporter: one call, one answer.
 *
 * The thread never keeps the app alive by itself: it is referenced only while an answer is awaited, as the
 * in-process exporter's socket would be. If the thread cannot start or stops, the agent says so once and
 * exports from the app's thread from then on; batches in flight at that moment fail and are counted as dropped.
 */

export type ThreadRequest =
  | { readonly id: number; readonly op: 'export'; readonly batch: WireBatch }
  | { readonly id: number; readonly op: 'flush' }
  | { readonly id: number; readonly op: 'shutdown' };

export interface ThreadReply {
  readonly id: number;
  readonly code: number;
  readonly error?: string;
}

type Answer = (reply: ThreadReply) => void;
type ExportResult = { code: number; error?: Error };
type Request = { readonly op: 'export'; readonly batch: WireBatch } | { readonly op: 'flush' } | { readonly op: 'shutdown' };

/** ExportResultCode.FAILED of @opentelemetry/core (not imported: it is not needed in this thread otherwise). */
const FAILED = 1;

export type StartThread = (file: string, options: WorkerOptions) => Worker;

const startWorker: StartThread = (file, options) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded with the exporter, at the first span
  const { Worker: WorkerClass } = require('node:worker_threads') as typeof import('node:worker_threads');
  return new WorkerClass(file, options);
};

export interface ThreadExporterOptions {
  readonly protocol: OtlpProtocol;
  /** The compiled entry point; by default `export-thread.js` beside this file. */
  readonly file?: string;
  readonly start?: StartThread;
  /** The exporter used when the thread cannot run; by default the OTLP exporter in the app's thread. */
  readonly inProcess?: () => SpanExporter;
}

export class ThreadSpanExporter implements SpanExporter {
  private worker: Worker | undefined;
  private fallback: SpanExporter | undefined;
  private readonly pending = new Map<number, Answer>();
  private nextId = 1;
  private stopping = false;

  constructor(private readonly options: ThreadExporterOptions) {
    try {
      const worker = (options.start ?? startWorker)(options.file ?? join(__dirname, 'export-thread.js'), {
        workerData: { protocol: options.protocol },
        // No preload (the app's `--require stepguard/register`), no inspector port: nothing of the agent or
        // the app's flags in the thread; it reads the OTEL_* variables from its copy of the environment.
        execArgv: [],
        resourceLimits: { maxOldGenerationSizeMb: 64 },
      });
      worker.on('message', (reply: ThreadReply) => this.answer(reply));
      worker.on('error', (error: Error) => this.gone(worker, error.message));
      worker.on('exit', (code: number) => this.gone(worker, `exit code ${code}`));
      worker.unref(); // after the listeners: attaching a 'message' listener refs the thread's port again
      this.worker = worker;
    } catch (e) {
      this.gone(undefined, (e as Error).message);
    }
  }

  /** Whether exports go to the thread (false once it has stopped or could not start). */
  get threaded(): boolean {
    return this.worker !== undefined;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (!this.worker) {
      this.exportInProcess(spans, done);
      return;
    }
    let batch: WireBatch;
    try {
      batch = spansToWire(spans);
    } catch (e) {
      done({ code: FAILED, error: e as Error });
      return;
    }
    this.send({ op: 'export', batch }, (reply) => done(reply.error === undefined ? { code: reply.code } : { code: reply.code, error: new Error(reply.error) }));
  }

  forceFlush(): Promise<void> {
    if (!this.worker) return this.fallback?.forceFlush?.() ?? Promise.resolve();
    return new Promise((resolve) => this.send({ op: 'flush' }, () => resolve()));
  }

  shutdown(): Promise<void> {
    this.stopping = true;
    const worker = this.worker;
    if (!worker) return this.fallback?.shutdown() ?? Promise.resolve();
    return new Promise<void>((resolve) => this.send({ op: 'shutdown' }, () => resolve())).then(() => worker.terminate().then(() => undefined));
  }

  private send(request: Request, answer: Answer): void {
    const worker = this.worker!;
    const id = this.nextId++;
    this.pending.set(id, answer);
    worker.ref();
    try {
      worker.postMessage({ ...request, id } satisfies ThreadRequest);
    } catch (e) {
      this.answer({ id, code: FAILED, error: `could not hand the batch to the export thread: ${(e as Error).message}` });
    }
  }

  private answer(reply: ThreadReply): void {
    const answer = this.pending.get(reply.id);
    if (!answer) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    answer(reply);
  }

  private gone(worker: Worker | undefined, reason: string): void {
    if (worker !== undefined && worker !== this.worker) return; // already handled ('error' is followed by 'exit')
    this.worker = undefined;
    if (!this.stopping) {
      warnOnce('telemetry:thread', `the span export thread stopped (${reason}); spans are exported from the app's thread from now on`);
    }
    const waiting = [...this.pending];
    this.pending.clear();
    for (const [id, answer] of waiting) answer({ id, code: FAILED, error: `the export thread stopped (${reason})` });
  }

  private exportInProcess(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      this.fallback ??= (this.options.inProcess ?? (() => otlpTraceExporter(this.options.protocol)))();
    } catch (e) {
      done({ code: FAILED, error: new Error(`the span exporter could not be loaded: ${(e as Error).message}`) });
      return;
    }
    this.fallback.export(spans, done);
  }
}
