import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Whether an installed package's version is in one of the agent's own ranges (supported versions of the hooks,
 * tested versions of the frameworks, covered versions of the stacks). These are checked when an app loads its
 * first hooked package, and semver with its first range cost about 10 ms of that app's start on Node 24 (loading
 * it builds some hundred patterns, then the range's). So the build (`npm run build`) has semver read every range
 * the registry names into its comparators, written as version-ranges.json beside this file, and a release
 * version (`x.y.z`, what installed packages nearly always are) is compared with those numbers here. Anything else
 * — a prerelease, build metadata, a range the build did not see, no compiled file — goes to semver itself, so
 * the answer is always semver's (`includePrerelease`, as the agent always asked it).
 */

/** A comparator as semver reads it: operator, the bound's numbers, and whether the bound has a prerelease tag. */
export type Comparator = readonly [op: '' | '=' | '<' | '<=' | '>' | '>=', major: number, minor: number, patch: number, pre: boolean];
/** Any of the sets, each all of its comparators (a set without comparators matches every version: `*`). */
export type CompiledRange = readonly (readonly Comparator[])[];

export const COMPILED_RANGES_FILE = join(__dirname, 'version-ranges.json');

/** Strict `major.minor.patch`, no prefix, prerelease or build metadata (anything else is semver's to read). */
const RELEASE = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/;

let compiled: Readonly<Record<string, CompiledRange>> | null | undefined;

function compiledRanges(): Readonly<Record<string, CompiledRange>> | null {
  if (compiled === undefined) {
    try {
      compiled = JSON.parse(readFileSync(COMPILED_RANGES_FILE, 'utf8')) as Record<string, CompiledRange>;
    } catch {
      compiled = null; // running from the sources, or a build without the step: semver answers
    }
  }
  return compiled;
}

export function versionInRange(version: string, range: string): boolean {
  const release = RELEASE.exec(version);
  const sets = release ? compiledRanges()?.[range] : undefined;
  if (release && sets) return releaseInRange(Number(release[1]), Number(release[2]), Number(release[3]), sets);
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- only for what the compiled ranges do not cover
  const satisfies = require('semver/functions/satisfies') as typeof import('semver/functions/satisfies');
  return satisfies(version, range, { includePrerelease: true });
}

/** semver's answer for the release version `major.minor.patch` (no prerelease tag of its own). */
export function releaseInRange(major: number, minor: number, patch: number, sets: CompiledRange): boolean {
  return sets.some((set) => set.every((comparator) => holds(comparator, major, minor, patch)));
}

function holds([op, bMajor, bMinor, bPatch, bPre]: Comparator, major: number, minor: number, patch: number): boolean {
  let order = major - bMajor || minor - bMinor || patch - bPatch;
  // A release sorts after every prerelease of its own numbers: 7.0.0 > 7.0.0-0.
  if (order === 0 && bPre) order = 1;
  switch (op) {
    case '<': return order < 0;
    case '<=': return order <= 0;
    case '>': return order > 0;
    case '>=': return order >= 0;
    default: return order === 0;
  }
}

/** The build step's half (src/instrument/compile-version-ranges.ts): `range` read by semver into comparators. */
export function compileRange(range: string): CompiledRange {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the build step only
  const { Range } = require('semver') as typeof import('semver');
  const parsed = new Range(range, { includePrerelease: true });
  return parsed.set.map((set) =>
    set
      // semver's "any version" comparator (`*`, `x`) has an empty value and no bound.
      .filter((comparator) => comparator.value !== '')
      .map((comparator): Comparator => {
        const bound = comparator.semver;
        return [comparator.operator as Comparator[0], bound.major, bound.minor, bound.patch, bound.prerelease.length > 0];
      }),
  );
}
