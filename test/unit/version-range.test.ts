import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import satisfies from 'semver/functions/satisfies';
import { describe, expect, it } from 'vitest';
import { FRAMEWORKS, HOOKS, STACKS } from '../../hooks/index.js';
import { compileRange, releaseInRange, versionInRange } from '../../src/version-range.js';
import { REPO } from '../helpers/app.js';

const registryRanges = [...new Set([...HOOKS.flatMap((h) => (h.versions ? [h.versions] : [])), ...FRAMEWORKS.map((f) => f.tested), ...STACKS.map((s) => s.covered)])];
/** Forms the registry does not use today but a range could: the compiled check must agree on them too. */
const otherRanges = ['*', '^0.2.3', '~1.2', '1.x || >=2.5.0 <3', '>1.0.0 <=2.0.0', '=1.2.3', '^1.2.3-beta.2', '<1.0.0'];

/** Versions around every bound a range names (each number one up and one down) and a few fixed ones. */
function versionsAround(range: string): string[] {
  const out = new Set(['0.0.0', '0.0.1', '1.0.0', '99.99.99']);
  for (const set of compileRange(range)) {
    for (const [, major, minor, patch] of set) {
      for (const [a, b, c] of [[major, minor, patch], [major + 1, minor, patch], [major, minor + 1, patch], [major, minor, patch + 1], [major - 1, minor, patch], [major, minor - 1, patch], [major, minor, patch - 1], [major, 0, 0], [major - 1, 99, 99]]) {
        if (a! >= 0 && b! >= 0 && c! >= 0) out.add(`${a}.${b}.${c}`);
      }
    }
  }
  return [...out];
}

describe('version ranges compiled at build time', () => {
  it('the registry names ranges to compile', () => {
    expect(registryRanges.length).toBeGreaterThan(10);
  });

  for (const range of [...registryRanges, ...otherRanges]) {
    it(`a release version is in ${range} exactly when semver says so`, () => {
      const sets = compileRange(range);
      for (const version of versionsAround(range)) {
        const [major, minor, patch] = version.split('.').map(Number) as [number, number, number];
        expect([version, releaseInRange(major, minor, patch, sets)]).toEqual([version, satisfies(version, range, { includePrerelease: true })]);
      }
    });
  }

  it('anything but a plain release version is semver’s to read', () => {
    for (const version of ['8.0.3-beta.1', '9.0.0-0', 'v8.1.0', '8.1.0+build.5', '08.1.0', 'not a version', '']) {
      expect([version, versionInRange(version, '>=8.0.3 <9')]).toEqual([version, satisfies(version, '>=8.0.3 <9', { includePrerelease: true })]);
    }
  });

  it('the built agent answers from version-ranges.json without loading semver', () => {
    const script = [
      `const { versionInRange } = require(${JSON.stringify(join(REPO, 'dist/src/version-range.js'))});`,
      "const answers = [versionInRange('8.11.3', '>=8.0.3 <9'), versionInRange('9.0.0', '>=8.0.3 <9'), versionInRange('6.37.8', '^4.44.0 || ^6.0.0')];",
      "console.log(JSON.stringify({ answers, semver: Object.keys(require.cache).some((file) => file.includes('/node_modules/semver/')) }));",
    ].join('\n');
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { answers: boolean[]; semver: boolean };
    expect(out).toEqual({ answers: [true, false, true], semver: false });
  });
});
