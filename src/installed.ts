import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';

/**
 * Which packages an app has installed, resolved the way the app's own `require` would. Shared by
 * `stepguard doctor` and the agent's start-up line (which names risky packages no hook covers).
 */

export interface UncoveredPackage {
  module: string;
  version: string;
  risk: string;
}

/** Installed packages that run code or fetch resources from their input and that no hook covers. */
export function uncoveredPackages(dir: string, table: Readonly<Record<string, string>>): UncoveredPackage[] {
  const requireFromApp = createRequire(join(dir, 'noop.js'));
  const found: UncoveredPackage[] = [];
  for (const [module, risk] of Object.entries(table)) {
    const version = installedVersion(requireFromApp, module);
    if (version !== undefined) found.push({ module, version, risk });
  }
  return found;
}

/**
 * The package's version; packages whose `exports` hide package.json (`postgres`) are found from their main file.
 * Resolved and read, never `require`d: a require of `pg/package.json` at start would set up the package hooks
 * (src/instrument/install.ts starts them at the first require naming a hooked package) and stay in the cache.
 */
export function installedVersion(requireFromApp: NodeJS.Require, name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(requireFromApp.resolve(`${name}/package.json`), 'utf8')) as { version?: string }).version;
  } catch (error) {
    // Not installed: a second look-up (every node_modules folder up to the root again) would fail the same way.
    // Only a package whose `exports` hide package.json is looked for again, through its main file.
    if ((error as { code?: unknown } | null)?.code === 'MODULE_NOT_FOUND') return undefined;
  }
  try {
    const main = requireFromApp.resolve(name);
    const marker = `${sep}node_modules${sep}${name.split('/').join(sep)}${sep}`;
    const at = main.lastIndexOf(marker);
    if (at < 0) return undefined;
    return (JSON.parse(readFileSync(`${main.slice(0, at + marker.length)}package.json`, 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

