import { createRequire } from 'node:module';
import { installedVersion } from './installed.js';
import { versionInRange } from './version-range.js';
import { dirname, join, resolve } from 'node:path';
/** The table itself lives in hooks/stacks.ts and reaches src/ through the registry (the composition roots pass it in). */
export interface StackEntry {
  readonly module: string;
  readonly kind: string;
  readonly covered: string;
  readonly how: string;
}

export interface RecognisedStack extends StackEntry {
  readonly version: string;
  /** The installed version is one whose context propagation is covered. */
  readonly isCovered: boolean;
}

/** The ORMs, promise libraries and pools installed where `dir`'s code resolves packages from. */
export function recognisedStacks(dir: string, entries: readonly StackEntry[]): RecognisedStack[] {
  const requireFrom = createRequire(join(resolve(dir), 'noop.js'));
  const out: RecognisedStack[] = [];
  for (const entry of entries) {
    const version = installedVersion(requireFrom, entry.module);
    if (version !== undefined) out.push({ ...entry, version, isCovered: versionInRange(version, entry.covered) });
  }
  return out;
}

/** One line for the start-up message: `sequelize@6.37.7 covered, bluebird@3.7.2 covered`. */
export function stacksSummary(stacks: readonly RecognisedStack[]): string | undefined {
  if (stacks.length === 0) return undefined;
  return stacks.map((s) => `${s.module}@${s.version} ${s.isCovered ? 'propagation covered' : `propagation NOT verified (covered: ${s.covered})`}`).join(', ');
}

/** Where the app resolves packages from at start: its entry script's folder, else the working directory. */
export function appDir(argv: readonly string[] = process.argv): string {
  const entry = argv[1];
  return entry && !entry.startsWith('-') ? dirname(resolve(entry)) : process.cwd();
}
