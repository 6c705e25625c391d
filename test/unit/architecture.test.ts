/**
 * The dependency rules of DESIGN.md §2, checked on the real import graph of src/ and hooks/:
 *   - a hook file imports nothing of ours but the hook kit (src/hook-kit.ts); Node builtins and npm packages
 *     are its own business. Helpers two hooks share belong in the kit, not in a sibling hook file;
 *   - the registry (hooks/index.ts) is the only file that lists the hook files;
 *   - src/ reaches hooks/ only through the registry, and only from the composition roots;
 *   - nothing Node loads imports itself back (no cycles).
 * A violation names the file, the line and the import, and says where the code should go instead.
 */
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/app.js';
import { cycles, importGraph, importsOf, type ImportEdge } from '../helpers/import-graph.js';

const HOOK_KIT = 'src/hook-kit.ts';
const REGISTRY = 'hooks/index.ts';
/**
 * The files that may put hooks and the core together: the agent (start), the installer (loads what the
 * registry names), `stepguard doctor` (reports, per registry entry, whether the app's copy is supported) and the
 * build step that compiles the registry's version ranges (src/version-range.ts).
 */
const COMPOSITION_ROOTS = new Set(['src/agent.ts', 'src/instrument/install.ts', 'src/cli/doctor.ts', 'src/instrument/compile-version-ranges.ts']);

const { files, edges } = importGraph(REPO, ['src', 'hooks']);
const where = (e: ImportEdge) => `${e.from}:${e.line} imports '${e.specifier}'`;
/** Tables the registry reads (supported versions): data, not hooks — they import nothing of ours. */
const REGISTRY_DATA = new Set(['hooks/stacks.ts', 'hooks/versions.ts', 'hooks/uncovered.ts']);
const hookFiles = files.filter((f) => f.startsWith('hooks/') && f !== REGISTRY && !REGISTRY_DATA.has(f));

describe('the import scanner', () => {
  it('sees every kind of import, and tells type-only and dynamic ones apart', () => {
    const text = [
      "import a from 'node:fs';",
      "import type { B } from './b.js';",
      "import { type C, type D } from './c.js';",
      "import { type E, f } from './e.js';",
      "import './side-effect.js';",
      "export { g } from './g.js';",
      "export type { H } from './h.js';",
      "import i = require('./i.js');",
      "const j = require('./j.js') as typeof import('./k.js');",
      "const l = await import('semver');",
      'const m = require(someVariable);',
    ].join('\n');
    const seen = importsOf(REPO, 'src/fixture.ts', text).map((e) => `${e.specifier} ${e.typeOnly ? 'type' : 'value'} ${e.dynamic ? 'dynamic' : 'static'} ${e.target}`);
    expect(seen).toEqual([
      'node:fs value static builtin',
      './b.js type static other',
      './c.js type static other',
      './e.js value static other',
      './side-effect.js value static other',
      './g.js value static other',
      './h.js type static other',
      './i.js value static other',
      './j.js value dynamic other',
      './k.js type static other',
      'semver value dynamic package',
    ]);
  });

  it('resolves NodeNext specifiers to the source files of src/ and hooks/', () => {
    expect(files).toContain(HOOK_KIT);
    expect(files).toContain(REGISTRY);
    expect(hookFiles.length).toBeGreaterThanOrEqual(10);
    // Every hook file uses the kit, and the agent loads the registry: the rules below are about real edges.
    for (const hook of hookFiles) expect(edges.some((e) => e.from === hook && e.to === HOOK_KIT), hook).toBe(true);
    expect(edges).toContainEqual(expect.objectContaining({ from: 'src/agent.ts', to: REGISTRY, target: 'source' }));
  });

  it('finds a cycle when there is one, and only the files on it', () => {
    const edge = (from: string, to: string) => ({ from, to }) as ImportEdge;
    const found = cycles(['a', 'b', 'c', 'd'], [edge('a', 'b'), edge('b', 'c'), edge('c', 'a'), edge('c', 'd')]);
    expect(found).toEqual([['a', 'b', 'c']]);
    expect(cycles(['a'], [edge('a', 'a')])).toEqual([['a']]);
    expect(cycles(['a', 'b'], [edge('a', 'b')])).toEqual([]);
  });
});

describe('dependency rules', () => {
  it('hook files import nothing of ours but the hook kit (shared helpers go into src/hook-kit.ts)', () => {
    const violations = edges
      .filter((e) => hookFiles.includes(e.from))
      .filter((e) => e.target === 'other' || (e.target === 'source' && e.to !== HOOK_KIT))
      .map(where);
    expect(violations).toEqual([]);
  });

  it('the registry lists hook files and knows the kit only for its types', () => {
    const violations = edges
      .filter((e) => e.from === REGISTRY && e.target !== 'builtin' && e.target !== 'package')
      .filter((e) => !(e.to && (hookFiles.includes(e.to) || REGISTRY_DATA.has(e.to))) && !(e.to === HOOK_KIT && e.typeOnly))
      .map(where);
    expect(violations).toEqual([]);
  });

  it('src/ reaches hooks/ only through the registry, and only from a composition root', () => {
    const violations = edges
      .filter((e) => e.from.startsWith('src/') && e.to?.startsWith('hooks/'))
      .filter((e) => e.to !== REGISTRY || !COMPOSITION_ROOTS.has(e.from))
      .map(where);
    expect(violations).toEqual([]);
  });

  /**
   * Type-only imports are left out: tsc erases them, so they never take part in load order, and a type
   * shared both ways (an interface and the class implementing it) is not a layering problem. Dynamic
   * `import()`/`require()` count: they load the file just the same, later.
   */
  it('no import cycles among the files Node loads', () => {
    const found = cycles(files, edges.filter((e) => !e.typeOnly)).map((component) => `files importing each other: ${component.join(', ')}`);
    expect(found).toEqual([]);
  });
});
