import type { Attributes } from '@opentelemetry/api';
import type { Recorder } from './telemetry.js';
import { ATTR, SPAN_FINDING, SPAN_STEP_UP } from './attributes.js';
import { log, warnOnce, errorMessage } from '../log.js';

/**
 * Unusual patterns, with thresholds a person can check by hand. Time is cut into fixed windows
 * (`windowSeconds`, aligned to the clock). For each rule and route the tracker keeps an exponentially
 * weighted average of step-ups per window, and for each rule one of failed verifications per window
 * (weight ALPHA for the newest window; a window without events counts as zero). After WARMUP_WINDOWS
 * windows, the current window is flagged — once — as soon as its count reaches
 * max(minEvents, factor × average). Per user: `userFailures` failed verifications in one window, or
 * max(minEvents, factor × userFailures) step-up challenges, are flagged once per window.
 * A flag is a `stepguard.anomaly` span (and so a metric, a findings-log line) saying what was expected and
 * what was seen, and is handed to listeners (`onAnomaly`) such as account flagging.
 */

export const ALPHA = 0.2;
export const WARMUP_WINDOWS = 3;
/** Tracked keys (rule × route, users) are bounded; the oldest is forgotten first. */
const MAX_KEYS = 5_000;

export type AnomalyKind = 'step_up_rate' | 'failure_rate' | 'user_failures' | 'user_step_ups';

export interface Anomaly {
  readonly kind: AnomalyKind;
  readonly rule: string | undefined;
  readonly route: string | undefined;
  readonly user: string | undefined;
  /** The average per window (rates), or the limit (per-user kinds). */
  readonly expected: number;
  readonly observed: number;
  readonly windowSeconds: number;
  readonly time: number;
}

export interface AnomalyOptions {
  readonly factor: number;
  readonly windowSeconds: number;
  readonly minEvents: number;
  readonly userFailures: number;
  readonly now?: () => number;
  /** Where a flag goes as telemetry (the agent passes `telemetry.span`). */
  readonly emit: (attributes: Attributes) => void;
}

type Listener = (anomaly: Anomaly) => void;
const listeners = new Set<Listener>();

/** For account flagging and other consumers: called for every anomaly; returns an unsubscribe function. */
export function onAnomaly(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

class WindowCounter {
  window = Number.NaN;
  count = 0;
  average = 0;
  completed = 0;
  flagged = false;

  /** Moves to `window` (closing the windows in between) and counts one event; returns the new count. */
  add(window: number): number {
    if (window !== this.window) {
      if (!Number.isNaN(this.window)) {
        this.average = this.completed === 0 ? this.count : ALPHA * this.count + (1 - ALPHA) * this.average;
        this.completed++;
        const empty = Math.min(window - this.window - 1, 1_000);
        for (let i = 0; i < empty; i++) {
          this.average *= 1 - ALPHA;
          this.completed++;
        }
      }
      this.window = window;
      this.count = 0;
      this.flagged = false;
    }
    return ++this.count;
  }
}

export class AnomalyTracker implements Recorder {
  private readonly counters = new Map<string, WindowCounter>();
  private readonly now: () => number;

  constructor(private readonly options: AnomalyOptions) {
    this.now = options.now ?? Date.now;
  }

  record(name: string, a: Attributes): void {
    if (name === SPAN_FINDING) {
      if (a[ATTR.OUTCOME] !== 'challenged') return;
      const rule = str(a[ATTR.RULE_NAME]);
      const route = str(a[ATTR.HTTP_ROUTE]);
      this.rate('step_up_rate', `r\0${rule}\0${route}`, rule, route);
      return;
    }
    if (name !== SPAN_STEP_UP) return;
    const event = a[ATTR.STEP_UP_EVENT];
    const rule = str(a[ATTR.STEP_UP_RULE]);
    const user = str(a[ATTR.USER_ID]);
    if (event === 'failed') {
      this.rate('failure_rate', `f\0${rule}`, rule, undefined);
      if (user) this.perUser('user_failures', `uf\0${user}`, user, rule, this.options.userFailures);
    } else if (event === 'challenge_issued' && user) {
      this.perUser('user_step_ups', `uc\0${user}`, user, rule, Math.max(this.options.minEvents, Math.ceil(this.options.factor * this.options.userFailures)));
    }
  }

  private counter(key: string): WindowCounter {
    let c = this.counters.get(key);
    if (!c) {
      if (this.counters.size >= MAX_KEYS) this.counters.delete(this.counters.keys().next().value as string);
      c = new WindowCounter();
      this.counters.set(key, c);
    }
    return c;
  }

  private rate(kind: AnomalyKind, key: string, rule: string | undefined, route: string | undefined): void {
    const { factor, minEvents } = this.options;
    const c = this.counter(key);
    const count = c.add(this.windowOf());
    if (c.flagged || c.completed < WARMUP_WINDOWS) return;
    if (count >= Math.max(minEvents, factor * c.average)) {
      c.flagged = true;
      this.flag({ kind, rule, route, user: undefined, expected: round(c.average), observed: count });
    }
  }

  private perUser(kind: AnomalyKind, key: string, user: string, rule: string | undefined, limit: number): void {
    const c = this.counter(key);
    const count = c.add(this.windowOf());
    if (!c.flagged && count >= limit) {
      c.flagged = true;
      this.flag({ kind, rule, route: undefined, user, expected: limit, observed: count });
    }
  }

  private windowOf(): number {
    return Math.floor(this.now() / (this.options.windowSeconds * 1000));
  }

  private flag(found: Omit<Anomaly, 'windowSeconds' | 'time'>): void {
    const anomaly: Anomaly = { ...found, windowSeconds: this.options.windowSeconds, time: this.now() };
    const attributes: Attributes = {
      [ATTR.ANOMALY_KIND]: anomaly.kind,
      [ATTR.ANOMALY_EXPECTED]: anomaly.expected,
      [ATTR.ANOMALY_OBSERVED]: anomaly.observed,
      [ATTR.ANOMALY_FACTOR]: this.options.factor,
      [ATTR.ANOMALY_WINDOW]: anomaly.windowSeconds,
    };
    if (anomaly.rule) attributes[ATTR.RULE_NAME] = anomaly.rule;
    if (anomaly.route) attributes[ATTR.HTTP_ROUTE] = anomaly.route;
    if (anomaly.user) attributes[ATTR.USER_ID] = anomaly.user;
    log.warn(
      `anomaly ${anomaly.kind}${anomaly.rule ? ` rule=${anomaly.rule}` : ''}${anomaly.route ? ` route=${anomaly.route}` : ''}${anomaly.user ? ` user=${anomaly.user}` : ''}: ` +
        `expected ${anomaly.user ? 'fewer than ' : ''}${anomaly.expected} per ${anomaly.windowSeconds} s, saw ${anomaly.observed}`,
    );
    this.options.emit(attributes);
    for (const listener of listeners) {
      try {
        listener(anomaly);
      } catch (error) {
        warnOnce('anomaly:listener', `an anomaly listener failed: ${errorMessage(error)}`);
      }
    }
  }
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
