/**
 * src/instrument/install.ts, through what the app and `stepguard doctor` see: which modules get patched when
 * the app requires them, what an unsupported copy or a failing patch does (nothing to the app: the module
 * works as before, one clear line says it is unprotected), builtins and globals patched at start, and a
 * subpath entry point patching its package. The hooks here are fakes defined through the public ModuleHook
 * shape against throwaway packages written to a temp dir, so nothing depends on a real library.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModuleHook } from '../../../src/hook-kit.js';
import { hookStatuses, installHooks, uninstallHooks } from '../../../src/instrument/install.js';

let app: string;
/** `require` as the app (a file in the temp dir) would call it. */
let appRequire: NodeJS.Require;

function writePackage(name: string, version: string, files: Record<string, string>): string {
  const dir = join(app, 'node_modules', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version, main: 'index.js' }));
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

const LIBRARY = "module.exports = { query(sql) { return 'ran ' + sql; } };\n";

beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'sg-install-'));
  writeFileSync(join(app, 'app.js'), '');
  appRequire = createRequire(join(app, 'app.js'));
  writePackage('sg-fixture-ok', '1.2.3', { 'index.js': LIBRARY });
  writePackage('sg-fixture-old', '0.9.0', { 'index.js': LIBRARY });
  writePackage('sg-fixture-throws', '1.0.0', { 'index.js': LIBRARY });
  writePackage('sg-fixture-replaced', '1.0.0', { 'index.js': LIBRARY });
  writePackage('sg-fixture-entry', '2.0.0', { 'index.js': LIBRARY, 'sub.js': "module.exports = { sub: true };\n" });
});

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

/** What the agent wrote to stderr since `capture()`. */
let lines: string[] = [];
const written = (): string[] => lines;
const statusOf = (module: string) => hookStatuses().filter((s) => s.module === module);

afterEach(() => {
  uninstallHooks();
  vi.restoreAllMocks();
});

function capture(): void {
  lines = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
}

/** A fake hook that marks `query` as patched and records its calls. */
function markingHook(module: string, extra: Partial<ModuleHook> = {}): ModuleHook & { calls: Array<{ version: string | undefined; basedir: string | undefined }> } {
  const calls: Array<{ version: string | undefined; basedir: string | undefined }> = [];
  return {
    module,
    versions: '>=1.0.0 <3',
    calls,
    patch(exports, info) {
      calls.push({ version: info.version, basedir: info.basedir });
      const lib = exports as { query: (sql: string) => string };
      const original = lib.query;
      lib.query = (sql: string) => `patched ${original(sql)}`;
    },
    ...extra,
  };
}

