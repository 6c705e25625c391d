import { existsSync, readFileSync } from 'node:fs';
import { ATTR } from './attributes.js';
import { KEEP_ROTATED } from './findings-log.js';

/**
 * Reading the findings log (JSON lines written by `FindingsLog`): records, filters and the summary that
 * `stepguard findings summary` prints and `stepguard dashboard` draws. Pure functions over records.
 */

export interface LogRecord {
  readonly time: string;
  /** `finding`, `step_up`, `anomaly` (the span name without `stepguard.`). */
  readonly event: string;
  readonly status?: string;
  readonly [attribute: string]: unknown;
}

/** The live file and its rotated generations, oldest first. */
export function logFiles(file: string): string[] {
  const out: string[] = [];
  for (let i = KEEP_ROTATED; i >= 1; i--) if (existsSync(`${file}.${i}`)) out.push(`${file}.${i}`);
  if (existsSync(file)) out.push(file);
  return out;
}

export function parseLines(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const value = JSON.parse(line) as unknown;
      if (value && typeof value === 'object' && typeof (value as LogRecord).time === 'string' && typeof (value as LogRecord).event === 'string') {
        out.push(value as LogRecord);
      }
    } catch {
      // A line cut short by a crash or a rotation in progress: skipped.
    }
  }
  return out;
}

export function readLog(file: string): LogRecord[] {
  return logFiles(file).flatMap((f) => parseLines(readFileSync(f, 'utf8')));
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** `attack`, `vulnerability`, `policy` (a rule without a detector), `step-up`, `anomaly`. */
export function classOf(r: LogRecord): string {
  if (r.event === 'finding') return str(r[ATTR.KIND]) ?? 'policy';
  if (r.event === 'step_up') return 'step-up';
  return r.event;
}

/** What happened: a finding's outcome, a step-up event, an anomaly's kind. */
export function outcomeOf(r: LogRecord): string {
  if (r.event === 'finding') return str(r[ATTR.OUTCOME]) ?? '';
  if (r.event === 'step_up') return str(r[ATTR.STEP_UP_EVENT]) ?? '';
  return str(r['stepguard.anomaly.kind']) ?? '';
}

export const ruleOf = (r: LogRecord): string | undefined => str(r[ATTR.RULE_NAME]) ?? str(r[ATTR.STEP_UP_RULE]);
/** The route template when the framework told us, else the path. */
export const routeOf = (r: LogRecord): string | undefined => str(r[ATTR.HTTP_ROUTE]) ?? str(r[ATTR.URL_PATH]);
export const userOf = (r: LogRecord): string | undefined => str(r[ATTR.USER_ID]);
export const timeOf = (r: LogRecord): number => Date.parse(r.time);

export interface Filter {
  readonly since?: number;
  readonly rule?: string;
  readonly route?: string;
  readonly kind?: string;
}

export function matches(r: LogRecord, f: Filter): boolean {
  if (f.since !== undefined && !(timeOf(r) >= f.since)) return false;
  if (f.rule !== undefined && ruleOf(r) !== f.rule) return false;
  if (f.route !== undefined && routeOf(r) !== f.route && str(r[ATTR.URL_PATH]) !== f.route) return false;
  if (f.kind !== undefined && classOf(r) !== f.kind) return false;
  return true;
}

/** `30s`, `15m`, `2h`, `7d`, or an ISO date/time. Returns epoch ms, or undefined when unreadable. */
export function parseSince(value: string, now = Date.now()): number | undefined {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(value.trim());
  if (m) return now - Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

// ---- summary ----------------------------------------------------------------------------------------------

export interface Summary {
  readonly records: number;
  readonly from: string | undefined;
  readonly to: string | undefined;
  readonly byClass: Record<string, number>;
  readonly byRuleRoute: ReadonlyArray<{ rule: string; route: string; count: number; attacks: number; vulnerabilities: number; blocked: number; challenged: number }>;
  readonly topRules: ReadonlyArray<{ rule: string; count: number }>;
  readonly topRoutes: ReadonlyArray<{ route: string; count: number }>;
  readonly vulnerableRoutes: ReadonlyArray<{
    route: string;
    rule: string;
    count: number;
    firstSeen: string;
    lastSeen: string;
    example: { source?: string; payload?: string; sink?: string; operation?: string; text?: string };
  }>;
  readonly stepUp: ReadonlyArray<{
    rule: string;
    challenges: number;
    verified: number;
    failed: number;
    lockedOut: number;
    grantsUsed: number;
    /** Challenges per hour over the time the log covers. */
    challengesPerHour: number;
    /** failed / (verified + failed); 0 when no verification was attempted. */
    failureRate: number;
  }>;
  readonly topUsersByFailures: ReadonlyArray<{ user: string; failures: number; lockouts: number }>;
  readonly flaggedAccounts: ReadonlyArray<{ user: string; reasons: string[]; lastSeen: string }>;
  readonly anomalies: readonly LogRecord[];
  /** Findings over time by class, in equal buckets covering the log. */
  readonly timeline: { readonly bucketSeconds: number; readonly buckets: ReadonlyArray<{ start: string } & Record<string, number | string>> };
}

const SINK_TEXT = [ATTR.DB_QUERY_TEXT, ATTR.PROCESS_COMMAND_LINE, ATTR.FILE_PATH, ATTR.URL_FULL, ATTR.CODE_SOURCE];
const TIMELINE_CLASSES = ['attack', 'vulnerability', 'policy', 'step-up', 'anomaly'];

function bump<K>(map: Map<K, number>, key: K, n = 1): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

function top<K>(map: Map<K, number>, limit: number): Array<[K, number]> {
  return [...map.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0]))).slice(0, limit);
}

