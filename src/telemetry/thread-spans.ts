import { log } from '../log.js';
import { sharedExportThread, type ExportThread, type PipelineSettings, type WireFinding } from './thread-exporter.js';
import type { OtlpProtocol } from './trace-exporters.js';

/**
 * The agent's spans recorded by a tracer in the export thread (`export-thread.ts`): the app's thread sends each
 * tick's spans as plain records and loads nothing of the SDK. If the thread cannot start, or a batch does not
 * reach its tracer (the thread stopped, its SDK could not load), `onLost` gets that batch back, and the agent records
 * it and every later span in its own thread.
 */
export class ThreadSpans {
  private open = true;

  private constructor(
    private readonly thread: ExportThread,
    private readonly protocol: OtlpProtocol,
    private readonly onLost: (spans: readonly WireFinding[], reason: string) => void,
  ) {}

  /** Starts (or joins) the thread and its span pipeline; undefined when the thread cannot run. */
  static start(settings: PipelineSettings, protocol: OtlpProtocol, onLost: (spans: readonly WireFinding[], reason: string) => void, thread: ExportThread = sharedExportThread()): ThreadSpans | undefined {
    thread.acquire();
    if (!thread.alive) {
      void thread.release();
      return undefined;
    }
    const spans = new ThreadSpans(thread, protocol, onLost);
    thread.request({ signal: 'spans', protocol, op: 'open', pipeline: settings }, (reply) => {
      if (reply.code !== 0) spans.lost([], reply.error ?? 'the span pipeline could not start');
    });
    return spans;
  }

  get usable(): boolean {
    return this.open && this.thread.alive;
  }

  send(spans: readonly WireFinding[]): void {
    if (!this.usable) return this.onLost(spans, 'the export thread is not running');
    this.thread.request({ signal: 'spans', protocol: this.protocol, op: 'record', spans }, (reply) => {
      if (reply.code !== 0) this.lost(spans, reply.error ?? 'no reason given');
    });
  }

  flush(): Promise<void> {
    if (!this.usable) return Promise.resolve();
    return new Promise((resolve) => this.thread.request({ signal: 'spans', protocol: this.protocol, op: 'flush' }, () => resolve()));
  }

  async shutdown(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    if (this.thread.alive) await new Promise<void>((resolve) => this.thread.request({ signal: 'spans', protocol: this.protocol, op: 'shutdown' }, () => resolve()));
    await this.thread.release();
  }

  /** The first loss moves spans to the app's thread for good; later answers of batches already sent join it. */
  private lost(spans: readonly WireFinding[], reason: string): void {
    if (this.open) {
      this.open = false;
      if (this.thread.alive) log.warn(`spans are recorded in the app's thread from now on: the export thread could not take them (${reason})`);
      void this.thread.release();
    }
    this.onLost(spans, reason);
  }
}
