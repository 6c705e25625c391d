import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { dropped } from '../../../src/telemetry/export-health.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FindingsLog, KEEP_ROTATED } from '../../../src/telemetry/findings-log.js';
import { readLog, parseSince, summarize, parseLines } from '../../../src/telemetry/findings-read.js';

const logs: FindingsLog[] = [];
afterEach(async () => {
  await Promise.all(logs.splice(0).map((l) => l.shutdown()));
});

function open(maxBytes = 1 << 20, now = () => Date.UTC(2026, 0, 1)): { log: FindingsLog; file: string } {
  const file = join(mkdtempSync(join(tmpdir(), 'sg-log-')), 'nested', 'findings.jsonl');
  const log = new FindingsLog({ file, maxBytes, now });
  logs.push(log);
  return { log, file };
}

describe('FindingsLog', () => {
  it('writes one JSON line per event with time, event name, status and the attributes as given', async () => {
    const { log, file } = open();
    log.record('stepguard.finding', { 'security_rule.name': 'sql-injection', 'stepguard.outcome': 'blocked' }, { message: 'blocked' });
    log.record('stepguard.step_up', { 'stepguard.step_up.event': 'verified' });
    expect(existsSync(file)).toBe(false); // buffered: nothing is written on the caller's stack
    await log.flush();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { time: '2026-01-01T00:00:00.000Z', event: 'finding', status: 'error', 'security_rule.name': 'sql-injection', 'stepguard.outcome': 'blocked' },
      { time: '2026-01-01T00:00:00.000Z', event: 'step_up', 'stepguard.step_up.event': 'verified' },
    ]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('rotates by size, keeps a bounded number of generations, and the reader reads them oldest first', async () => {
    const { log, file } = open(400);
    for (let i = 0; i < 30; i++) {
      log.record('stepguard.finding', { n: i, pad: 'x'.repeat(60) });
      await log.flush();
    }
    for (let i = 1; i <= KEEP_ROTATED; i++) expect(existsSync(`${file}.${i}`)).toBe(true);
    expect(existsSync(`${file}.${KEEP_ROTATED + 1}`)).toBe(false);
    for (const f of [file, `${file}.1`]) expect(statSync(f).size).toBeLessThanOrEqual(400);
    const ns = readLog(file).map((r) => r.n as number);
    expect(ns.at(-1)).toBe(29);
    expect(ns).toEqual([...ns].sort((a, b) => a - b));
    expect(ns.length).toBeLessThan(30); // the oldest generations are gone
  });

  it('never throws when the file cannot be written', async () => {
    // The parent "directory" is a regular file: every write fails with ENOTDIR.
    const blocker = join(mkdtempSync(join(tmpdir(), 'sg-log-')), 'not-a-dir');
    writeFileSync(blocker, '');
    const log = new FindingsLog({ file: join(blocker, 'findings.jsonl'), maxBytes: 1000 });
    logs.push(log);
    expect(() => log.record('stepguard.finding', { a: 1 })).not.toThrow();
    await log.flush();
    expect(dropped.findings_log).toBeGreaterThanOrEqual(1);
  });
});

describe('reading the log', () => {
  it('skips torn lines and parses --since durations and dates', () => {
    expect(parseLines('{"time":"2026-01-01T00:00:00Z","event":"finding"}\n{"time":"2026-01-0').length).toBe(1);
    const now = Date.UTC(2026, 0, 1, 12);
    expect(parseSince('2h', now)).toBe(Date.UTC(2026, 0, 1, 10));
    expect(parseSince('15m', now)).toBe(Date.UTC(2026, 0, 1, 11, 45));
    expect(parseSince('2026-01-01T11:00:00Z', now)).toBe(Date.UTC(2026, 0, 1, 11));
    expect(parseSince('soon', now)).toBeUndefined();
  });

  it('summarises failure rates per rule and flags locked-out users', () => {
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    const step = (s: number, event: string, user = 'mallory') => ({ time: t(s), event: 'step_up', 'stepguard.step_up.event': event, 'stepguard.step_up.rule': 'transfer', 'user.id': user });
    const s = summarize([step(0, 'challenge_issued'), step(1, 'failed'), step(2, 'failed'), step(3, 'failed'), step(4, 'verified', 'alice'), step(5, 'locked_out')]);
    expect(s.stepUp).toEqual([{ rule: 'transfer', challenges: 1, verified: 1, failed: 3, lockedOut: 1, grantsUsed: 0, challengesPerHour: 60, failureRate: 0.75 }]);
    expect(s.topUsersByFailures).toEqual([{ user: 'mallory', failures: 3, lockouts: 1 }]);
    expect(s.flaggedAccounts).toEqual([{ user: 'mallory', reasons: ['locked out'], lastSeen: t(5) }]);
  });
});