export function summarize(records: readonly LogRecord[], options: { limit?: number; buckets?: number } = {}): Summary {
  const limit = options.limit ?? 10;
  const byClass: Record<string, number> = {};
  const ruleRoute = new Map<string, { rule: string; route: string; count: number; attacks: number; vulnerabilities: number; blocked: number; challenged: number }>();
  const rules = new Map<string, number>();
  const routes = new Map<string, number>();
  const vulnerable = new Map<string, Summary['vulnerableRoutes'][number]>();
  const stepUp = new Map<string, { rule: string; challenges: number; verified: number; failed: number; lockedOut: number; grantsUsed: number }>();
  const userFailures = new Map<string, number>();
  const userLockouts = new Map<string, number>();
  const flagged = new Map<string, { reasons: Set<string>; lastSeen: string }>();
  const anomalies: LogRecord[] = [];
  let first = Infinity;
  let last = -Infinity;

  const flag = (user: string, reason: string, time: string): void => {
    const entry = flagged.get(user) ?? { reasons: new Set<string>(), lastSeen: time };
    entry.reasons.add(reason);
    if (time > entry.lastSeen) entry.lastSeen = time;
    flagged.set(user, entry);
  };

  for (const r of records) {
    const t = timeOf(r);
    if (!Number.isNaN(t)) {
      first = Math.min(first, t);
      last = Math.max(last, t);
    }
    const cls = classOf(r);
    byClass[cls] = (byClass[cls] ?? 0) + 1;
    const rule = ruleOf(r) ?? '(none)';
    const user = userOf(r);
    if (r.event === 'finding') {
      const route = routeOf(r) ?? '(no route)';
      bump(rules, rule);
      bump(routes, route);
      const key = `${rule}\0${route}`;
      const row = ruleRoute.get(key) ?? { rule, route, count: 0, attacks: 0, vulnerabilities: 0, blocked: 0, challenged: 0 };
      row.count++;
      if (cls === 'attack') row.attacks++;
      if (cls === 'vulnerability') row.vulnerabilities++;
      if (outcomeOf(r) === 'blocked') row.blocked++;
      if (outcomeOf(r) === 'challenged') row.challenged++;
      ruleRoute.set(key, row);
      if (cls === 'vulnerability') {
        const v = vulnerable.get(key);
        if (v) {
          (v as { count: number }).count++;
          if (r.time < v.firstSeen) (v as { firstSeen: string }).firstSeen = r.time;
          if (r.time > v.lastSeen) (v as { lastSeen: string }).lastSeen = r.time;
        } else {
          const text = SINK_TEXT.map((a) => str(r[a])).find((x) => x !== undefined);
          vulnerable.set(key, {
            route,
            rule,
            count: 1,
            firstSeen: r.time,
            lastSeen: r.time,
            example: { source: str(r[ATTR.SOURCE]), payload: str(r[ATTR.PAYLOAD]), sink: str(r[ATTR.SINK]), operation: str(r[ATTR.OPERATION]), text },
          });
        }
      }
    } else if (r.event === 'step_up') {
      const name = outcomeOf(r);
      const row = stepUp.get(rule) ?? { rule, challenges: 0, verified: 0, failed: 0, lockedOut: 0, grantsUsed: 0 };
      if (name === 'challenge_issued') row.challenges++;
      else if (name === 'verified') row.verified++;
      else if (name === 'failed') row.failed++;
      else if (name === 'locked_out') row.lockedOut++;
      else if (name === 'grant_used') row.grantsUsed++;
      stepUp.set(rule, row);
      if (user && name === 'failed') bump(userFailures, user);
      if (user && name === 'locked_out') {
        bump(userLockouts, user);
        flag(user, 'locked out', r.time);
      }
    } else if (r.event === 'anomaly') {
      anomalies.push(r);
      if (user) flag(user, `anomaly: ${outcomeOf(r)}`, r.time);
    }
  }

  const hours = Number.isFinite(first) ? Math.max(last - first, 60_000) / 3_600_000 : 1;
  return {
    records: records.length,
    from: Number.isFinite(first) ? new Date(first).toISOString() : undefined,
    to: Number.isFinite(last) ? new Date(last).toISOString() : undefined,
    byClass,
    byRuleRoute: [...ruleRoute.values()].sort((a, b) => b.count - a.count || a.rule.localeCompare(b.rule) || a.route.localeCompare(b.route)),
    topRules: top(rules, limit).map(([rule, count]) => ({ rule, count })),
    topRoutes: top(routes, limit).map(([route, count]) => ({ route, count })),
    vulnerableRoutes: [...vulnerable.values()].sort((a, b) => b.lastSeen.localeCompare(a.lastSeen)),
    stepUp: [...stepUp.values()]
      .filter((s) => s.challenges + s.verified + s.failed + s.lockedOut + s.grantsUsed > 0)
      .sort((a, b) => b.challenges - a.challenges || a.rule.localeCompare(b.rule))
      .map((s) => ({
        ...s,
        challengesPerHour: Math.round((s.challenges / hours) * 100) / 100,
        failureRate: s.verified + s.failed === 0 ? 0 : Math.round((s.failed / (s.verified + s.failed)) * 1000) / 1000,
      })),
    topUsersByFailures: top(userFailures, limit).map(([user, failures]) => ({ user, failures, lockouts: userLockouts.get(user) ?? 0 })),
    flaggedAccounts: [...flagged.entries()]
      .map(([user, f]) => ({ user, reasons: [...f.reasons].sort(), lastSeen: f.lastSeen }))
      .sort((a, b) => b.lastSeen.localeCompare(a.lastSeen)),
    anomalies: anomalies.slice(-50).reverse(),
    timeline: timeline(records, first, last, options.buckets ?? 30),
  };
}

function timeline(records: readonly LogRecord[], first: number, last: number, count: number): Summary['timeline'] {
  if (!Number.isFinite(first)) return { bucketSeconds: 60, buckets: [] };
  // Whole seconds per bucket, at least one; buckets start on a multiple of the bucket size.
  const bucketSeconds = Math.max(1, Math.ceil((last - first + 1) / 1000 / count));
  const size = bucketSeconds * 1000;
  const start = Math.floor(first / size) * size;
  const n = Math.floor((last - start) / size) + 1;
  const buckets = Array.from({ length: n }, (_, i) => {
    const b: { start: string } & Record<string, number | string> = { start: new Date(start + i * size).toISOString() };
    for (const c of TIMELINE_CLASSES) b[c] = 0;
    return b;
  });
  for (const r of records) {
    const t = timeOf(r);
    if (Number.isNaN(t)) continue;
    const b = buckets[Math.floor((t - start) / size)];
    const c = classOf(r);
    if (b && typeof b[c] === 'number') b[c] = (b[c] as number) + 1;
  }
  return { bucketSeconds, buckets };
}
