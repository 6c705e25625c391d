/**
 * Build step (`npm run build`): every version range the registry names (the hooks' supported versions, the
 * frameworks' tested ones, the stacks' covered ones) read by semver into comparators, written as
 * version-ranges.json beside src/version-range.js, so that an app's first hooked package is checked without
 * loading semver (src/version-range.ts). A range semver cannot read fails the build, naming it.
 */
import { writeFileSync } from 'node:fs';
import { FRAMEWORKS, HOOKS, STACKS } from '../../hooks/index.js';
import { COMPILED_RANGES_FILE, compileRange, type CompiledRange } from '../version-range.js';

const ranges = new Set<string>();
for (const hook of HOOKS) if (hook.versions) ranges.add(hook.versions);
for (const framework of FRAMEWORKS) if (framework.tested !== 'none') ranges.add(framework.tested);
for (const stack of STACKS) ranges.add(stack.covered);

const out: Record<string, CompiledRange> = {};
for (const range of [...ranges].sort()) {
  try {
    out[range] = compileRange(range);
  } catch (error) {
    process.stderr.write(`version range '${range}' (hooks/versions.ts, hooks/stacks.ts) cannot be read by semver: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
writeFileSync(COMPILED_RANGES_FILE, JSON.stringify(out) + '\n');
process.stdout.write(`compiled ${Object.keys(out).length} version ranges into ${COMPILED_RANGES_FILE}\n`);
