import { describe, expect, it } from 'vitest';
import { AggregationTemporality, DataPointType, InMemoryMetricExporter, InstrumentType, MeterProvider, PeriodicExportingMetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { ValueType } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { bucketOf, DURATION_BUCKETS, InspectionDurations } from '../../../src/telemetry/inspection-durations.js';

const enums = { histogramPoint: DataPointType.HISTOGRAM, histogramInstrument: InstrumentType.HISTOGRAM, cumulative: AggregationTemporality.CUMULATIVE, doubleValue: ValueType.DOUBLE };
const scope = { name: 'stepguard', version: 'test' };

/** A real reader and in-memory exporter in the given temporality, collecting `durations` through its producer. */
function readerOf(durations: InspectionDurations, temporality: AggregationTemporality) {
  const exporter = new InMemoryMetricExporter(temporality);
  const producer = durations.producer('stepguard.inspection.duration', resourceFromAttributes({ 'service.name': 'unit' }), scope, enums);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000, metricProducers: [producer] });
  producer.reader = reader;
  const provider = new MeterProvider({ readers: [reader] });
  const collect = async (): Promise<HistogramMetricData | undefined> => {
    const { resourceMetrics } = await reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'stepguard.inspection.duration') as HistogramMetricData | undefined;
  };
  return { collect, shutdown: () => provider.shutdown() };
}

describe('inspection durations (aggregated by the agent, exported through a MetricProducer)', () => {
  it('puts a value in the first bucket whose upper bound it does not exceed', () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(0.000_005)).toBe(0); // upper bounds are inclusive, as in OpenTelemetry
    expect(bucketOf(0.000_005_1)).toBe(1);
    expect(bucketOf(0.05)).toBe(DURATION_BUCKETS.length - 1);
    expect(bucketOf(0.06)).toBe(DURATION_BUCKETS.length);
  });

  it('exports the explicit-bucket histogram a cumulative reader expects, per sink kind', async () => {
    const durations = new InspectionDurations();
    const reader = readerOf(durations, AggregationTemporality.CUMULATIVE);
    expect(await reader.collect()).toBeUndefined(); // nothing inspected yet: no metric
    for (const seconds of [0.000_003, 0.000_02, 0.000_02, 0.2]) durations.record('sql', seconds);
    durations.record('fs', 0.001);
    const first = (await reader.collect())!;
    expect(first.descriptor).toMatchObject({ name: 'stepguard.inspection.duration', unit: 's', valueType: ValueType.DOUBLE });
    expect(first.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(first.aggregationTemporality).toBe(AggregationTemporality.CUMULATIVE);
    const sql = first.dataPoints.find((p) => p.attributes['stepguard.sink'] === 'sql')!;
    expect(sql.value.buckets.boundaries).toEqual(DURATION_BUCKETS);
    expect(sql.value.buckets.counts).toEqual([1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(sql.value).toMatchObject({ count: 4, min: 0.000_003, max: 0.2 });
    expect(sql.value.sum).toBeCloseTo(0.200_043, 9);
    durations.record('sql', 0.000_02);
    const second = (await reader.collect())!;
    const sqlAgain = second.dataPoints.find((p) => p.attributes['stepguard.sink'] === 'sql')!;
    expect(sqlAgain.value.count).toBe(5); // totals since start
    expect(sqlAgain.startTime).toEqual(sql.startTime);
    await reader.shutdown();
  });

  it('gives a delta reader only what was recorded since its last collection', async () => {
    const durations = new InspectionDurations();
    const reader = readerOf(durations, AggregationTemporality.DELTA);
    durations.record('sql', 0.000_02);
    durations.record('sql', 0.000_02);
    const first = (await reader.collect())!;
    expect(first.aggregationTemporality).toBe(AggregationTemporality.DELTA);
    expect(first.dataPoints[0]!.value.count).toBe(2);
    durations.record('sql', 0.003);
    const second = (await reader.collect())!;
    const point = second.dataPoints[0]!;
    expect(point.value.count).toBe(1);
    expect(point.value.buckets.counts[bucketOf(0.003)]).toBe(1);
    expect(point.value.sum).toBeCloseTo(0.003, 9);
    expect(point.startTime).toEqual(first.dataPoints[0]!.endTime);
    expect(await reader.collect()).toBeUndefined(); // nothing new
    await reader.shutdown();
  });
});
