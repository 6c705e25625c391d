/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core) opens
 * the page that `stepguard dashboard` serves over the findings log of a scripted run of the bank example.
 * It checks the counts, that the chart rendered, that the token is required, and saves docs/dashboard.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { REPO, type RunningApp } from '../helpers/app.js';
import { requirePostgres } from '../helpers/services.js';
import { EXPECTED, runScenario, startBank } from '../helpers/trends-scenario.js';

const CHROMIUM = '/usr/bin/chromium';
let dir: string;
let file: string;
let app: RunningApp;
let dashboard: ChildProcess;
let url: string;
let browser: BrowserContext;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium) to run the dashboard test`);
  }
  await requirePostgres();
  dir = mkdtempSync(join(tmpdir(), 'sg-dashboard-'));
  file = join(dir, 'findings.jsonl');
  // One failed verification flags the user, so the page also shows an anomaly and a flagged account.
  app = await startBank(join(dir, 'store'), { STEPGUARD_FINDINGS_FILE: file, STEPGUARD_ANOMALY_USER_FAILURES: '1' });
  await runScenario(app);
  const deadline = Date.now() + 10_000;
  while (!(existsSync(file) && readFileSync(file, 'utf8').includes('"grant_used"'))) {
    if (Date.now() > deadline) throw new Error('the findings log was not written');
    await new Promise((r) => setTimeout(r, 50));
  }
  dashboard = spawn(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'dashboard', '--file', file, '--port', '0'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the dashboard did not start: ${out}`)), 15_000);
    dashboard.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /open (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  // A fresh profile (--user-data-dir) for every run; playwright passes it through launchPersistentContext.
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sg-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  dashboard?.kill('SIGTERM');
  await app?.stop();
});

describe('stepguard dashboard', () => {
  it('listens on 127.0.0.1 only and requires the token', async () => {
    const { origin } = new URL(url);
    expect(origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${origin}/`)).status).toBe(401);
    expect((await fetch(`${origin}/api/summary`)).status).toBe(401);
    expect((await fetch(`${origin}/api/summary?token=wrong`)).status).toBe(401);
    expect((await fetch(`${origin}/api/summary`, { method: 'POST' })).status).toBe(405);
    const page = await browser.newPage();
    const response = await page.goto(`${origin}/`);
    expect(response!.status()).toBe(401);
    expect(await page.textContent('body')).toContain('token printed at start is required');
    await page.close();
  });

  it('shows the counts of the scripted run, the chart, step-up rates, the flagged account and the anomaly', async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1280, height: 1400 });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(url);
    await page.waitForSelector('body[data-loaded="true"]');
    expect(await page.textContent('#count-attack')).toBe(String(EXPECTED.attacksBlocked));
    expect(await page.textContent('#count-vulnerability')).toBe(String(EXPECTED.vulnerabilities));
    expect(await page.textContent('#count-policy')).toBe(String(EXPECTED.challenged));
    expect(await page.textContent('#count-step-up')).toBe(String(EXPECTED.challenges + EXPECTED.failures + EXPECTED.verified + EXPECTED.grantsUsed));
    expect(await page.textContent('#count-anomaly')).toBe('1');

    // uPlot drew the chart: a canvas with a size, and a legend entry per class.
    const canvas = await page.$eval('#chart canvas', (c) => ({ w: (c as unknown as { width: number }).width, h: (c as unknown as { height: number }).height }));
    expect(canvas.w).toBeGreaterThan(300);
    expect(canvas.h).toBeGreaterThan(100);
    expect(await page.$$eval('#chart .u-legend .u-series .u-label', (s) => s.map((x) => x.textContent))).toEqual(['Time', 'attack', 'vulnerability', 'policy', 'step-up', 'anomaly']);

    const rows = (id: string) => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(await rows('top-rules')).toContainEqual(['sql-injection', String(EXPECTED.attacksBlocked)]);
    const vulnerable = await rows('vulnerable');
    expect(vulnerable[0]!.slice(0, 3)).toEqual(['/payees', 'sql-unparameterised', '1']);
    expect(vulnerable[0]![5]).toContain('query.q → SELECT');
    expect(await rows('step-up')).toContainEqual(['transfer-step-up', '1', expect.any(String), '1', '1', '50.0 %', '0', '1']);
    expect((await rows('flagged'))[0]!.slice(0, 2)).toEqual(['alice', 'anomaly: user_failures']);
    expect((await rows('anomalies'))[0]!.slice(1)).toEqual(['user_failures', 'transfer-step-up · alice', '1', '1']);

    // Offline: every request went to the dashboard itself.
    const { origin } = new URL(url);
    expect(requests.every((r) => r.startsWith(origin))).toBe(true);

    await page.screenshot({ path: join(REPO, 'docs/dashboard.png'), fullPage: true });
    expect(readFileSync(join(REPO, 'docs/dashboard.png')).subarray(1, 4).toString()).toBe('PNG');
    await page.close();
  });
});
