import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Module from 'node:module';
import { Hook } from 'require-in-the-middle';
import type { LazyHook, ModuleHook } from '../hook-kit.js';
import { log, errorMessage } from '../log.js';

/** What happened to each module the agent knows, for start-up messages and `stepguard doctor`. */
export interface HookStatus {
  readonly module: string;
  /** The registry name (STEPGUARD_DISABLED_HOOKS, doctor), when the hook came from the registry. */
  readonly hook?: string;
  readonly version: string | undefined;
  readonly state: 'patched' | 'unsupported' | 'failed' | 'disabled';
  readonly detail?: string;
  readonly basedir?: string;
}

const statuses: HookStatus[] = [];
export function hookStatuses(): readonly HookStatus[] {
  return statuses;
}

let ritm: Hook | undefined;

/** Either a hook with its code at hand or a registry line that loads it on first need. */
export type InstallableHook = ModuleHook | LazyHook;

const loadedHooks = new WeakMap<LazyHook, ModuleHook>();

/** The hook's code; a registry line's file is required here, once. */
function codeOf(hook: InstallableHook): ModuleHook {
  if ('patch' in hook) return hook;
  let code = loadedHooks.get(hook);
  if (!code) {
    code = hook.load();
    loadedHooks.set(hook, code);
  }
  return code;
}

const nameOf = (hook: InstallableHook): string | undefined => ('name' in hook && typeof hook.name === 'string' ? hook.name : undefined);

/**
 * One require-in-the-middle Hook for every module the registry names. Builtins are patched eagerly
 * (and the ESM named-export view re-synced) so `import { exec } from 'node:child_process'` is covered.
 * Each patch runs in try/catch: a failing patch leaves that module untouched and says so once.
 */
export function installHooks(hooks: readonly InstallableHook[], disabled: readonly InstallableHook[] = []): void {
  for (const hook of disabled) statuses.push({ module: hook.module, hook: nameOf(hook), version: undefined, state: 'disabled' });
  const byModule = new Map<string, InstallableHook[]>();
  for (const hook of hooks) if (!hook.global) byModule.set(hook.module, [...(byModule.get(hook.module) ?? []), hook]);

  const entryPoints = new Set(hooks.flatMap((h) => h.entryPoints ?? []));

  ritm = new Hook([...byModule.keys(), ...entryPoints], (exports, name, basedir) => {
    if (entryPoints.has(name)) {
      loadMainOf(name, basedir);
      return exports;
    }
    const forName = byModule.get(name);
    if (!forName) return exports;
    let result: unknown = exports;
    for (const hook of forName) {
      try {
        result = applyHook(hook, result, basedir);
      } catch (error) {
        // Never let the agent throw out of the app's require().
        log.error(`${name} is NOT protected: ${errorMessage(error)}`);
      }
    }
    return result as typeof exports;
  });

  for (const hook of hooks) {
    if (!hook.builtin) continue;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- eager load of a builtin through the hook above
      require(hook.module);
    } catch (error) {
      log.warn(`could not load builtin ${hook.module}: ${errorMessage(error)}`);
    }
  }
  for (const hook of hooks) if (hook.global) patchGlobal(hook);
  try {
    Module.syncBuiltinESMExports();
  } catch {
    // very old runtimes: ESM named imports of builtins stay unpatched (documented)
  }
}

/**
 * A subpath entry (`mysql2/promise`) can load a package's classes without its main module, so the hook on
 * the main never fires: load the main too (through the hook), which patches the shared classes.
 */
export function loadMainOf(entryPoint: string, basedir: string | undefined): void {
  if (!basedir) return;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's own main, through require-in-the-middle
    require(basedir);
  } catch (error) {
    log.error(`${entryPoint} is NOT protected: its package could not be loaded for patching (${errorMessage(error)})`);
  }
}

/** Globals exist before any require: patched once, at start. */
function patchGlobal(hook: InstallableHook): void {
  try {
    codeOf(hook).patch(globalThis, { version: undefined, basedir: undefined });
    statuses.push({ module: hook.module, hook: nameOf(hook), version: undefined, state: 'patched' });
  } catch (error) {
    statuses.push({ module: hook.module, hook: nameOf(hook), version: undefined, state: 'failed', detail: errorMessage(error) });
    log.error(`${hook.module} is NOT protected: patching failed (${errorMessage(error)}); it works as before`);
  }
}

export function uninstallHooks(): void {
  ritm?.unhook();
  ritm = undefined;
}

const PATCHED = Symbol.for('stepguard.patched-exports');

export function applyHook(hook: InstallableHook, exports: unknown, basedir: string | undefined): unknown {
  const version = basedir ? packageVersion(basedir) : undefined;
  const label = version ? `${hook.module}@${version}` : hook.module;
  if ((exports && typeof exports === 'object') || typeof exports === 'function') {
    const marks = marksOf(exports as object);
    if (marks?.has(hook)) return exports;
    marks?.add(hook);
  }
  if (hook.versions && version && !satisfies(version, hook.versions)) {
    statuses.push({ module: hook.module, hook: nameOf(hook), version, state: 'unsupported', detail: hook.versions, basedir });
    log.error(
      `${label} is NOT protected: stepguard supports ${hook.module} ${hook.versions}. ` +
        `Queries/commands through this copy (${basedir}) are not inspected; upgrade it or pin a supported version.`,
    );
    return exports;
  }
  try {
    const result = codeOf(hook).patch(exports, { version, basedir });
    statuses.push({ module: hook.module, hook: nameOf(hook), version, state: 'patched', basedir });
    return result ?? exports;
  } catch (error) {
    statuses.push({ module: hook.module, hook: nameOf(hook), version, state: 'failed', detail: errorMessage(error), basedir });
    log.error(`${label} is NOT protected: patching failed (${errorMessage(error)}); the module works as before`);
    return exports;
  }
}

/** Which hooks already patched this exports object (the same object can be required under two names). */
function marksOf(target: object): Set<InstallableHook> | undefined {
  const existing = (target as Record<symbol, Set<InstallableHook> | undefined>)[PATCHED];
  if (existing) return existing;
  const marks = new Set<InstallableHook>();
  try {
    Object.defineProperty(target, PATCHED, { value: marks, enumerable: false });
    return marks;
  } catch {
    return undefined; // frozen exports: patching will fail and say so
  }
}

const versionCache = new Map<string, string | undefined>();
function packageVersion(basedir: string): string | undefined {
  if (versionCache.has(basedir)) return versionCache.get(basedir);
  let version: string | undefined;
  try {
    version = (JSON.parse(readFileSync(join(basedir, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    version = undefined;
  }
  versionCache.set(basedir, version);
  return version;
}

/** semver is loaded only once a versioned package is required (builtins have no version). */
function satisfies(version: string, range: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- kept off the start-up path
  const check = require('semver/functions/satisfies') as typeof import('semver/functions/satisfies');
  return check(version, range, { includePrerelease: true });
}
