/**
 * Switches: one hook turned off by STEPGUARD_DISABLED_HOOKS while the others keep refusing; a bad hook name
 * named at start-up; `stepguard doctor` showing the switched-off hook; and registry lines that load a
 * hook's code only when its module is first required, patching it then.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REGISTER, REPO, call, fixture, startApp, type RunningApp } from '../helpers/app.js';

const ROOT = mkdtempSync(join(tmpdir(), 'sg-switch-'));
const SECRET = `TOPSECRET-${randomBytes(6).toString('hex')}`;
const TRAVERSAL = '../../secret/secret.txt';
const INJECTION = 'hi; echo INJECTED';
const env = { SG_FILES_ROOT: ROOT, STEPGUARD_RULES: '', STEPGUARD_MODE: 'block', STEPGUARD_LOG_FINDINGS: 'false' };
let allOn: RunningApp;
let fsOff: RunningApp;
let badName: RunningApp;

beforeAll(async () => {
  mkdirSync(join(ROOT, 'secret'), { recursive: true });
  mkdirSync(join(ROOT, 'www', 'files'), { recursive: true });
  writeFileSync(join(ROOT, 'secret', 'secret.txt'), SECRET);
  writeFileSync(join(ROOT, 'www', 'files', 'hello.txt'), 'hello file');
  [allOn, fsOff, badName] = await Promise.all([
    startApp(fixture('switches-app.cjs'), { env }),
    startApp(fixture('switches-app.cjs'), { env: { ...env, STEPGUARD_DISABLED_HOOKS: 'fs' } }),
    startApp(fixture('switches-app.cjs'), { env: { ...env, STEPGUARD_DISABLED_HOOKS: 'fs,vmm' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([allOn?.stop(), fsOff?.stop(), badName?.stop()]);
  rmSync(ROOT, { recursive: true, force: true });
});

describe('STEPGUARD_DISABLED_HOOKS', () => {
  it('leaves the switched-off hook out while every other hook still refuses', async () => {
    expect((await call(allOn, 'GET', `/read?name=${encodeURIComponent(TRAVERSAL)}`)).status).toBe(403);

    const read = await call(fsOff, 'GET', `/read?name=${encodeURIComponent(TRAVERSAL)}`);
    expect(read.status).toBe(200);
    expect(read.text).toBe(SECRET);
    expect((await call(fsOff, 'GET', '/read?name=hello.txt')).text).toBe('hello file');

    const echo = await call(fsOff, 'GET', `/greet?name=${encodeURIComponent(INJECTION)}`);
    expect(echo.status).toBe(403);
    expect(echo.text).not.toContain('INJECTED');
    expect((await call(fsOff, 'GET', '/greet?name=hi')).text).toBe('hi\n');
    expect(fsOff.stderr()).toContain('hooks switched off by STEPGUARD_DISABLED_HOOKS: fs');
  });

  it('names the variable, the bad name and the valid names at start-up, and runs in monitor mode', async () => {
    const stderr = badName.stderr();
    expect(stderr).toMatch(/env STEPGUARD_DISABLED_HOOKS: unknown hook "vmm"; valid names: http-server, pg, .*\bfs\b.*\bvm\b/);
    expect(stderr).toContain('running in MONITOR mode');
    // Monitor mode: the injection is reported, not refused.
    const echo = await call(badName, 'GET', `/greet?name=${encodeURIComponent(INJECTION)}`);
    expect(echo.status).toBe(200);
  });

  it('is shown by `stepguard doctor`, and a bad name fails it', async () => {
    const doctor = (extra: Record<string, string>) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        execFile(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'doctor', '--dir', REPO], { env: { ...process.env, ...extra } }, (error, stdout) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, out: stdout }),
        );
      });
    const text = await doctor({ STEPGUARD_DISABLED_HOOKS: 'fs' });
    expect(text.out).toMatch(/· fs — disabled by STEPGUARD_DISABLED_HOOKS/);
    expect(text.out).toMatch(/· fs\/promises — disabled by STEPGUARD_DISABLED_HOOKS \[hook fs\]/);
    expect(text.out).toMatch(/✓ child_process — builtin/);

    const json = JSON.parse(await doctorJson({ STEPGUARD_DISABLED_HOOKS: 'vm' })) as {
      modules: Array<{ module: string; hook: string; state: string }>;
    };
    expect(json.modules).toContainEqual(expect.objectContaining({ module: 'vm', hook: 'vm', state: 'disabled' }));
    expect(json.modules).toContainEqual(expect.objectContaining({ module: 'fs', hook: 'fs', state: 'builtin' }));

    const bad = await doctor({ STEPGUARD_DISABLED_HOOKS: 'pgg' });
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('env STEPGUARD_DISABLED_HOOKS: unknown hook "pgg"; valid names:');
  });
});

function doctorJson(extra: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'doctor', '--json', '--dir', REPO], { env: { ...process.env, ...extra } }, (error, stdout) =>
      error && !stdout ? reject(error) : resolve(stdout),
    );
  });
}

/** Runs a script under the agent and returns what it printed as JSON. */
async function underAgent(script: string, extraEnv: Record<string, string> = {}): Promise<Record<string, unknown>> {
  return JSON.parse((await underAgentRaw(script, extraEnv)).stdout) as Record<string, unknown>;
}

