import type { Attributes, Counter, Meter } from '@opentelemetry/api';
import type { MeterProvider } from '@opentelemetry/sdk-metrics';
import { ATTR, SPAN_ANOMALY, SPAN_FINDING, SPAN_STEP_UP } from './attributes.js';
import { dropped, droppedTotal, type Signal } from './export-health.js';
import type { Recorder } from './telemetry.js';

/**
 * The agent's counters and which event adds to which, wherever the counters live: an SDK meter provider in the
 * app's thread (`metrics.ts`) or plain sums handed to the export thread (`thread-metrics.ts`). Cardinality is
 * bounded here: attributes are rule names, categories, outcomes, sink kinds and route templates only. Loaded with
 * the first event, not at start.
 */

/** Every instrument, by name: the README documents each. */
export const METRIC = {
  FINDINGS: 'stepguard.findings',
  STEP_UP_CHALLENGES: 'stepguard.step_up.challenges',
  STEP_UP_VERIFICATIONS: 'stepguard.step_up.verifications',
  STEP_UP_FAILURES: 'stepguard.step_up.failures',
  STEP_UP_LOCKOUTS: 'stepguard.step_up.lockouts',
  STEP_UP_GRANTS_USED: 'stepguard.step_up.grants_used',
  ANOMALIES: 'stepguard.anomalies',
  INSPECTION_DURATION: 'stepguard.inspection.duration',
  DROPPED: 'stepguard.telemetry.dropped',
} as const;

/** A value that is not a short lower-case token (an error message, say) is reported as `other`. */
const TOKEN = /^[a-z0-9][a-z0-9._-]{0,47}$/;

/** The counters, as the README lists them. The observable `stepguard.telemetry.dropped` is described apart. */
export const COUNTERS: ReadonlyArray<{ readonly name: string; readonly unit: string; readonly description: string }> = [
  { name: METRIC.FINDINGS, unit: '{finding}', description: 'Findings and policy matches, by rule, kind, outcome and route' },
  { name: METRIC.STEP_UP_CHALLENGES, unit: '{challenge}', description: 'Step-up challenges issued' },
  { name: METRIC.STEP_UP_VERIFICATIONS, unit: '{verification}', description: 'Successful step-up verifications' },
  { name: METRIC.STEP_UP_FAILURES, unit: '{failure}', description: 'Failed step-up verifications, by reason' },
  { name: METRIC.STEP_UP_LOCKOUTS, unit: '{lockout}', description: 'Verifications refused because the user or client is locked out' },
  { name: METRIC.STEP_UP_GRANTS_USED, unit: '{grant}', description: 'Requests let through by a step-up grant' },
  { name: METRIC.ANOMALIES, unit: '{anomaly}', description: 'Unusual patterns flagged, by kind, rule and route' },
];

export const DROPPED_METRIC = {
  unit: '{item}',
  description: 'Spans, metric points and findings-log lines dropped because export failed or a queue was full',
  attribute: 'stepguard.signal',
} as const;

const STEP_UP_COUNTER: Readonly<Record<string, string>> = {
  challenge_issued: METRIC.STEP_UP_CHALLENGES,
  verified: METRIC.STEP_UP_VERIFICATIONS,
  failed: METRIC.STEP_UP_FAILURES,
  locked_out: METRIC.STEP_UP_LOCKOUTS,
  grant_used: METRIC.STEP_UP_GRANTS_USED,
};

/**
 * The counter an event adds one to and the attributes it adds them under, or undefined for an event no counter
 * counts. Wherever the counters live (the SDK in the app's thread, or `thread-metrics.ts`), this decides.
 */
export function counterOf(name: string, a: Attributes): { readonly counter: string; readonly attributes: Attributes } | undefined {
  if (name === SPAN_FINDING) {
    const attributes: Attributes = {
      [ATTR.RULE_NAME]: token(a[ATTR.RULE_NAME], '(none)'),
      [ATTR.RULE_CATEGORY]: token(a[ATTR.RULE_CATEGORY], '(none)'),
      [ATTR.KIND]: token(a[ATTR.KIND], 'policy'),
      [ATTR.OUTCOME]: token(a[ATTR.OUTCOME], 'reported'),
      [ATTR.SINK]: token(a[ATTR.SINK], 'other'),
    };
    // Only a template: a raw path (`/users/123`) would make one series per id.
    if (typeof a[ATTR.HTTP_ROUTE] === 'string') attributes[ATTR.HTTP_ROUTE] = a[ATTR.HTTP_ROUTE];
    return { counter: METRIC.FINDINGS, attributes };
  }
  if (name === SPAN_STEP_UP) {
    const event = a[ATTR.STEP_UP_EVENT];
    const counter = typeof event === 'string' ? STEP_UP_COUNTER[event] : undefined;
    if (counter === undefined) return undefined;
    const rule = { [ATTR.RULE_NAME]: token(a[ATTR.STEP_UP_RULE], '(none)') };
    return { counter, attributes: event === 'failed' ? { ...rule, [ATTR.STEP_UP_REASON]: token(a[ATTR.STEP_UP_REASON], 'other') } : rule };
  }
  if (name === SPAN_ANOMALY) {
    const attributes: Attributes = {
      [ATTR.ANOMALY_KIND]: token(a[ATTR.ANOMALY_KIND], 'other'),
      [ATTR.RULE_NAME]: token(a[ATTR.RULE_NAME], '(none)'),
    };
    if (typeof a[ATTR.HTTP_ROUTE] === 'string') attributes[ATTR.HTTP_ROUTE] = a[ATTR.HTTP_ROUTE];
    return { counter: METRIC.ANOMALIES, attributes };
  }
  return undefined;
}

function token(value: unknown, fallback: string): string {
  if (typeof value !== 'string' || value === '') return fallback;
  return TOKEN.test(value) ? value : 'other';
}

/** The counters as instruments of an SDK meter provider in the app's thread. */
export class MetricsRecorder implements Recorder {
  private readonly counters = new Map<string, Counter>();
  constructor(
    meter: Meter,
    private readonly provider?: Pick<MeterProvider, 'forceFlush' | 'shutdown'>,
  ) {
    for (const c of COUNTERS) this.counters.set(c.name, meter.createCounter(c.name, { unit: c.unit, description: c.description }));
    // METRIC.INSPECTION_DURATION is aggregated outside the SDK (inspection-durations.ts), recorded by LazyMetrics.
    meter.createObservableCounter(METRIC.DROPPED, { unit: DROPPED_METRIC.unit, description: DROPPED_METRIC.description }).addCallback((result) => {
      for (const signal of Object.keys(dropped) as Signal[]) result.observe(droppedTotal(signal), { [DROPPED_METRIC.attribute]: signal });
    });
  }

  record(name: string, a: Attributes): void {
    const counted = counterOf(name, a);
    if (counted) this.add(counted.counter, 1, counted.attributes);
  }

  /** Adds to one counter directly: how counts kept elsewhere carry over (`thread-metrics.ts`, when its thread stops). */
  add(counter: string, value: number, attributes: Attributes): void {
    this.counters.get(counter)?.add(value, attributes);
  }

  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }
}


