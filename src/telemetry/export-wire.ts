import type { Attributes, HrTime, Link, SpanContext, SpanStatus } from '@opentelemetry/api';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';

/**
 * Finished spans and collected metrics as plain data, so they can cross to the export thread (`postMessage`
 * copies plain data only: spans and resources carry methods and class instances). The far side rebuilds objects
 * with exactly what the OTLP serializers read, so the payload sent from the thread is the one the in-process
 * exporter sends.
 */

export interface WireContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly isRemote?: boolean;
  readonly traceState?: string;
}

interface WireLink {
  readonly context: WireContext;
  readonly attributes?: Attributes;
  readonly droppedAttributesCount?: number;
}

interface WireScope {
  readonly name: string;
  readonly version?: string;
  readonly schemaUrl?: string;
  readonly attributes?: Attributes;
}

interface WireResource {
  readonly attributes: Attributes;
  readonly schemaUrl?: string;
}

export interface WireSpan {
  readonly name: string;
  readonly kind: number;
  readonly context: WireContext;
  readonly parent?: WireContext;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
  readonly links: readonly WireLink[];
  readonly events: readonly TimedEvent[];
  readonly ended: boolean;
  /** Indexes into the batch's `resources` and `scopes`: spans of one tracer share both, sent once (the
   * protobuf serializer groups spans by the identity of these objects, so the far side must share them too). */
  readonly resource: number;
  readonly scope: number;
  readonly droppedAttributesCount: number;
  readonly droppedEventsCount: number;
  readonly droppedLinksCount: number;
}

export interface WireBatch {
  readonly resources: readonly WireResource[];
  readonly scopes: readonly WireScope[];
  readonly spans: readonly WireSpan[];
}

export function contextToWire(context: SpanContext): WireContext {
  const traceState = context.traceState?.serialize();
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    traceFlags: context.traceFlags,
    ...(context.isRemote !== undefined ? { isRemote: context.isRemote } : {}),
    ...(traceState ? { traceState } : {}),
  };
}

export function contextFromWire(wire: WireContext): SpanContext {
  const { traceState, ...rest } = wire;
  // The serializers only ever call `serialize()`; a full TraceState would need @opentelemetry/core here.
  return traceState === undefined ? rest : { ...rest, traceState: { serialize: () => traceState } as SpanContext['traceState'] & object };
}

function resourceToWire(resource: ReadableSpan['resource']): WireResource {
  return { attributes: { ...resource.attributes }, ...(resource.schemaUrl ? { schemaUrl: resource.schemaUrl } : {}) };
}

function resourceFromWire(r: WireResource): ReadableSpan['resource'] {
  const resource = {
    attributes: r.attributes,
    schemaUrl: r.schemaUrl,
    asyncAttributesPending: false,
    waitForAsyncAttributes: () => Promise.resolve(),
    getRawAttributes: () => Object.entries(r.attributes),
    merge(): never {
      throw new Error('a resource rebuilt for export cannot be merged');
    },
  };
  return resource as unknown as ReadableSpan['resource'];
}

export function spansToWire(spans: readonly ReadableSpan[]): WireBatch {
  const resources: WireResource[] = [];
  const resourceIndex = new Map<object, number>();
  const scopes: WireScope[] = [];
  const scopeIndex = new Map<object, number>();
  const out: WireSpan[] = [];
  for (const span of spans) {
    let index = resourceIndex.get(span.resource);
    if (index === undefined) {
      index = resources.length;
      resources.push(resourceToWire(span.resource));
      resourceIndex.set(span.resource, index);
    }
    const scope = span.instrumentationScope;
    let scopeAt = scopeIndex.get(scope);
    if (scopeAt === undefined) {
      scopeAt = scopes.length;
      scopes.push({
        name: scope.name,
        ...(scope.version !== undefined ? { version: scope.version } : {}),
        ...(scope.schemaUrl !== undefined ? { schemaUrl: scope.schemaUrl } : {}),
        ...('attributes' in scope && scope.attributes ? { attributes: { ...(scope.attributes as Attributes) } } : {}),
      });
      scopeIndex.set(scope, scopeAt);
    }
    out.push({
      name: span.name,
      kind: span.kind,
      context: contextToWire(span.spanContext()),
      ...(span.parentSpanContext ? { parent: contextToWire(span.parentSpanContext) } : {}),
      startTime: span.startTime,
      endTime: span.endTime,
      duration: span.duration,
      status: { ...span.status },
      attributes: { ...span.attributes },
      links: span.links.map((link: Link) => ({
        context: contextToWire(link.context),
        ...(link.attributes ? { attributes: { ...link.attributes } } : {}),
        ...(link.droppedAttributesCount !== undefined ? { droppedAttributesCount: link.droppedAttributesCount } : {}),
      })),
      events: span.events.map((event) => ({ ...event })),
      ended: span.ended,
      resource: index,
      scope: scopeAt,
      droppedAttributesCount: span.droppedAttributesCount,
      droppedEventsCount: span.droppedEventsCount,
      droppedLinksCount: span.droppedLinksCount,
    });
  }
  return { resources, scopes, spans: out };
}

/** Objects with the fields of `ReadableSpan` that exporters read; one object per resource, as the SDK has. */
export function spansFromWire(batch: WireBatch): ReadableSpan[] {
  const resources = batch.resources.map(resourceFromWire);
  return batch.spans.map((wire) => {
    const context = contextFromWire(wire.context);
    const resource = resources[wire.resource];
    const scope = batch.scopes[wire.scope];
    if (!resource || !scope) throw new Error(`span "${wire.name}" refers to a resource or scope the batch does not carry`);
    return {
      name: wire.name,
      kind: wire.kind,
      spanContext: () => context,
      ...(wire.parent ? { parentSpanContext: contextFromWire(wire.parent) } : {}),
      startTime: wire.startTime,
      endTime: wire.endTime,
      duration: wire.duration,
      status: wire.status,
      attributes: wire.attributes,
      links: wire.links.map((link) => ({ ...link, context: contextFromWire(link.context) })),
      events: [...wire.events],
      ended: wire.ended,
      resource,
      instrumentationScope: scope,
      droppedAttributesCount: wire.droppedAttributesCount,
      droppedEventsCount: wire.droppedEventsCount,
      droppedLinksCount: wire.droppedLinksCount,
    } satisfies ReadableSpan;
  });
}

/** Metric data points are plain data already; only the resource is a class instance. */
export interface WireMetrics {
  readonly resource: WireResource;
  readonly scopeMetrics: ResourceMetrics['scopeMetrics'];
}

export function metricsToWire(metrics: ResourceMetrics): WireMetrics {
  return { resource: resourceToWire(metrics.resource), scopeMetrics: metrics.scopeMetrics };
}

export function metricsFromWire(wire: WireMetrics): ResourceMetrics {
  return { resource: resourceFromWire(wire.resource), scopeMetrics: wire.scopeMetrics };
}