describe('packages: patched when the app requires them', () => {
  it('a supported version is patched once, told its version and directory, and listed as patched', () => {
    capture();
    const hook = markingHook('sg-fixture-ok');
    installHooks([hook]);
    expect(hook.calls).toEqual([]); // nothing happens before the app asks for the module
    const lib = appRequire('sg-fixture-ok') as { query(sql: string): string };
    expect(lib.query('x')).toBe('patched ran x');
    appRequire('sg-fixture-ok');
    expect(hook.calls).toEqual([{ version: '1.2.3', basedir: join(app, 'node_modules', 'sg-fixture-ok') }]);
    expect(statusOf('sg-fixture-ok')).toEqual([expect.objectContaining({ version: '1.2.3', state: 'patched' })]);
  });

  it('an out-of-range version is left unpatched, with one line naming the copy, the supported range and the fix', () => {
    capture();
    const hook = markingHook('sg-fixture-old');
    installHooks([hook]);
    const lib = appRequire('sg-fixture-old') as { query(sql: string): string };
    expect(lib.query('x')).toBe('ran x');
    expect(hook.calls).toEqual([]);
    const lines = written().filter((line) => line.includes('sg-fixture-old'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('sg-fixture-old@0.9.0 is NOT protected: stepguard supports sg-fixture-old >=1.0.0 <3');
    expect(lines[0]).toContain('upgrade it or pin a supported version');
    expect(statusOf('sg-fixture-old')).toEqual([expect.objectContaining({ version: '0.9.0', state: 'unsupported', detail: '>=1.0.0 <3' })]);
  });

  it('a patch that throws: require returns the module untouched and does not throw; one line says so', () => {
    capture();
    installHooks([
      markingHook('sg-fixture-throws', {
        patch() {
          throw new Error('Client.prototype.query not found');
        },
      }),
    ]);
    let lib: { query(sql: string): string } | undefined;
    expect(() => (lib = appRequire('sg-fixture-throws') as { query(sql: string): string })).not.toThrow();
    expect(lib!.query('x')).toBe('ran x');
    const lines = written().filter((line) => line.includes('sg-fixture-throws'));
    expect(lines).toEqual([expect.stringContaining('sg-fixture-throws@1.0.0 is NOT protected: patching failed (Client.prototype.query not found)')]);
    expect(statusOf('sg-fixture-throws')).toEqual([expect.objectContaining({ state: 'failed', detail: 'Client.prototype.query not found' })]);
  });

  it('a patch may return a replacement for the exports: the app gets the replacement', () => {
    capture();
    const replacement = { query: (sql: string) => `replaced ${sql}` };
    installHooks([markingHook('sg-fixture-replaced', { patch: () => replacement })]);
    expect(appRequire('sg-fixture-replaced')).toBe(replacement);
  });

  it('a subpath entry point loads the package main through the hook, so the shared classes are patched', () => {
    capture();
    const hook = markingHook('sg-fixture-entry', { entryPoints: ['sg-fixture-entry/sub'] });
    installHooks([hook]);
    expect(appRequire('sg-fixture-entry/sub')).toEqual({ sub: true });
    expect(hook.calls).toEqual([{ version: '2.0.0', basedir: join(app, 'node_modules', 'sg-fixture-entry') }]);
    expect((appRequire('sg-fixture-entry') as { query(sql: string): string }).query('x')).toBe('patched ran x');
  });
});

describe('builtins and globals: patched at start', () => {
  it('a builtin is patched during installHooks, before the app requires it, and ESM named imports see the patch', async () => {
    capture();
    const dgram = appRequire('node:dgram') as typeof import('node:dgram');
    const original = dgram.createSocket;
    let patchedFn: unknown;
    try {
      installHooks([
        {
          module: 'dgram',
          builtin: true,
          patch(exports) {
            const mod = exports as { createSocket: unknown };
            patchedFn = mod.createSocket = function createSocket(this: unknown, ...args: unknown[]) {
              return (original as (...a: unknown[]) => unknown).apply(this, args);
            };
          },
        },
      ]);
      expect(patchedFn).toBeTypeOf('function');
      expect(dgram.createSocket).toBe(patchedFn);
      expect(appRequire('dgram').createSocket).toBe(patchedFn);
      const esm = (await import('node:dgram')) as { createSocket: unknown };
      expect(esm.createSocket).toBe(patchedFn);
    } finally {
      dgram.createSocket = original;
    }
  });

  it('a global hook runs once against globalThis; one that throws is reported and does not throw', () => {
    capture();
    const seen: unknown[] = [];
    expect(() =>
      installHooks([
        { module: 'sgFixtureGlobal', global: true, patch: (target) => void seen.push(target) },
        {
          module: 'sgFixtureBrokenGlobal',
          global: true,
          patch() {
            throw new Error('not a data property');
          },
        },
      ]),
    ).not.toThrow();
    expect(seen).toEqual([globalThis]);
    expect(statusOf('sgFixtureGlobal')).toEqual([expect.objectContaining({ state: 'patched' })]);
    expect(statusOf('sgFixtureBrokenGlobal')).toEqual([expect.objectContaining({ state: 'failed', detail: 'not a data property' })]);
    expect(written().filter((line) => line.includes('sgFixtureBrokenGlobal is NOT protected'))).toHaveLength(1);
  });
});
