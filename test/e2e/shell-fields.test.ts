/**
 * End-to-end: ordinary form values (names, hosts, prices, hashtags, emoji, IPv6, punctuation) through an app
 * that runs them in shell commands unquoted, naively double-quoted, properly quoted, with exec, spawn({ shell })
 * and execFile. In block mode none is refused — the app behaves exactly as without the agent — and the
 * unquoted ones are reported as vulnerabilities. The routes name the program they run (/echo/…), so a URL
 * path segment equal to the program is in every request. Options that run code or write files are refused,
 * each proven to work without the agent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { call, fixture, startApp, type Reply, type RunningApp } from '../helpers/app.js';
import { readCorpus } from '../helpers/corpus.js';

interface FieldCase {
  kind: string;
  payload: string;
  /** Ordinary text that is not shell syntax, so it may go unquoted; `false`: only through quoted sinks. */
  unquoted: boolean;
}

const fields = readCorpus<FieldCase>('command-injection.fields.jsonl');
const runId = randomBytes(4).toString('hex');
const cwd = `/tmp/sg-fields-${runId}`;
const marker = (name: string, who: string) => `${cwd}/m-${name}-${who}`;
const env = { STEPGUARD_RULES: '', SG_FIELDS_CWD: cwd };
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  mkdirSync(cwd, { recursive: true });
  writeFileSync(`${cwd}/report.pdf`, 'pdf');
  [bare, guarded] = await Promise.all([
    startApp(fixture('shell-fields-app.cjs'), { agent: false, env }),
    startApp(fixture('shell-fields-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  rmSync(cwd, { recursive: true, force: true });
});

const post = (app: RunningApp, route: string, q: string): Promise<Reply> => call(app, 'POST', route, { body: { q } });

/** Runs `work` over `items`, a few at a time (two cores shared with other tests). */
async function inBatches<T>(items: readonly T[], work: (item: T) => Promise<void>, size = 6): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

describe('ordinary field values through shell sinks (block mode)', () => {
  it('the corpus has at least 200 values of every kind that may go unquoted', () => {
    const unquoted = fields.filter((f) => f.unquoted);
    expect(unquoted.length).toBeGreaterThanOrEqual(200);
    for (const kind of ['name', 'host', 'price', 'tag', 'emoji', 'text']) expect(unquoted.some((f) => f.kind === kind), kind).toBe(true);
    const all = unquoted.map((f) => f.payload).join('\n');
    for (const s of [' ', '#', '~', '$1', '*', '?', '[::1]', '🙂', "'"]) expect(all).toContain(s);
  });

  const sinks: [route: string, unquotedOnly: boolean][] = [
    ['/echo/unquoted', true],
    ['/echo/double', true],
    ['/echo/spawn-unquoted', true],
    ['/echo/argv', false],
    ['/echo/quoted', false],
    ['/echo/spawn-quoted', false],
  ];

  it.each(sinks)('%s: no value refused, every reply as without the agent', async (route, unquotedOnly) => {
    const values = fields.filter((f) => f.unquoted || !unquotedOnly).map((f) => f.payload);
    const refused: string[] = [];
    const differs: string[] = [];
    await inBatches(values, async (v) => {
      const [p, g] = await Promise.all([post(bare, route, v), post(guarded, route, v)]);
      if (g.status === 403) refused.push(v);
      else if (g.status !== p.status || g.text !== p.text) differs.push(`${JSON.stringify(v)}: ${p.status} ${p.text} ≠ ${g.status} ${g.text}`);
    });
    expect(refused).toEqual([]);
    expect(differs).toEqual([]);
  }, 180_000);

  it('reported no attack, and the unquoted sinks as vulnerabilities', () => {
    const lines = guarded.stderr().split('\n');
    expect(lines.filter((l) => l.includes('attack command-injection') && l.includes('/echo/'))).toEqual([]);
    const vulns = lines.filter((l) => l.includes('vulnerability command-injection'));
    for (const route of ['/echo/unquoted', '/echo/double', '/echo/spawn-unquoted']) expect(vulns.some((l) => l.includes(route)), route).toBe(true);
  });
});

describe('options that run code or write files', () => {
  const cases: [route: string, name: string, payload: (m: string) => string][] = [
    ['/opt/find', 'find', (m) => `x -fprint ${m}`],
    ['/opt/find', 'find-exec', (m) => `report.pdf -exec touch ${m} {} +`],
    ['/opt/tar', 'tar', (m) => `report.pdf --checkpoint=1 --checkpoint-action=exec='touch ${m}'`],
    ['/opt/git', 'git', (m) => `--upload-pack='touch ${m}' .`],
    ['/opt/curl', 'curl', (m) => `-o ${m} file:///etc/hostname`],
    ['/opt/awk', 'awk', (m) => `BEGIN { system("touch ${m}") }`],
    ['/opt/sed', 'sed', (m) => `1e touch ${m}`],
    ['/opt-argv/curl', 'curl-argv', (m) => `-o${m}`],
  ];

  it.each(cases)('%s (%s): works without the agent, refused with it', async (route, name, payload) => {
    await post(bare, route, payload(marker(name, 'bare')));
    for (let i = 0; i < 40 && !existsSync(marker(name, 'bare')); i++) await new Promise((r) => setTimeout(r, 25));
    expect(existsSync(marker(name, 'bare')), 'the exploit works without the agent').toBe(true);

    const reply = await post(guarded, route, payload(marker(name, 'guarded')));
    expect(reply.status).toBe(403);
    expect(reply.headers.get('content-type')).toBe('application/problem+json');
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(marker(name, 'guarded'))).toBe(false);
  });

  it('ordinary values through the same programs pass', async () => {
    for (const [route, q] of [['/opt/find', 'report.pdf'], ['/opt/tar', 'report.pdf'], ['/opt/awk', '{ print $1 }'], ['/opt/sed', 's/a/b/'], ['/opt/curl', 'file:///etc/hostname']] as const) {
      expect((await post(guarded, route, q)).status, `${route} ${q}`).not.toBe(403);
    }
  });
});
