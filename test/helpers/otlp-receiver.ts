/**
 * A loopback OTLP/HTTP trace receiver: accepts the exporter's real wire format (JSON or protobuf) and
 * flattens spans for assertions. The protobuf decoder is generated code from @opentelemetry/otlp-transformer.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

const require = createRequire(import.meta.url);

export interface ReceivedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Record<string, string | number | boolean>;
  status: { code: number; message?: string };
  resource: Record<string, string | number | boolean>;
  scope: string;
}

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value: AnyValue };

function flatten(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = kv.value ?? {};
    out[kv.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? '';
  }
  return out;
}

function toHex(id: string | undefined, fromBase64: boolean): string | undefined {
  if (!id) return undefined;
  return fromBase64 ? Buffer.from(id, 'base64').toString('hex') : id;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly rawBodies: string[] = [];
  private server = http.createServer((req, res) => this.handle(req, res));
  private waiters: Array<() => void> = [];

  /** `keepAliveTimeoutMs`: how long an idle exporter connection stays open (Node's default is 5 s). */
  constructor(options: { keepAliveTimeoutMs?: number } = {}) {
    if (options.keepAliveTimeoutMs !== undefined) this.server.keepAliveTimeout = options.keepAliveTimeoutMs;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Resolves when `predicate` holds over the received spans (polling on every export). */
  async waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs = 10_000): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.spans)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for spans; got ${this.spans.map((s) => s.name).join(', ') || 'none'}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.spans;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const json = (req.headers['content-type'] ?? '').includes('json');
      // The agent also exports metrics to the same OTLP endpoint (/v1/metrics): accepted, not decoded as spans.
      if (!(req.url ?? '').endsWith('/v1/traces')) {
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : undefined);
        return;
      }
      let message: { resourceSpans?: unknown[] };
      if (json) {
        message = JSON.parse(body.toString('utf8')) as typeof message;
        this.rawBodies.push(body.toString('utf8'));
      } else {
        const root = require('otlp-decoder/build/src/generated/root');
        const T = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
        message = T.toObject(T.decode(body), { longs: String, bytes: String });
        this.rawBodies.push(JSON.stringify(message));
      }
      for (const rs of (message.resourceSpans ?? []) as Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ scope?: { name?: string }; spans?: Array<Record<string, unknown>> }> }>) {
        const resource = flatten(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const span of ss.spans ?? []) {
            this.spans.push({
              name: span.name as string,
              traceId: toHex(span.traceId as string, !json)!,
              spanId: toHex(span.spanId as string, !json)!,
              parentSpanId: toHex(span.parentSpanId as string | undefined, !json) || undefined,
              attributes: flatten(span.attributes as KeyValue[]),
              status: (span.status as { code: number; message?: string }) ?? { code: 0 },
              resource,
              scope: ss.scope?.name ?? '',
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : '');
      for (const w of this.waiters.splice(0)) w();
    });
  }
}
