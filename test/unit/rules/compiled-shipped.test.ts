/**
 * The shipped rules are compiled at build time (dist/src/rules/shipped-rules.json): the built agent must
 * load exactly what the YAML says without the YAML parser, and fall back to the YAML when a shipped file
 * no longer matches what was compiled. Runs against dist/ (`npm run build` first).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../helpers/app.js';

const require = createRequire(import.meta.url);
type LoadModule = typeof import('../../../src/rules/load.js');
const load = require(join(REPO, 'dist/src/rules/load.js')) as LoadModule;
const { DETECTOR_IDS } = require(join(REPO, 'dist/src/detectors/index.js')) as typeof import('../../../src/detectors/index.js');

/** Rules as comparable data: patterns by source, paths relative to the rules directory. */
function comparable(rules: readonly unknown[], dir: string): unknown {
  return JSON.parse(
    JSON.stringify(rules, (_k, v: unknown) => {
      if (typeof v === 'string' && v.startsWith(dir)) return v.slice(dir.length);
      if (v && typeof v === 'object' && typeof (v as { test?: unknown }).test === 'function') return { pattern: (v as { source: string }).source };
      return v;
    }),
  );
}

function copyOfShipped(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stepguard-shipped-'));
  cpSync(join(REPO, 'rules'), dir, { recursive: true });
  return dir;
}

describe('compiled shipped rules', () => {
  it('are what the YAML says, and loading them does not load the YAML parser', () => {
    const script = `
      const load = require(${JSON.stringify(join(REPO, 'dist/src/rules/load.js'))});
      const { DETECTOR_IDS } = require(${JSON.stringify(join(REPO, 'dist/src/detectors/index.js'))});
      const { ruleSet, problems } = load.loadRules([], DETECTOR_IDS);
      const yamlLoaded = Object.keys(require.cache).some((f) => f.includes('/node_modules/yaml/'));
      process.stdout.write(JSON.stringify({ ids: ruleSet.rules.map((r) => r.meta.id), files: ruleSet.files.length, problems, yamlLoaded }));
    `;
    const child = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { ids: string[]; files: number; problems: unknown[]; yamlLoaded: boolean };
    expect(child.yamlLoaded).toBe(false);
    expect(child.problems).toEqual([]);

    // The same files with one comment added no longer match the source the JSON records: parsed from YAML.
    const dir = copyOfShipped();
    try {
      const sql = join(dir, 'injection/sql.yaml');
      writeFileSync(sql, readFileSync(sql, 'utf8') + '\n# edited after the build\n');
      const compiled = load.loadRules([], DETECTOR_IDS);
      const parsed = load.loadRules([], DETECTOR_IDS, dir);
      expect(parsed.problems).toEqual([]);
      expect(child.ids).toEqual(parsed.ruleSet.rules.map((r) => r.meta.id));
      expect(child.files).toBe(parsed.ruleSet.files.length);
      expect(comparable(compiled.ruleSet.rules, join(REPO, 'rules'))).toEqual(comparable(parsed.ruleSet.rules, dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fall back to the YAML when a shipped file was edited after the build', () => {
    const dir = copyOfShipped();
    try {
      const unchanged = load.loadRules([], DETECTOR_IDS, dir);
      expect(unchanged.ruleSet.rules.find((r) => r.meta.id === 'sql-injection')?.action).toBe('block');
      expect(unchanged.ruleSet.files[0]!.startsWith(dir)).toBe(true);

      const sql = join(dir, 'injection/sql.yaml');
      writeFileSync(sql, readFileSync(sql, 'utf8').replace(/(id: sql-injection[\s\S]*?action: )block/, '$1monitor'));
      const edited = load.loadRules([], DETECTOR_IDS, dir);
      expect(edited.problems).toEqual([]);
      expect(edited.ruleSet.rules.find((r) => r.meta.id === 'sql-injection')?.action).toBe('monitor');

      writeFileSync(sql, 'rules: [ { id: broken');
      const broken = load.loadRules([], DETECTOR_IDS, dir);
      expect(broken.problems.map((p) => p.file)).toContain(sql);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
