import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ATTR } from '../telemetry/attributes.js';
import {
  classOf,
  matches,
  outcomeOf,
  parseLines,
  parseSince,
  readLog,
  routeOf,
  ruleOf,
  summarize,
  type Filter,
  type LogRecord,
  type Summary,
} from '../telemetry/findings-read.js';

export const FINDINGS_HELP = `stepguard findings — read the findings log (STEPGUARD_FINDINGS_FILE)

Usage:
  stepguard findings [options]           one row per finding, step-up event and anomaly
  stepguard findings summary [options]   counts per rule and route, vulnerable routes, step-up
                                         frequency and failure rate per rule, top users by failures

Options:
  --file PATH      the log (default: $STEPGUARD_FINDINGS_FILE); rotated files (PATH.1 …) are read too
  --since WHEN     only newer records: 30s, 15m, 2h, 7d, or an ISO date/time
  --rule ID        only this rule
  --route ROUTE    only this route template (or URL path)
  --kind CLASS     attack | vulnerability | policy | step-up | anomaly
  --follow, -f     keep printing new records as they are written (Ctrl-C to stop)
  --json           JSON lines (records) or one JSON object (summary)
  --limit N        at most N rows (the newest), or N entries per summary list (default 10)
`;

interface Options {
  file: string;
  filter: Filter;
  follow: boolean;
  json: boolean;
  limit: number | undefined;
}

const KINDS = ['attack', 'vulnerability', 'policy', 'step-up', 'anomaly'];

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): Options | string {
  let file = env.STEPGUARD_FINDINGS_FILE;
  const filter: { since?: number; rule?: string; route?: string; kind?: string } = {};
  let follow = false;
  let json = false;
  let limit: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--file':
        file = value();
        break;
      case '--since': {
        const v = value();
        const t = parseSince(v);
        if (t === undefined) return `--since ${v}: expected a duration (30s, 15m, 2h, 7d) or an ISO date/time`;
        filter.since = t;
        break;
      }
      case '--rule':
        filter.rule = value();
        break;
      case '--route':
        filter.route = value();
        break;
      case '--kind': {
        const v = value();
        if (!KINDS.includes(v)) return `--kind ${v}: expected one of ${KINDS.join(', ')}`;
        filter.kind = v;
        break;
      }
      case '--follow':
      case '-f':
        follow = true;
        break;
      case '--json':
        json = true;
        break;
      case '--limit': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) === 0) return `--limit ${v}: expected a positive integer`;
        limit = Number(v);
        break;
      }
      default:
        return `unknown option ${arg}`;
    }
  }
  if (!file) return 'no findings log: pass --file PATH or set STEPGUARD_FINDINGS_FILE (the same value the app runs with)';
  return { file: resolve(file), filter, follow, json, limit };
}

class UsageError extends Error {}

export async function findingsCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, signal?: AbortSignal): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(FINDINGS_HELP);
    return 0;
  }
  const summary = argv[0] === 'summary';
  let options: Options | string;
  try {
    options = parseArgs(summary ? argv.slice(1) : argv, env);
  } catch (error) {
    options = (error as Error).message;
  }
  if (typeof options === 'string') {
    out.write(`stepguard findings: ${options}\n\n${FINDINGS_HELP}`);
    return 2;
  }
  const records = readLog(options.file).filter((r) => matches(r, options.filter));
  if (summary) {
    const s = summarize(records, { limit: options.limit });
    out.write(options.json ? `${JSON.stringify(s, null, 2)}\n` : renderSummary(s, options.file));
    return 0;
  }
  const shown = options.limit ? records.slice(-options.limit) : records;
  const table = new Table(out, options.json);
  if (!options.follow && shown.length === 0 && !options.json) {
    out.write(`no records in ${options.file}${Object.keys(options.filter).length ? ' matching the filters' : ''}\n`);
    return 0;
  }
  table.write(shown, !options.follow);
  if (options.follow) await follow(options.file, options.filter, table, signal ?? stopSignal());
  return 0;
}

/** Aborted by Ctrl-C or SIGTERM: following ends cleanly. */
function stopSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}

// ---- table ------------------------------------------------------------------------------------------------

const COLUMNS: ReadonlyArray<{ title: string; width: number; get: (r: LogRecord) => string }> = [
  { title: 'TIME', width: 19, get: (r) => r.time.slice(0, 19).replace('T', ' ') },
  { title: 'OUTCOME', width: 18, get: outcomeOf },
  { title: 'RULE', width: 26, get: (r) => ruleOf(r) ?? '' },
  { title: 'CLASS', width: 13, get: classOf },
  { title: 'ROUTE', width: 28, get: (r) => `${typeof r[ATTR.HTTP_METHOD] === 'string' && r.event !== 'anomaly' ? `${r[ATTR.HTTP_METHOD] as string} ` : ''}${routeOf(r) ?? ''}` },
  { title: 'SOURCE', width: 20, get: (r) => String(r[ATTR.SOURCE] ?? (r.event === 'step_up' ? (r[ATTR.STEP_UP_REASON] ?? '') : '')) },
  { title: 'PAYLOAD', width: 40, get: (r) => (typeof r[ATTR.PAYLOAD] === 'string' ? JSON.stringify(r[ATTR.PAYLOAD]) : anomalyText(r)) },
];

function anomalyText(r: LogRecord): string {
  if (r.event !== 'anomaly') return '';
  return `expected ${String(r['stepguard.anomaly.expected'])}, saw ${String(r['stepguard.anomaly.observed'])}`;
}

