/**
 * How the agent's start-up line and `stepguard doctor` find an installed package's version: from its
 * package.json, through its main file when the package's `exports` hide package.json, and nothing (after one
 * look-up, not two) when it is not installed.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installedVersion } from '../../src/installed.js';

function appWith(packages: Record<string, Record<string, unknown>>): NodeJS.Require {
  const dir = mkdtempSync(join(tmpdir(), 'sg-installed-'));
  for (const [name, manifest] of Object.entries(packages)) {
    const pkg = join(dir, 'node_modules', ...name.split('/'));
    mkdirSync(join(pkg, 'lib'), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name, main: 'lib/index.js', ...manifest }));
    writeFileSync(join(pkg, 'lib', 'index.js'), 'module.exports = {};');
  }
  return createRequire(join(dir, 'noop.js'));
}

describe('installedVersion', () => {
  it('reads the version from package.json', () => {
    expect(installedVersion(appWith({ knex: { version: '3.3.0' } }), 'knex')).toBe('3.3.0');
  });

  it('finds package.json beside the main file when `exports` hide it', () => {
    const requireFromApp = appWith({ postgres: { version: '3.4.5', exports: { '.': './lib/index.js' } } });
    expect(() => requireFromApp.resolve('postgres/package.json')).toThrow(expect.objectContaining({ code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' }));
    expect(installedVersion(requireFromApp, 'postgres')).toBe('3.4.5');
    expect(installedVersion(appWith({ '@scope/hidden': { version: '1.2.3', exports: { '.': './lib/index.js' } } }), '@scope/hidden')).toBe('1.2.3');
  });

  it('is undefined for a package that is not installed, after one look-up', () => {
    const requireFromApp = appWith({});
    const resolve = requireFromApp.resolve;
    const asked: string[] = [];
    const counting = Object.assign((id: string) => requireFromApp(id), requireFromApp, {
      resolve: Object.assign((id: string, options?: { paths?: string[] }) => {
        asked.push(id);
        return resolve(id, options);
      }, resolve),
    }) as NodeJS.Require;
    expect(installedVersion(counting, 'sequelize')).toBeUndefined();
    expect(asked).toEqual(['sequelize/package.json']);
  });

  it('is undefined for a package.json that is not JSON', () => {
    const requireFromApp = appWith({ tarn: { version: '3.0.0' } });
    writeFileSync(requireFromApp.resolve('tarn/package.json'), '{ not json');
    expect(installedVersion(requireFromApp, 'tarn')).toBeUndefined();
  });
});
