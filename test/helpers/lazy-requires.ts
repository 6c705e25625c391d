/**
 * Vitest setup: the agent loads some of its own modules on first use with `require('./x.js')` (detectors,
 * inspect, the request context, step-up), which in the built package finds the compiled sibling. Tests run the
 * TypeScript sources, where no `x.js` exists, so each such `require` is answered with the module Vitest itself
 * loaded from `x.ts` — the same instance the test imports (one BlockedError class, one log state).
 */
import Module from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const LAZY = /require\('(\.{1,2}\/[^']+)\.js'\)/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/**
 * Modules some source file requires lazily. Left out: the start-up path (register, agent, step-up setup), which
 * tests run from dist in a child process, and hooks/ (the same).
 */
const targets = new Set<string>();
for (const file of sourceFiles(join(ROOT, 'src'))) {
  if (/\/src\/(register|agent|stepup\/setup|stepup\/store-factory)\.ts$/.test(file)) continue;
  for (const m of readFileSync(file, 'utf8').matchAll(LAZY)) {
    const base = resolve(dirname(file), m[1]!);
    if (existsSync(`${base}.ts`) && !base.startsWith(join(ROOT, 'hooks'))) targets.add(base);
  }
}

const loaded = new Map<string, unknown>();
for (const base of targets) loaded.set(`${base}.js`, await import(`${base}.ts`));

type Load = (request: string, parent: { filename?: string } | undefined, isMain: boolean) => unknown;
const moduleWithLoad = Module as unknown as { _load: Load };
const original = moduleWithLoad._load;
if (!(original as { stepguardTests?: boolean }).stepguardTests) {
  const load: Load = function (this: unknown, request, parent, isMain) {
    if (request.startsWith('.') && parent?.filename?.endsWith('.ts')) {
      const hit = loaded.get(resolve(dirname(parent.filename), request));
      if (hit) return hit;
    }
    return original.call(this, request, parent, isMain);
  };
  (load as { stepguardTests?: boolean }).stepguardTests = true;
  moduleWithLoad._load = load;
}
