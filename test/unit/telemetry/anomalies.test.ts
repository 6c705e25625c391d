/** Anomaly thresholds with a controlled clock: scripted traffic in, exact flags out. */
import { describe, expect, it } from 'vitest';
import type { Attributes } from '@opentelemetry/api';
import { AnomalyTracker, onAnomaly, type Anomaly } from '../../../src/telemetry/anomalies.js';

const MINUTE = 60_000;

function tracker(overrides: Partial<{ factor: number; minEvents: number; userFailures: number }> = {}) {
  let now = Date.UTC(2026, 0, 1);
  const emitted: Attributes[] = [];
  const t = new AnomalyTracker({ factor: 3, windowSeconds: 60, minEvents: 5, userFailures: 3, ...overrides, now: () => now, emit: (a) => emitted.push(a) });
  const failed = (rule: string, user: string) => t.record('stepguard.step_up', { 'stepguard.step_up.event': 'failed', 'stepguard.step_up.rule': rule, 'user.id': user, 'stepguard.step_up.reason': 'invalid' });
  const challenged = (rule: string, route: string) => t.record('stepguard.finding', { 'stepguard.outcome': 'challenged', 'security_rule.name': rule, 'http.route': route });
  return { emitted, failed, challenged, advance: (ms: number) => (now += ms), at: () => now };
}

describe('AnomalyTracker', () => {
  it('steady traffic produces no anomaly', () => {
    const { emitted, failed, challenged, advance } = tracker();
    for (let minute = 0; minute < 30; minute++) {
      for (let i = 0; i < 2; i++) failed('transfer-step-up', `user${i}`);
      for (let i = 0; i < 4; i++) challenged('transfer-step-up', '/transfer');
      advance(MINUTE);
    }
    expect(emitted).toEqual([]);
  });

  it('a scripted rise in failures for one rule produces exactly one anomaly with the expected and seen numbers', () => {
    const { emitted, failed, challenged, advance } = tracker();
    const seen: Anomaly[] = [];
    const stop = onAnomaly((a) => seen.push(a));
    // Ten minutes of 2 failures a minute, spread over many users (no user reaches their own limit).
    let n = 0;
    for (let minute = 0; minute < 10; minute++) {
      for (let i = 0; i < 2; i++) failed('transfer-step-up', `user${n++}`);
      challenged('transfer-step-up', '/transfer');
      advance(MINUTE);
    }
    // Then 12 failures in one minute: the average is 2, the threshold max(5, 3 × 2) = 6.
    for (let i = 0; i < 12; i++) failed('transfer-step-up', `user${n++}`);
    stop();
    expect(emitted).toEqual([
      {
        'stepguard.anomaly.kind': 'failure_rate',
        'stepguard.anomaly.expected': 2,
        'stepguard.anomaly.observed': 6,
        'stepguard.anomaly.factor': 3,
        'stepguard.anomaly.window_seconds': 60,
        'security_rule.name': 'transfer-step-up',
      },
    ]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ kind: 'failure_rate', rule: 'transfer-step-up', expected: 2, observed: 6 });
  });

  it('averages with quiet windows counted as zero, and waits for the warm-up', () => {
    const { emitted, challenged, advance } = tracker();
    // Burst in the very first windows: no baseline yet, no flag.
    for (let i = 0; i < 20; i++) challenged('email-step-up', '/email');
    expect(emitted).toEqual([]);
    // Three quiet windows later the average is 20 × 0.8³ = 10.24; a burst of 31 crosses 3 × 10.24.
    advance(4 * MINUTE);
    for (let i = 0; i < 30; i++) challenged('email-step-up', '/email');
    expect(emitted).toEqual([]);
    challenged('email-step-up', '/email');
    expect(emitted).toEqual([
      {
        'stepguard.anomaly.kind': 'step_up_rate',
        'stepguard.anomaly.expected': 10.24,
        'stepguard.anomaly.observed': 31,
        'stepguard.anomaly.factor': 3,
        'stepguard.anomaly.window_seconds': 60,
        'security_rule.name': 'email-step-up',
        'http.route': '/email',
      },
    ]);
  });

  it("flags one user's failures once per window, from the configured limit", () => {
    const { emitted, failed, advance } = tracker();
    failed('transfer-step-up', 'mallory');
    failed('transfer-step-up', 'mallory');
    expect(emitted).toEqual([]);
    failed('transfer-step-up', 'mallory');
    failed('transfer-step-up', 'mallory');
    expect(emitted).toEqual([
      {
        'stepguard.anomaly.kind': 'user_failures',
        'stepguard.anomaly.expected': 3,
        'stepguard.anomaly.observed': 3,
        'stepguard.anomaly.factor': 3,
        'stepguard.anomaly.window_seconds': 60,
        'security_rule.name': 'transfer-step-up',
        'user.id': 'mallory',
      },
    ]);
    advance(MINUTE);
    for (let i = 0; i < 3; i++) failed('transfer-step-up', 'mallory');
    expect(emitted.map((a) => a['stepguard.anomaly.kind'])).toEqual(['user_failures', 'user_failures']);
  });
});
