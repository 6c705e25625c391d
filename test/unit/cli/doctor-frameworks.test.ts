/**
 * `stepguard doctor` names every recognised web framework the app has installed and whether its request input
 * and context are covered (issue #9 scope 5), from the one table in hooks/versions.ts.
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../../src/cli/main.js';
import { FRAMEWORKS, HOOKS } from '../../../hooks/index.js';

async function run(env: Record<string, string>, ...argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  const code = await main(argv, { ...process.env, STEPGUARD_RULES: '', ...env }, sink);
  return { code, out };
}

function appWith(packages: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sg-doctor-fw-'));
  for (const [name, version] of Object.entries(packages)) {
    const pkg = join(dir, 'node_modules', ...name.split('/'));
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name, version, main: 'index.js' }));
    writeFileSync(join(pkg, 'index.js'), 'module.exports = {};');
  }
  return dir;
}

interface Report {
  frameworks: { package: string; version?: string; state: string }[];
  modules: { module: string }[];
  ok: boolean;
}

describe('stepguard doctor: frameworks', () => {
  it('reports each installed framework: covered or untested version — and does not fail on them', async () => {
    const dir = appWith({ '@nestjs/core': '11.1.0', '@hapi/hapi': '20.2.1', next: '16.0.0', mercurius: '16.1.0' });
    const json = await run({}, 'doctor', '--json', '--dir', dir);
    const report = JSON.parse(json.out) as Report;
    const state = (pkg: string) => report.frameworks.find((f) => f.package === pkg)?.state;
    expect(state('@nestjs/core')).toBe('covered');
    expect(state('mercurius')).toBe('covered');
    expect(state('@hapi/hapi')).toBe('untested version');
    expect(state('next')).toBe('untested version');
    expect(state('@apollo/server')).toBe('not installed');
    expect(report.frameworks.map((f) => f.package)).toEqual(FRAMEWORKS.map((f) => f.package));
    // Frameworks have their own section; they are not listed as patched modules.
    expect(report.modules.map((m) => m.module)).not.toContain('@nestjs/core');

    const text = (await run({}, 'doctor', '--dir', dir)).out;
    expect(text).toMatch(/✓ NestJS \(@nestjs\/core@11\.1\.0\) — covered \(tested >=11 <12\): @Param, @Query and @Body DTOs/);
    expect(text).toMatch(/! Hapi \(@hapi\/hapi@20\.2\.1\) — untested version \(tested >=21 <22\)/);
    expect(text).toMatch(/! Next\.js \(next@16\.0\.0\) — untested version \(tested >=15 <16\)/);
  });

  it('says a framework is not covered when http-server is switched off', async () => {
    const dir = appWith({ '@hapi/hapi': '21.4.0' });
    const report = JSON.parse((await run({ STEPGUARD_DISABLED_HOOKS: 'http-server' }, 'doctor', '--json', '--dir', dir)).out) as Report;
    expect(report.frameworks.find((f) => f.package === '@hapi/hapi')?.state).toBe('disabled');
  });

  it('every framework has a registry line under the http-server name (so the agent names it when loaded)', () => {
    for (const f of FRAMEWORKS) expect(HOOKS.find((h) => h.module === f.package)?.name, f.package).toBe('http-server');
  });
});
