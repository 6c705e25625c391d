/**
 * Export that tells and stays bounded, with the real SDK batch processor and an exporter whose answers the
 * test controls: a hanging endpoint never gets a second batch in flight, overflow is dropped and counted,
 * and the failure and the recovery are each said once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tracing } from '@opentelemetry/sdk-node';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { boundedBatchProcessor, dropped } from '../../../src/telemetry/export-health.js';
import { captureStderr } from '../../helpers/stderr.js';

type Done = (result: { code: number; error?: Error }) => void;

class ControlledExporter implements SpanExporter {
  readonly pending: Array<{ spans: ReadableSpan[]; done: Done }> = [];
  exported = 0;
  export(spans: ReadableSpan[], done: Done): void {
    this.pending.push({ spans, done });
  }
  answer(ok: boolean): void {
    const next = this.pending.shift()!;
    if (ok) this.exported += next.spans.length;
    next.done(ok ? { code: 0 } : { code: 1, error: new Error('connect ECONNREFUSED 127.0.0.1:4318') });
  }
  async shutdown(): Promise<void> {}
}

const stderr = captureStderr();
beforeEach(() => {
  process.env.OTEL_BSP_MAX_QUEUE_SIZE = '100';
  process.env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE = '10';
  process.env.OTEL_BSP_SCHEDULE_DELAY = '1';
});
afterEach(() => {
  delete process.env.OTEL_BSP_MAX_QUEUE_SIZE;
  delete process.env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE;
  delete process.env.OTEL_BSP_SCHEDULE_DELAY;
});

const tick = () => new Promise((r) => setTimeout(r, 20));

describe('boundedBatchProcessor', () => {
  it('keeps one export in flight against a hanging endpoint, drops and counts the rest, and reports failure and recovery once', async () => {
    const exporter = new ControlledExporter();
    const processor = boundedBatchProcessor(tracing.BatchSpanProcessor, exporter, 'otlp');
    const provider = new tracing.BasicTracerProvider({ spanProcessors: [processor] });
    const tracer = provider.getTracer('test');
    const before = dropped.spans;

    for (let i = 0; i < 500; i++) tracer.startSpan(`s${i}`).end();
    for (let i = 0; i < 20; i++) await tick();
    // The endpoint hangs: exactly one batch is waiting in the exporter; never a pile of them.
    expect(exporter.pending).toHaveLength(1);
    // At most the queue limit plus one batch is held; everything else was dropped and counted.
    expect(dropped.spans - before).toBeGreaterThanOrEqual(500 - 100 - 10);
    expect(stderr().filter((l) => l.includes('export of spans (OTEL_TRACES_EXPORTER=otlp) is failing'))).toHaveLength(1);

    exporter.answer(false);
    for (let i = 0; i < 5; i++) {
      await tick();
      while (exporter.pending.length > 0) exporter.answer(false);
    }
    expect(stderr().filter((l) => l.includes('is failing'))).toHaveLength(1);

    // The endpoint is back: the next batch succeeds and the recovery is said once.
    tracer.startSpan('after').end();
    for (let i = 0; i < 10 && exporter.exported === 0; i++) {
      await tick();
      while (exporter.pending.length > 0) exporter.answer(true);
    }
    expect(exporter.exported).toBeGreaterThan(0);
    expect(stderr().filter((l) => l.includes('export of spans (OTEL_TRACES_EXPORTER=otlp) recovered'))).toHaveLength(1);
    await provider.shutdown();
  });
});
