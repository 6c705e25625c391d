import type { HrTime } from '@opentelemetry/api';
import type { CollectionResult, MetricProducer, MetricReader, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { Resource } from '@opentelemetry/resources';
import { ATTR } from './attributes.js';

/**
 * `stepguard.inspection.duration`, aggregated by the agent itself and handed to each metric reader through a
 * `MetricProducer` (the SDK's hook for metrics kept outside its instruments).
 *
 * Why not an SDK histogram: `Histogram.record` hashes its attributes on every call. It is called once per judged
 * sink call, and in an Express app with pg it cost about 12,000 instructions per request (cachegrind, 40,000
 * requests to `/param`, with and without metrics): a fifth of all the agent's work on that route. Here a
 * recording is a bucket search over 12 boundaries and a few stores, and the export is the same explicit-bucket
 * histogram, unit, description and `stepguard.sink` attribute as before.
 */

/** Seconds: the agent's own time per sink inspection is microseconds, sometimes a millisecond. */
export const DURATION_BUCKETS: readonly number[] = [0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.05];
/** Unit and description of the histogram; its name is METRIC.INSPECTION_DURATION (metrics.ts), passed to producer(). */
export const DURATION_METRIC = {
  unit: 's',
  description: "The agent's own time per sink inspection (detectors, rules, decision)",
} as const;

/** One sink kind's totals since start. */
interface Series {
  /** One count per bucket; the last counts values above the highest boundary. */
  readonly counts: Float64Array;
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** What a delta reader saw at its last collection, per sink kind. */
interface Seen {
  readonly counts: Float64Array;
  count: number;
  sum: number;
}

/** The SDK's enum values the export needs, taken from the loaded SDK (this file must not load it at start). */
export interface SdkEnums {
  readonly histogramPoint: number;
  readonly histogramInstrument: string;
  readonly cumulative: number;
  readonly doubleValue: number;
}

export class InspectionDurations {
  private readonly series = new Map<string, Series>();
  private readonly started: HrTime = hrNow();

  record(kind: string, seconds: number): void {
    let s = this.series.get(kind);
    if (s === undefined) {
      s = { counts: new Float64Array(DURATION_BUCKETS.length + 1), count: 0, sum: 0, min: Infinity, max: -Infinity };
      this.series.set(kind, s);
    }
    s.counts[bucketOf(seconds)]!++;
    s.count++;
    s.sum += seconds;
    if (seconds < s.min) s.min = seconds;
    if (seconds > s.max) s.max = seconds;
  }

  /**
   * A producer for one reader. The reader is asked for its temporality at each collection: cumulative readers get
   * the totals since start (with min and max), delta readers what was recorded since their last collection (min
   * and max are left out: they are not kept per interval). `reader` is set once the reader exists, because the
   * reader takes its producers as a constructor option.
   */
  producer(name: string, resource: Resource, scope: { name: string; version: string }, sdk: SdkEnums): MetricProducer & { reader?: Pick<MetricReader, 'selectAggregationTemporality'> } {
    const state = this.collectionState();
    const producer: MetricProducer & { reader?: Pick<MetricReader, 'selectAggregationTemporality'> } = {
      collect: async (): Promise<CollectionResult> => {
        const temporality = producer.reader?.selectAggregationTemporality(sdk.histogramInstrument as never) ?? sdk.cumulative;
        const metric = this.collect(name, temporality, sdk, state);
        const scopeMetrics: ScopeMetrics[] = metric ? [{ scope, metrics: [metric as unknown as ScopeMetrics['metrics'][number]] }] : [];
        return { resourceMetrics: { resource, scopeMetrics }, errors: [] };
      },
    };
    return producer;
  }

  /** What one reader saw at its last collection: kept by the caller, one per reader. */
  collectionState(): CollectionState {
    return { seen: new Map(), lastCollection: this.started };
  }

  /**
   * The histogram as plain data (what `ScopeMetrics.metrics` holds), or undefined when there is nothing to export.
   * Plain data on purpose: it also crosses to the export thread (`thread-metrics.ts`).
   */
  collect(name: string, temporality: number, sdk: Omit<SdkEnums, 'histogramInstrument'>, state: CollectionState): HistogramMetric | undefined {
    const now = hrNow();
    const cumulative = temporality === sdk.cumulative;
    const points: HistogramMetric['dataPoints'][number][] = [];
    for (const [kind, s] of this.series) {
      const attributes = { [ATTR.SINK]: kind };
      if (cumulative) {
        points.push({
          startTime: this.started,
          endTime: now,
          attributes,
          value: { buckets: { boundaries: [...DURATION_BUCKETS], counts: [...s.counts] }, count: s.count, sum: s.sum, min: s.min, max: s.max },
        });
        continue;
      }
      const before = state.seen.get(kind);
      const count = s.count - (before?.count ?? 0);
      if (count > 0) {
        const counts = [...s.counts].map((c, i) => c - (before?.counts[i] ?? 0));
        points.push({ startTime: state.lastCollection, endTime: now, attributes, value: { buckets: { boundaries: [...DURATION_BUCKETS], counts }, count, sum: s.sum - (before?.sum ?? 0) } });
      }
      state.seen.set(kind, { counts: Float64Array.from(s.counts), count: s.count, sum: s.sum });
    }
    state.lastCollection = now;
    if (points.length === 0) return undefined;
    return {
      descriptor: { name, description: DURATION_METRIC.description, unit: DURATION_METRIC.unit, valueType: sdk.doubleValue },
      aggregationTemporality: temporality,
      dataPointType: sdk.histogramPoint,
      dataPoints: points,
    };
  }
}

/** One reader's memory between collections (for delta temporality). */
export interface CollectionState {
  readonly seen: Map<string, Seen>;
  lastCollection: HrTime;
}

/** `MetricData` of a histogram, as plain data. */
export interface HistogramMetric {
  readonly descriptor: { readonly name: string; readonly description: string; readonly unit: string; readonly valueType: number };
  readonly aggregationTemporality: number;
  readonly dataPointType: number;
  readonly dataPoints: ReadonlyArray<{
    readonly startTime: HrTime;
    readonly endTime: HrTime;
    readonly attributes: Record<string, string>;
    readonly value: { readonly buckets: { readonly boundaries: number[]; readonly counts: number[] }; readonly count: number; readonly sum: number; readonly min?: number; readonly max?: number };
  }>;
}

/** The bucket of `value`: the first boundary it does not exceed (OpenTelemetry's buckets include their upper bound). */
export function bucketOf(value: number): number {
  let low = 0;
  let high = DURATION_BUCKETS.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (value <= DURATION_BUCKETS[middle]!) high = middle;
    else low = middle + 1;
  }
  return low;
}

export function hrNow(): HrTime {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6))];
}