const PROBE = `
  const loaded = (file) => Object.keys(require.cache).some((f) => f.endsWith('/dist/hooks/' + file));
  const { hookStatuses } = require('./dist/src/instrument/install.js');
  const { isWrapped } = require('./dist/src/instrument/wrap.js');
  const pgStatus = () => hookStatuses().filter((s) => s.module === 'pg').map((s) => s.state);
  const before = { pgHook: loaded('pg.js'), mysqlHook: loaded('mysql.js'), fsHook: loaded('fs.js'), pg: pgStatus() };
  const pg = require('pg');
  const after = { pgHook: loaded('pg.js'), mysqlHook: loaded('mysql.js'), pg: pgStatus(), queryWrapped: isWrapped(pg.Client.prototype.query) };
  process.stdout.write(JSON.stringify({ before, after }));
`;

describe('lazy registry lines', () => {
  it("load a package hook's code only when the package is first required, and patch it then", async () => {
    const { before, after } = (await underAgent(PROBE)) as { before: Record<string, unknown>; after: Record<string, unknown> };
    // Builtins are patched at start; package hooks wait for their package.
    expect(before).toEqual({ pgHook: false, mysqlHook: false, fsHook: true, pg: [] });
    expect(after).toEqual({ pgHook: true, mysqlHook: false, pg: ['patched'], queryWrapped: true });
  });

  it('never load a switched-off hook', async () => {
    const { before, after } = (await underAgent(PROBE, { STEPGUARD_DISABLED_HOOKS: 'pg,fs' })) as { before: Record<string, unknown>; after: Record<string, unknown> };
    expect(before).toEqual({ pgHook: false, mysqlHook: false, fsHook: false, pg: ['disabled'] });
    expect(after).toEqual({ pgHook: false, mysqlHook: false, pg: ['disabled'], queryWrapped: false });
  });
});

