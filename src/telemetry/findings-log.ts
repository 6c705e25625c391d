import { AsyncResource } from 'node:async_hooks';
import { appendFileSync, promises as filePromises } from 'node:fs';
import { dirname } from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import type { Recorder } from './telemetry.js';
import { countDropped } from './export-health.js';
import { errorMessage, warnOnce } from '../log.js';

/**
 * The local findings log: one JSON line per finding, step-up event and anomaly, with exactly the (already
 * redacted) span attributes — the data source of `stepguard findings` and `stepguard dashboard`, and a file
 * people tail, grep and ship. Writing never blocks a request: lines are buffered (bounded; overflow is
 * dropped and counted) and appended asynchronously, outside any request's async context, so the agent's
 * own fs hook never sees these writes. The file rotates by size: `file` → `file.1` → … → `file.<KEEP>`.
 */

/** Rotated generations kept next to the live file. */
export const KEEP_ROTATED = 3;
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Lines written within this delay share one append. */
const FLUSH_DELAY_MS = 25;

export interface FindingsLogOptions {
  readonly file: string;
  readonly maxBytes: number;
  readonly now?: () => number;
}

export class FindingsLog implements Recorder {
  private buffer: string[] = [];
  private bufferedBytes = 0;
  private size: number | undefined;
  private scheduled = false;
  private draining: Promise<void> | undefined;
  private madeDirectory = false;
  /** Captured at start (outside any request): timers and fs calls of the writer run in this context. */
  private readonly scope = new AsyncResource('stepguard.findings-log');
  private readonly onExit = (): void => this.flushSync();
  readonly file: string;
  private readonly maxBytes: number;
  private readonly now: () => number;

  constructor(options: FindingsLogOptions) {
    this.file = options.file;
    this.maxBytes = options.maxBytes;
    this.now = options.now ?? Date.now;
    process.on('exit', this.onExit);
  }

  record(name: string, attributes: Attributes, error?: { message: string }): void {
    const line = `${JSON.stringify({
      time: new Date(this.now()).toISOString(),
      event: name.startsWith('stepguard.') ? name.slice('stepguard.'.length) : name,
      ...(error ? { status: 'error' } : {}),
      ...attributes,
    })}\n`;
    if (this.bufferedBytes + line.length > MAX_BUFFERED_BYTES) {
      countDropped('findings_log', 1);
      warnOnce('findings-log:full', `the findings log ${this.file} cannot keep up; lines are dropped (counted in stepguard.telemetry.dropped)`);
      return;
    }
    this.buffer.push(line);
    this.bufferedBytes += line.length;
    this.schedule();
  }

  /** Resolves when everything recorded so far is in the file. */
  async flush(): Promise<void> {
    while (this.buffer.length > 0 || this.draining) await (this.draining ?? this.drain());
  }

  async shutdown(): Promise<void> {
    await this.flush();
    process.off('exit', this.onExit);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.scope.runInAsyncScope(() => {
      setTimeout(() => {
        this.scheduled = false;
        void this.drain();
      }, FLUSH_DELAY_MS).unref();
    });
  }

  private drain(): Promise<void> {
    if (this.draining) return this.draining;
    if (this.buffer.length === 0) return Promise.resolve();
    this.draining = this.scope.runInAsyncScope(async () => {
      try {
        while (this.buffer.length > 0) {
          const lines = this.buffer;
          this.buffer = [];
          this.bufferedBytes = 0;
          try {
            await this.append(lines.join(''));
          } catch (error) {
            countDropped('findings_log', lines.length);
            this.size = undefined;
            warnOnce('findings-log:write', `could not write the findings log ${this.file}: ${errorMessage(error)}; lines are dropped`);
          }
        }
      } finally {
        this.draining = undefined;
      }
    });
    return this.draining;
  }

  // `fs.promises` is read here, at the first write, not imported: reading it loads Node's promise file API (hooks/fs.ts),
  // which an agent that never writes a line need not load at start.
  private async append(chunk: string): Promise<void> {
    const bytes = Buffer.byteLength(chunk);
    if (!this.madeDirectory) {
      await filePromises.mkdir(dirname(this.file), { recursive: true });
      this.madeDirectory = true;
    }
    this.size ??= await filePromises.stat(this.file).then(
      (s) => s.size,
      () => 0,
    );
    if (this.size > 0 && this.size + bytes > this.maxBytes) {
      await this.rotate();
      this.size = 0;
    }
    await filePromises.appendFile(this.file, chunk, { mode: 0o600 });
    this.size += bytes;
  }

  private async rotate(): Promise<void> {
    for (let i = KEEP_ROTATED - 1; i >= 1; i--) {
      await filePromises.rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch(() => undefined);
    }
    await filePromises.rename(this.file, `${this.file}.1`);
  }

  /** At exit only: whatever is still buffered goes to the file synchronously. */
  private flushSync(): void {
    if (this.buffer.length === 0) return;
    try {
      appendFileSync(this.file, this.buffer.join(''), { mode: 0o600 });
      this.buffer = [];
    } catch {
      // Exiting: nothing sensible left to do.
    }
  }
}
