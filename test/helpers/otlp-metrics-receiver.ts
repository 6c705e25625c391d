/**
 * A loopback OTLP/HTTP metrics receiver: decodes the exporter's real wire format (JSON or protobuf) and keeps
 * the latest value of every series (cumulative temporality: the latest export holds the totals).
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

const require = createRequire(import.meta.url);

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value: AnyValue };
type Point = { attributes?: KeyValue[]; asInt?: string | number; asDouble?: number; count?: string | number; sum?: number };
type Metric = { name: string; unit?: string; sum?: { dataPoints?: Point[] }; histogram?: { dataPoints?: Point[] } };

export interface Series {
  readonly service: string;
  readonly metric: string;
  readonly unit: string;
  readonly attributes: Record<string, string | number | boolean>;
  /** A counter's value, or a histogram's count. */
  readonly value: number;
  /** A histogram's sum. */
  readonly sum?: number;
}

function flatten(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = kv.value ?? {};
    out[kv.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? '';
  }
  return out;
}

export class OtlpMetricsReceiver {
  readonly latest = new Map<string, Series>();
  readonly contentTypes = new Set<string>();
  rawBodies: string[] = [];
  exports = 0;
  private server = http.createServer((req, res) => this.handle(req, res));

  /** Listens on 127.0.0.1 (`port` 0: any free port); returns the endpoint URL. */
  async start(port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  series(service: string, metric: string): Series[] {
    return [...this.latest.values()].filter((s) => s.service === service && s.metric === metric);
  }

  async waitFor(what: string, predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have:\n${[...this.latest.keys()].join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const type = req.headers['content-type'] ?? '';
      this.contentTypes.add(type);
      const json = type.includes('json');
      let message: { resourceMetrics?: Array<{ resource?: { attributes?: KeyValue[] }; scopeMetrics?: Array<{ scope?: { name?: string }; metrics?: Metric[] }> }> };
      if (json) {
        message = JSON.parse(body.toString('utf8')) as typeof message;
        this.rawBodies.push(body.toString('utf8'));
      } else {
        const root = require('otlp-decoder/build/src/generated/root');
        const T = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
        message = T.toObject(T.decode(body), { longs: String, bytes: String }) as typeof message;
        this.rawBodies.push(JSON.stringify(message));
      }
      this.exports++;
      for (const rm of message.resourceMetrics ?? []) {
        const service = String(flatten(rm.resource?.attributes)['service.name'] ?? '');
        for (const sm of rm.scopeMetrics ?? []) {
          for (const metric of sm.metrics ?? []) {
            const points = metric.sum?.dataPoints ?? metric.histogram?.dataPoints ?? [];
            for (const p of points) {
              const attributes = flatten(p.attributes);
              const value = metric.histogram ? Number(p.count ?? 0) : Number(p.asInt ?? p.asDouble ?? 0);
              const key = `${service}|${metric.name}|${JSON.stringify(Object.entries(attributes).sort())}`;
              this.latest.set(key, { service, metric: metric.name, unit: metric.unit ?? '', attributes, value, ...(metric.histogram ? { sum: Number(p.sum ?? 0) } : {}) });
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : '');
    });
  }
}
