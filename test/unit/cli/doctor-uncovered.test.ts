/**
 * `stepguard doctor` names installed packages that run code or fetch resources from their input and that no
 * hook covers (issue #12): an app using them is told, instead of nothing.
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../../src/cli/main.js';

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  const code = await main(argv, { ...process.env, STEPGUARD_RULES: '' }, sink);
  return { code, out };
}

/** An app directory with the given packages installed (name → version). */
function appWith(packages: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sg-doctor-'));
  for (const [name, version] of Object.entries(packages)) {
    const pkg = join(dir, 'node_modules', ...name.split('/'));
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name, version, main: 'index.js' }));
    writeFileSync(join(pkg, 'index.js'), 'module.exports = {};');
  }
  return dir;
}

describe('stepguard doctor: risky packages no hook covers', () => {
  it('names each one with its version and risk, in text and JSON', async () => {
    const dir = appWith({ vm2: '3.9.19', 'expr-eval': '2.0.2', '@xmldom/xmldom': '0.8.10', lodash: '4.17.21' });
    const text = await run('doctor', '--dir', dir);
    expect(text.out).toContain('! vm2@3.9.19 — sandbox with known escapes: NOT covered by any hook');
    expect(text.out).toContain('! expr-eval@2.0.2 — expression evaluator: NOT covered by any hook');
    expect(text.out).toContain('! @xmldom/xmldom@0.8.10');
    expect(text.out).not.toContain('lodash');
    const json = JSON.parse((await run('doctor', '--json', '--dir', dir)).out) as { uncovered: { module: string }[] };
    expect(json.uncovered.map((u) => u.module).sort()).toEqual(['@xmldom/xmldom', 'expr-eval', 'vm2']);
  });

  it('says nothing when none is installed, and packages with a hook are listed as modules', async () => {
    const dir = appWith({ 'node-serialize': '0.0.4' });
    const report = JSON.parse((await run('doctor', '--json', '--dir', dir)).out) as { uncovered: unknown[]; modules: { module: string; state: string }[] };
    expect(report.uncovered).toEqual([]);
    expect(report.modules).toContainEqual(expect.objectContaining({ module: 'node-serialize', state: 'protected' }));
  });
});

describe('start-up line: risky packages no hook covers', () => {
  const startLine = async (dir: string): Promise<string> => {
    const { spawn } = await import('node:child_process');
    const { REGISTER } = await import('../../helpers/app.js');
    writeFileSync(join(dir, 'app.js'), 'setTimeout(() => {}, 1);');
    const child = spawn(process.execPath, ['--require', REGISTER, join(dir, 'app.js')], {
      cwd: tmpdir(),
      env: { ...process.env, STEPGUARD_RULES: '', OTEL_TRACES_EXPORTER: 'none' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += String(c)));
    await new Promise((r) => child.on('close', r));
    return err.split('\n').filter((l) => l.includes('active:')).join('\n');
  };

  it('names them on the one start-up line, resolved from the app entry script', async () => {
    const line = await startLine(appWith({ vm2: '3.9.19', 'expr-eval': '2.0.2' }));
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain('NOT covered by any hook: expr-eval@2.0.2 (expression evaluator), vm2@3.9.19 (sandbox with known escapes)');
  }, 60_000);

  it('says nothing of them when none is installed', async () => {
    const line = await startLine(appWith({ lodash: '4.17.21' }));
    expect(line).toContain('active:');
    expect(line).not.toContain('NOT covered');
  }, 60_000);
});