function cell(text: string, width: number): string {
  const oneLine = text.replace(/[\r\n\t]+/g, ' ');
  return oneLine.length > width ? `${oneLine.slice(0, width - 1)}…` : oneLine.padEnd(width);
}

class Table {
  private headed = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly json: boolean,
  ) {}

  write(records: readonly LogRecord[], fit: boolean): void {
    if (this.json) {
      for (const r of records) this.out.write(`${JSON.stringify(r)}\n`);
      return;
    }
    // A finished table fits its columns to the content; a followed one keeps the default widths.
    const widths = COLUMNS.map((c) => (fit ? Math.min(c.width, Math.max(c.title.length, ...records.map((r) => c.get(r).length))) : c.width));
    if (!this.headed) {
      this.out.write(`${COLUMNS.map((c, i) => cell(c.title, widths[i]!)).join('  ').trimEnd()}\n`);
      this.headed = true;
    }
    for (const r of records) this.out.write(`${COLUMNS.map((c, i) => cell(c.get(r), widths[i]!)).join('  ').trimEnd()}\n`);
  }
}

// ---- follow -----------------------------------------------------------------------------------------------

const POLL_MS = 200;

/** Polls the live file for appended lines; a rotation (the file shrinks or is replaced) starts it over. */
async function follow(file: string, filter: Filter, table: Table, signal: AbortSignal): Promise<void> {
  let position = sizeOf(file)?.size ?? 0;
  let inode = sizeOf(file)?.ino;
  let partial = '';
  while (!signal.aborted) {
    await new Promise<void>((done) => {
      const stop = (): void => {
        clearTimeout(timer);
        done();
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', stop);
        done();
      }, POLL_MS);
      signal.addEventListener('abort', stop, { once: true });
    });
    const s = sizeOf(file);
    if (!s) continue;
    if (s.ino !== inode || s.size < position) {
      inode = s.ino;
      position = 0;
      partial = '';
    }
    if (s.size === position) continue;
    const text = partial + readRange(file, position, s.size);
    position = s.size;
    const end = text.lastIndexOf('\n');
    partial = text.slice(end + 1);
    table.write(parseLines(text.slice(0, end + 1)).filter((r) => matches(r, filter)), false);
  }
}

function sizeOf(file: string): { size: number; ino: number } | undefined {
  try {
    const s = statSync(file);
    return { size: s.size, ino: s.ino };
  } catch {
    return undefined;
  }
}

function readRange(file: string, start: number, end: number): string {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(end - start);
    const n = readSync(fd, buffer, 0, buffer.length, start);
    return buffer.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

// ---- summary ----------------------------------------------------------------------------------------------

function renderSummary(s: Summary, file: string): string {
  const lines: string[] = [];
  const section = (title: string, header: string[], rows: string[][]): void => {
    lines.push('', title);
    if (rows.length === 0) {
      lines.push('  (none)');
      return;
    }
    const widths = header.map((h, i) => Math.min(48, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))));
    lines.push(`  ${header.map((h, i) => cell(h, widths[i]!)).join('  ').trimEnd()}`);
    for (const r of rows) lines.push(`  ${r.map((c, i) => cell(c, widths[i]!)).join('  ').trimEnd()}`);
  };
  const classes = Object.entries(s.byClass).map(([k, v]) => `${v} ${k}`).join(', ');
  lines.push(`${file}: ${s.records} records${s.from ? ` from ${s.from} to ${s.to}` : ''}${classes ? ` (${classes})` : ''}`);
  section(
    'Findings per rule and route',
    ['RULE', 'ROUTE', 'COUNT', 'ATTACKS', 'VULNS', 'BLOCKED', 'CHALLENGED'],
    s.byRuleRoute.map((r) => [r.rule, r.route, String(r.count), String(r.attacks), String(r.vulnerabilities), String(r.blocked), String(r.challenged)]),
  );
  section(
    'Vulnerable routes (input reaches a sink unparameterised)',
    ['ROUTE', 'RULE', 'COUNT', 'FIRST SEEN', 'LAST SEEN', 'EXAMPLE'],
    s.vulnerableRoutes.map((v) => [v.route, v.rule, String(v.count), v.firstSeen, v.lastSeen, [v.example.source, v.example.text].filter(Boolean).join(' → ')]),
  );
  section(
    'Step-up per rule',
    ['RULE', 'CHALLENGES', 'PER HOUR', 'VERIFIED', 'FAILED', 'FAILURE RATE', 'LOCKOUTS', 'GRANTS USED'],
    s.stepUp.map((r) => [r.rule, String(r.challenges), String(r.challengesPerHour), String(r.verified), String(r.failed), `${(r.failureRate * 100).toFixed(1)} %`, String(r.lockedOut), String(r.grantsUsed)]),
  );
  section('Top users by failed verifications', ['USER', 'FAILURES', 'LOCKOUTS'], s.topUsersByFailures.map((u) => [u.user, String(u.failures), String(u.lockouts)]));
  section(
    'Anomalies',
    ['TIME', 'KIND', 'RULE', 'ROUTE', 'EXPECTED', 'SEEN'],
    s.anomalies.map((a) => [a.time, outcomeOf(a), ruleOf(a) ?? '', routeOf(a) ?? String(a[ATTR.USER_ID] ?? ''), String(a['stepguard.anomaly.expected'] ?? ''), String(a['stepguard.anomaly.observed'] ?? '')]),
  );
  return `${lines.join('\n')}\n`;
}
