/**
 * hooks/versions.ts is the one table of supported versions: every pinned copy the version tests run
 * against (test/versions/<package>-<version>) is listed there, is what its directory says, and falls
 * inside the supported range, except the one copy per package kept below it to prove it is refused.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { SUPPORTED_VERSIONS, pinnedPackageDir, type VersionedPackage } from '../../../hooks/versions.js';
import { HOOKS } from '../../../hooks/index.js';
import { REPO } from '../../helpers/app.js';

const table = SUPPORTED_VERSIONS as Record<VersionedPackage, { range: string; pinned: readonly string[] }>;

describe('supported versions table', () => {
  it('lists exactly the pinned copies in test/versions, each at the version its directory names', () => {
    const dirs = readdirSync(join(REPO, 'test/versions')).sort();
    const listed = Object.entries(table)
      .flatMap(([pkg, v]) => v.pinned.map((version) => `${pkg}-${version}`))
      .sort();
    expect(listed).toEqual(dirs);
    for (const dir of dirs) {
      const [, pkg, version] = /^(.+)-(\d+\.\d+\.\d+)$/.exec(dir)!;
      const manifest = JSON.parse(readFileSync(join(REPO, 'test/versions', dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      expect(manifest.dependencies[pkg!]).toBe(version);
      expect(pinnedPackageDir(REPO, pkg as VersionedPackage, version!)).toBe(join(REPO, 'test/versions', dir, 'node_modules', pkg!));
    }
  });

  it('puts every pinned copy but one below-range copy inside the range, and the registry uses the same ranges', () => {
    for (const [pkg, { range, pinned }] of Object.entries(table)) {
      const outside = pinned.filter((v) => !semver.satisfies(v, range));
      expect(outside.length, `${pkg}: ${outside.join(', ')} outside ${range}`).toBeLessThanOrEqual(1);
      for (const v of outside) expect(semver.ltr(v, range)).toBe(true);
    }
    const versioned = HOOKS.filter((h) => h.versions !== undefined);
    expect(versioned.length).toBeGreaterThan(0);
    for (const line of versioned) {
      const pkg = line.module.split('/')[0] as VersionedPackage;
      expect(line.versions).toBe(table[pkg].range);
    }
  });
});
