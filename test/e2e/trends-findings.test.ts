/**
 * The findings log written by the agent during a real run (the bank example under --require), read back by
 * `stepguard findings` and `stepguard findings summary`, including `--follow` picking up new lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, type RunningApp } from '../helpers/app.js';
import { requirePostgres } from '../helpers/services.js';
import { ATTACK, EXPECTED, runScenario, startBank } from '../helpers/trends-scenario.js';
import type { Session } from '../helpers/bank.js';

const CLI = join(REPO, 'dist/src/cli/main.js');
let dir: string;
let file: string;
let app: RunningApp;
let alice: Session;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, STEPGUARD_FINDINGS_FILE: file } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const lines = (): Array<Record<string, unknown>> =>
  readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  await requirePostgres();
  dir = mkdtempSync(join(tmpdir(), 'sg-trends-'));
  file = join(dir, 'logs', 'findings.jsonl');
  app = await startBank(join(dir, 'store'), { STEPGUARD_FINDINGS_FILE: file });
  alice = await runScenario(app);
  // Every event of the scenario is in the file (the writer batches for a few milliseconds).
  await until('the grant_used line', () => {
    try {
      return lines().some((l) => l['stepguard.step_up.event'] === 'grant_used') || undefined;
    } catch {
      return undefined;
    }
  });
});

afterAll(async () => {
  await app?.stop();
});

describe('the findings log', () => {
  it('holds every finding and step-up event as one JSON line with the span attributes, redacted', () => {
    const all = lines();
    const findings = all.filter((l) => l.event === 'finding');
    const attacks = findings.filter((l) => l['stepguard.kind'] === 'attack');
    expect(attacks).toHaveLength(EXPECTED.attacksBlocked);
    expect(attacks.every((l) => l['stepguard.outcome'] === 'blocked' && l['security_rule.name'] === 'sql-injection' && l.status === 'error')).toBe(true);
    expect(attacks[0]!['http.route']).toBe('/payees');
    expect(attacks[0]!['stepguard.source']).toBe('query.q');
    expect(attacks[0]!['stepguard.payload']).toBe("*' ** ** ** ** ** --");
    expect(findings.filter((l) => l['stepguard.kind'] === 'vulnerability')).toHaveLength(EXPECTED.vulnerabilities);
    expect(findings.filter((l) => l['stepguard.outcome'] === 'challenged' && l['security_rule.name'] === 'transfer-step-up')).toHaveLength(EXPECTED.challenged);
    const events = all.filter((l) => l.event === 'step_up').map((l) => l['stepguard.step_up.event']);
    expect(events.filter((e) => e === 'challenge_issued')).toHaveLength(EXPECTED.challenges);
    expect(events.filter((e) => e === 'failed')).toHaveLength(EXPECTED.failures);
    expect(events.filter((e) => e === 'verified')).toHaveLength(EXPECTED.verified);
    expect(events.filter((e) => e === 'grant_used')).toHaveLength(EXPECTED.grantsUsed);
    for (const l of all) expect(Date.parse(l.time as string)).toBeGreaterThan(Date.now() - 120_000);
    // Raw input never reaches the file: the attack text appears only masked.
    expect(readFileSync(file, 'utf8')).not.toContain('UNION SELECT email');
  });

  it("holds no stale-context report for the app's own error handling after a refusal", () => {
    // After the 403 the bank's error handler still renders JSON (Express hashes it for an ETag): the request's own
    // work, not a library that lost the context.
    expect(lines().filter((l) => l.event === 'stale_context')).toEqual([]);
    expect(app.stderr()).not.toContain('lost the request context');
  });
});

describe('stepguard findings', () => {
  it('prints a table with time, outcome, rule, class, route, source and payload', async () => {
    const { code, stdout } = await cli(['findings']);
    expect(code).toBe(0);
    const rows = stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^TIME\s+OUTCOME\s+RULE\s+CLASS\s+ROUTE\s+SOURCE\s+PAYLOAD$/);
    const blocked = rows.filter((r) => /\bblocked\s+sql-injection\s+attack\s+GET \/payees\s+query\.q\s+"\*' \*\* \*\*/.test(r));
    expect(blocked).toHaveLength(EXPECTED.attacksBlocked);
    expect(rows.some((r) => /\bchallenged\s+transfer-step-up\s+policy\s+POST \/transfer/.test(r))).toBe(true);
    expect(rows.some((r) => /\bfailed\s+transfer-step-up\s+step-up\b.*\binvalid/.test(r))).toBe(true);
    expect(stdout).not.toContain(ATTACK);
  });

  it('filters by rule, kind, route and time, and prints JSON lines', async () => {
    const byRule = await cli(['findings', '--rule', 'sql-injection', '--json']);
    const records = byRule.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(EXPECTED.attacksBlocked);
    expect(records.every((r) => r['security_rule.name'] === 'sql-injection')).toBe(true);

    const vulns = await cli(['findings', '--kind', 'vulnerability', '--json']);
    expect(vulns.stdout.trim().split('\n')).toHaveLength(EXPECTED.vulnerabilities);

    const transfer = await cli(['findings', '--route', '/transfer', '--json']);
    const onTransfer = transfer.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // The challenged finding carries the route template; step-up events on that request carry its path.
    expect(onTransfer.map((r) => r['http.route'] ?? r['url.path'])).toEqual(['/transfer', '/transfer', '/transfer']);
    expect(onTransfer.map((r) => r['stepguard.step_up.event'] ?? r['stepguard.outcome'])).toEqual(['challenge_issued', 'challenged', 'grant_used']);

    const future = await cli(['findings', '--since', new Date(Date.now() + 60_000).toISOString()]);
    expect(future.stdout).toContain('no records');
    const recent = await cli(['findings', '--since', '10m', '--json']);
    expect(recent.stdout.trim().split('\n').length).toBe(lines().length);
  });

  it('explains a missing file setting and a bad filter (exit 2)', async () => {
    const noFile = await new Promise<{ code: number; stdout: string }>((resolve) => {
      const env = { ...process.env };
      delete env.STEPGUARD_FINDINGS_FILE;
      const child = spawn(process.execPath, [CLI, 'findings'], { cwd: REPO, env });
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.on('exit', (code) => resolve({ code: code ?? -1, stdout }));
    });
    expect(noFile.code).toBe(2);
    expect(noFile.stdout).toContain('pass --file PATH or set STEPGUARD_FINDINGS_FILE');
    const bad = await cli(['findings', '--since', 'yesterday-ish']);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toContain('--since yesterday-ish: expected a duration');
  });

  it('--follow prints records written after it started', async () => {
    const child = spawn(process.execPath, [CLI, 'findings', '--follow', '--kind', 'attack'], { cwd: REPO, env: { ...process.env, STEPGUARD_FINDINGS_FILE: file } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      await until('the existing rows', () => (stdout.split('\n').filter((l) => / attack /.test(l)).length === EXPECTED.attacksBlocked ? true : undefined));
      const reply = await alice.send('GET', `/payees?q=${encodeURIComponent("y' OR 'a'='a")}`);
      expect(reply.status).toBe(403);
      const row = await until('the new row', () => stdout.split('\n').find((l) => l.includes(`"*' ** '*'='*"`))).catch((error: Error) => {
        throw new Error(`${error.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
      });
      expect(row).toMatch(/\b(blocked|reported)\s+sql-injection\s+attack\s+GET \/payees/);
    } finally {
      child.kill('SIGINT');
    }
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
  });
});

describe('stepguard findings summary', () => {
  it('counts per rule and route, vulnerable routes with first/last seen, step-up rates and top users by failures', async () => {
    const { code, stdout } = await cli(['findings', 'summary', '--json']);
    expect(code).toBe(0);
    const s = JSON.parse(stdout) as {
      byRuleRoute: Array<{ rule: string; route: string; count: number; blocked: number }>;
      vulnerableRoutes: Array<{ route: string; rule: string; firstSeen: string; lastSeen: string; example: { source: string; text: string } }>;
      stepUp: Array<{ rule: string; challenges: number; verified: number; failed: number; failureRate: number; grantsUsed: number }>;
      topUsersByFailures: Array<{ user: string; failures: number }>;
    };
    const sqli = s.byRuleRoute.find((r) => r.rule === 'sql-injection' && r.route === '/payees')!;
    expect(sqli.blocked).toBeGreaterThanOrEqual(EXPECTED.attacksBlocked);
    const vuln = s.vulnerableRoutes.find((v) => v.route === '/payees')!;
    expect(vuln.rule).toBe('sql-unparameterised');
    expect(vuln.example.source).toBe('query.q');
    expect(vuln.example.text).toContain('SELECT');
    expect(Date.parse(vuln.firstSeen)).toBeLessThanOrEqual(Date.parse(vuln.lastSeen));
    const transfer = s.stepUp.find((r) => r.rule === 'transfer-step-up')!;
    expect(transfer).toMatchObject({ challenges: 1, verified: 1, failed: 1, failureRate: 0.5, grantsUsed: 1 });
    expect(s.topUsersByFailures).toEqual([{ user: 'alice', failures: 1, lockouts: 0 }]);

    const text = await cli(['findings', 'summary']);
    expect(text.stdout).toContain('Findings per rule and route');
    expect(text.stdout).toMatch(/transfer-step-up\s+1\s+[\d.]+\s+1\s+1\s+50\.0 %/);
    expect(text.stdout).toMatch(/Top users by failed verifications\n\s+USER\s+FAILURES\s+LOCKOUTS\n\s+alice\s+1\s+0/);
  });
});