describe('an agent with nothing to report', () => {
  it('loads no metrics SDK and sends nothing to the OTLP endpoint, not even at exit (default exporters)', async () => {
    const http = await import('node:http');
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const probe = `process.stdout.write(JSON.stringify({ metricsSdk: Object.keys(require.cache).some((f) => f.includes('sdk-metrics')) }))`;
      const result = await underAgent(probe, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` });
      expect(result).toEqual({ metricsSdk: false });
      expect(seen).toEqual([]);
    } finally {
      server.close();
    }
  });
});

describe('start-up loads what every app needs, the rest at first use (issue #8)', () => {
  const LAZY_PROBE = `
    const files = () => Object.keys(require.cache);
    const has = (part) => files().some((f) => f.includes(part));
    const snapshot = () => ({
      sqlDetector: has('/dist/src/detectors/sql-injection.js'),
      pathDetector: has('/dist/src/detectors/path-traversal.js'),
      grammar: has('/dist/src/grammar/sql-tokenizer.js') || has('/dist/src/grammar/shell/'),
      stepUpService: has('/dist/src/stepup/service.js'),
      inspect: has('/dist/src/inspect.js'),
      ritm: has('/node_modules/require-in-the-middle/'),
      // The version checks of a hooked package, a framework and the stacks line read the ranges compiled at build.
      semver: has('/node_modules/semver/'),
      // Parsers of settings this start does not set (SSRF allow-list, trusted proxies, Redis Cluster), of rule files
      // (the shipped rules come compiled) and the shell-program tables (no command judged yet).
      settingsParsers: has('/dist/src/detectors/ssrf-allow-list.js') || has('/dist/src/context/client-address.js') || has('/dist/src/stepup/store.js'),
      ruleParsers: has('/dist/src/rules/load-risk.js') || has('/dist/src/stepup/tiers.js'),
      shellTables: has('/dist/src/detectors/shell-programs.js'),
    });
    const atStart = { ...snapshot(), ours: files().filter((f) => f.includes('/dist/')).length };
    require('cookie-parser');
    const afterPlain = snapshot();
    require('express');
    const afterExpress = snapshot();
    require('pg');
    const afterPg = snapshot();
    const { runWithContext } = require('./dist/src/index.js');
    runWithContext({ url: '/read?file=package.json' }, () => require('fs').readFileSync('package.json'));
    process.stdout.write(JSON.stringify({ atStart, afterPlain, afterExpress, afterPg, afterSink: snapshot() }));
  `;
  const none = { sqlDetector: false, pathDetector: false, grammar: false, stepUpService: false, inspect: false, ritm: false, semver: false, settingsParsers: false, ruleParsers: false, shellTables: false };

  it('no detector, grammar, step-up service, inspect or require-in-the-middle at start; each when first needed; semver never', async () => {
    const r = (await underAgent(LAZY_PROBE)) as Record<string, Record<string, unknown>>;
    expect(r.atStart).toEqual({ ...none, ours: expect.any(Number) });
    // 43 when lazy loading landed; 55 once the settings parsers, the adaptive-rule parser, the method tiers and the
    // framework/stack tables had joined; 47 since the parsers load only when needed (December 4, 2026). Every file
    // loaded at start is path work for Node's loader, and enough of it makes V8 optimise Node's path code, whose
    // compiler then costs megabytes of resident memory at every start (README, Benchmark results).
    expect(r.atStart!.ours).toBeLessThanOrEqual(47);
    expect(r.afterPlain).toEqual(none); // a package no registry line names
    expect(r.afterExpress).toEqual({ ...none, ritm: true }); // a recognised framework (named on the start-up line)
    expect(r.afterPg).toEqual({ ...none, ritm: true });
    expect(r.afterSink).toMatchObject({ pathDetector: true, sqlDetector: false, inspect: true, ritm: true });
  });

  it('a setting whose parser loads only when it is given is still checked at start, naming the variable', async () => {
    const { stderr } = await underAgentRaw(`process.stdout.write('{}')`, { STEPGUARD_TRUSTED_PROXIES: 'nonsense', STEPGUARD_SSRF_ALLOW: '10.0.0.0/99', STEPGUARD_REDIS_CLUSTER: 'localhost' });
    expect(stderr).toContain('env STEPGUARD_TRUSTED_PROXIES: expected a hop count');
    expect(stderr).toContain('env STEPGUARD_SSRF_ALLOW: expected a comma-separated list of IPs');
    expect(stderr).toContain('env STEPGUARD_REDIS_CLUSTER: expected a comma-separated list of cluster nodes');
  });

  it('a switched-off agent loads one file of ours', async () => {
    const r = (await underAgent(`process.stdout.write(JSON.stringify(Object.keys(require.cache).filter((f) => f.includes('/dist/')).map((f) => f.split('/dist/')[1])))`, {
      STEPGUARD_ENABLED: 'false',
    })) as unknown as string[];
    expect(r).toEqual(['src/register.js']);
  });

  it('a switched-off agent started with --import loads that one file too, and says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-switch-esm-'));
    const app = join(dir, 'app.mjs');
    writeFileSync(app, `import { createRequire } from 'node:module';
      const cache = createRequire(import.meta.url).cache;
      process.stdout.write(JSON.stringify(Object.keys(cache).filter((f) => f.includes('/dist/')).map((f) => f.split('/dist/')[1])));`);
    try {
      const { stdout, stderr } = await nodeUnderAgent(['--import', join(REPO, 'dist/src/register-esm.mjs'), app], { STEPGUARD_ENABLED: 'false' });
      expect(JSON.parse(stdout)).toEqual(['src/register.js']);
      expect(stderr).toContain('[stepguard] disabled by STEPGUARD_ENABLED=false; nothing is inspected');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // The preload (both entries) reads the switch itself, loading one file; agent.ts's switchedOffByEnv serves
  // programmatic starts. Both must read the same words and say the same line at the same log levels.
  it.each(['false', 'FALSE', ' off ', 'no', '0', 'No', 'true', '1', 'yes', 'on', '', 'disabled', 'falsey'])(
    'STEPGUARD_ENABLED=%j: the preload decides as switchedOffByEnv does',
    async (value) => {
      const { switchedOffByEnv } = await import('../../src/agent.js');
      const off = switchedOffByEnv({ STEPGUARD_ENABLED: value, STEPGUARD_LOG_LEVEL: 'silent' });
      for (const level of ['info', 'debug', 'warn', 'error', 'silent']) {
        const { stdout, stderr } = await underAgentRaw(`process.stdout.write(String(Object.keys(require.cache).some((f) => f.endsWith('/dist/src/agent.js'))))`, {
          STEPGUARD_ENABLED: value,
          STEPGUARD_LOG_LEVEL: level,
        });
        expect(stdout, `level ${level}`).toBe(String(!off));
        const said = stderr.includes('[stepguard] disabled by STEPGUARD_ENABLED=false; nothing is inspected');
        expect(said, `level ${level}`).toBe(off && (level === 'info' || level === 'debug'));
      }
    },
  );
});

describe('threads', () => {
  it('the preload starts the agent in the main thread only, not again in a worker thread that inherits it', async () => {
    const started = "Boolean(globalThis[Symbol.for('stepguard.runtime-holder')]?.current)";
    const r = await underAgent(`
      const { Worker } = require('node:worker_threads');
      const w = new Worker("require('node:worker_threads').parentPort.postMessage(${started})", { eval: true });
      w.once('message', (inWorker) => { process.stdout.write(JSON.stringify({ main: ${started}, worker: inWorker })); w.terminate(); });
    `);
    expect(r).toEqual({ main: true, worker: false });
  });
});

function underAgentRaw(script: string, extraEnv: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return nodeUnderAgent(['--require', REGISTER, '-e', script], extraEnv);
}

/** `node ARGS` (which load the agent themselves) in the repo, with export and shipped rules off; what it printed. */
function nodeUnderAgent(args: readonly string[], extraEnv: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      args,
      { cwd: REPO, env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', STEPGUARD_RULES: '', ...extraEnv } },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve({ stdout, stderr })),
    );
  });
}
