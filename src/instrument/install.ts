import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Module from 'node:module';
import type { Hook } from 'require-in-the-middle';
import type { LazyHook, ModuleHook } from '../hook-kit.js';
import { log, errorMessage } from '../log.js';
import { wrap, unwrap, type AnyFunction } from './wrap.js';
import { asAgent } from './loading.js';

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
 * Builtins are patched in place (and the ESM named-export view re-synced) so
 * `import { exec } from 'node:child_process'` is covered; globals at start. Where Node has in-thread module
 * hooks (`module.registerHooks`, 22.15+ and 23.5+), the builtins an app may never load (https pulls in tls and
 * crypto, child_process dgram: about 9 MiB on Node 24) are patched when the app first reaches them — `require`,
 * `import` or `process.getBuiltinModule` — before it gets them (see deferBuiltins); elsewhere all at start.
 * Packages go through one require-in-the-middle Hook for every module the registry names, set up at the first
 * `require` that could load one of them (see watchForPackages): an app that never requires pg or mysql2 never
 * loads it. Each patch runs in try/catch: a failing patch leaves that module untouched and says so once.
 */
export function installHooks(
  hooks: readonly InstallableHook[],
  disabled: readonly InstallableHook[] = [],
  onPackageHooksStart?: () => void,
  options: { readonly eagerBuiltins?: boolean } = {},
): void {
  for (const hook of disabled) statuses.push({ module: hook.module, hook: nameOf(hook), version: undefined, state: 'disabled' });
  const packages = hooks.filter((h) => !h.global && !h.builtin);
  if (packages.length > 0) watchForPackages(packages, onPackageHooksStart);

  const deferred = new Map<string, InstallableHook[]>();
  const registerHooks = options.eagerBuiltins ? undefined : deferringSupported();
  for (const hook of hooks) {
    if (!hook.builtin) continue;
    if (registerHooks && DEFERRABLE_BUILTINS.has(hook.module)) deferred.set(hook.module, [...(deferred.get(hook.module) ?? []), hook]);
    else patchBuiltin(hook.module, [hook]);
  }
  for (const hook of hooks) if (hook.global) patchGlobal(hook);
  if (registerHooks && deferred.size > 0) deferBuiltins(deferred, registerHooks);
  syncEsmView();
}

function patchBuiltin(id: string, hooks: readonly InstallableHook[]): void {
  for (const hook of hooks) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a builtin, patched in place
      const exports = require(id) as unknown;
      const result = applyHook(hook, exports, undefined);
      if (result !== exports) log.error(`${id} is NOT protected: a builtin can only be patched in place`);
    } catch (error) {
      log.warn(`could not load builtin ${id}: ${errorMessage(error)}`);
    }
  }
}

function syncEsmView(): void {
  try {
    Module.syncBuiltinESMExports();
  } catch {
    // very old runtimes: ESM named imports of builtins stay unpatched (documented)
  }
}

/**
 * Builtins whose loading costs memory an app that never uses them should not pay, and which no other builtin
 * the agent patches reaches on the app's behalf. `net` (every outgoing connection, including fetch's, goes through
 * its Socket), `fs` and `module` stay eager. An https server's responses are http's ServerResponse, so https
 * brings http's patches with it. `fs/promises` is also reachable as `fs.promises`: the fs hook patches it at the
 * first read of that property (hooks/fs.ts).
 */
const DEFERRABLE_BUILTINS: ReadonlyMap<string, readonly string[]> = new Map([
  ['http', []],
  ['https', ['http']],
  ['child_process', []],
  ['vm', []],
  ['crypto', []],
  ['fs/promises', []],
]);

type ResolveNext = (specifier: string, context?: unknown) => unknown;
type RegisterHooks = (hooks: { resolve(specifier: string, context: unknown, next: ResolveNext): unknown }) => { deregister(): void };

/**
 * The builtins this process has loaded so far, from `process.moduleLoadList` (undocumented, present on every Node
 * line the agent supports); without it every builtin counts as loaded, so nothing is deferred.
 */
function loadedBuiltins(): { has(id: string): boolean } {
  const list = (process as unknown as { moduleLoadList?: unknown }).moduleLoadList;
  if (!Array.isArray(list)) return { has: () => true };
  const names = new Set<string>();
  for (const entry of list) if (typeof entry === 'string' && entry.startsWith('NativeModule ')) names.add(entry.slice(13));
  return names;
}

/** `module.registerHooks`, where Node has it. */
function deferringSupported(): RegisterHooks | undefined {
  const registerHooks = (Module as unknown as { registerHooks?: RegisterHooks }).registerHooks;
  return typeof registerHooks === 'function' ? registerHooks : undefined;
}

let deferredHandle: { deregister(): void } | undefined;
let getBuiltinWrapped = false;

/** Which deferred builtins are still unpatched (tests). */
const pendingBuiltins = new Set<string>();
export function deferredBuiltins(): readonly string[] {
  return [...pendingBuiltins];
}

/**
 * Patches each deferred builtin at the first resolution of its name — by `require`, `import` (both pass
 * through the in-thread resolve hook) or `process.getBuiltinModule` — before the caller gets the exports, so
 * what the app holds is always the patched object. Node's own internal loads (http loading net) do not pass
 * through here, which is why only builtins that nothing else the agent relies on reaches are deferred. The
 * resolve hook removes itself once every deferred builtin is patched.
 */
function deferBuiltins(deferred: ReadonlyMap<string, readonly InstallableHook[]>, registerHooks: RegisterHooks): void {
  for (const id of deferred.keys()) pendingBuiltins.add(id);
  const ensure = (id: string): void => {
    if (!pendingBuiltins.delete(id)) return;
    for (const dependency of DEFERRABLE_BUILTINS.get(id) ?? []) ensure(dependency);
    patchBuiltin(id, deferred.get(id) ?? []);
    syncEsmView();
    if (pendingBuiltins.size === 0) stopDeferring();
  };
  const onName = (specifier: unknown): void => {
    if (pendingBuiltins.size === 0 || typeof specifier !== 'string') return;
    const id = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
    if (!pendingBuiltins.has(id)) return;
    try {
      // Often inside a request (a handler's first `require('child_process')`): loading the hook's file reads files
      // through the patched fs, and those reads are the agent's own.
      asAgent(ensure, id);
    } catch (error) {
      log.error(`${id} is NOT protected: ${errorMessage(error)}`);
    }
  };
  try {
    deferredHandle = registerHooks({
      resolve(specifier, context, next) {
        onName(specifier);
        return next(specifier, context);
      },
    });
  } catch (error) {
    // No hook: patch them now, as on runtimes without registerHooks.
    log.warn(`module.registerHooks failed (${errorMessage(error)}); builtins are patched at start`);
    for (const id of [...pendingBuiltins]) ensure(id);
    return;
  }
  const holder = process as unknown as { getBuiltinModule?: (id: string) => unknown };
  if (typeof holder.getBuiltinModule === 'function') {
    getBuiltinWrapped = wrap(holder as { getBuiltinModule: AnyFunction }, 'getBuiltinModule', (original) =>
      function getBuiltinModule(this: unknown, id: string) {
        onName(id);
        return original.call(this, id);
      },
    );
  }
  // A builtin already loaded (an app that starts the agent itself, after its own requires) may already be in use:
  // patched now, with what it brings along.
  const loaded = loadedBuiltins();
  for (const id of [...pendingBuiltins]) if (loaded.has(id)) ensure(id);
}

function stopDeferring(): void {
  pendingBuiltins.clear();
  try {
    deferredHandle?.deregister();
  } catch {
    // already gone
  }
  deferredHandle = undefined;
  if (getBuiltinWrapped) unwrap(process as unknown as { getBuiltinModule: AnyFunction }, 'getBuiltinModule');
  getBuiltinWrapped = false;
}

type RequireFn = (this: unknown, id: string) => unknown;
const moduleProto = Module.prototype as unknown as { require: RequireFn };
let trampoline: RequireFn | undefined;
let requireBefore: RequireFn | undefined;

/**
 * require-in-the-middle (and its `debug` dependency) costs a measurable part of the start: it is set up at the
 * first `require` whose specifier names a hooked package — bare (`pg`, `mysql2/promise`) or as a path through
 * `node_modules/<package>` (a resolved or absolute require) — before that module loads, so it sees the package
 * and everything the package requires after. Until then the only cost per `require` is one string test.
 */
function watchForPackages(packages: readonly InstallableHook[], onStart: (() => void) | undefined): void {
  const roots = new Set(packages.flatMap((h) => [h.module, ...(h.entryPoints ?? [])]).map(packageRoot));
  const viaPath = [...roots].map((root) => `node_modules/${root}`);
  const original = moduleProto.require;
  requireBefore = original;
  let started = false;
  const start = () => {
    started = true;
    // Step aside when nobody wrapped require after us; otherwise stay as a pass-through.
    if (moduleProto.require === trampoline) moduleProto.require = original;
    trampoline = undefined;
    requireBefore = undefined;
    startRitm(packages);
    try {
      onStart?.();
    } catch {
      // a report only: never in the way of the app's require
    }
  };
  trampoline = function require(this: unknown, id: string): unknown {
    if (!started && typeof id === 'string' && namesPackage(id, roots, viaPath)) {
      try {
        start();
      } catch (error) {
        log.error(`packages (${[...roots].join(', ')}) are NOT protected: ${errorMessage(error)}`);
      }
      return moduleProto.require.call(this, id);
    }
    return original.call(this, id);
  };
  moduleProto.require = trampoline;
}

/** `pg` for `pg`, `mysql` for `mysql/lib/Connection`, `@scope/name` for `@scope/name/sub`. */
function packageRoot(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function namesPackage(id: string, roots: ReadonlySet<string>, viaPath: readonly string[]): boolean {
  const c = id.charCodeAt(0);
  if (c !== 46 /* . */ && c !== 47 /* / */ && !id.includes(':') && !id.includes('\\')) {
    const slash = id.indexOf('/', c === 64 /* @ */ ? id.indexOf('/') + 1 : 0);
    return roots.has(slash === -1 ? id : id.slice(0, slash));
  }
  if (!id.includes('node_modules')) return false;
  const path = id.replaceAll('\\', '/');
  for (const prefix of viaPath) {
    let at = path.indexOf(prefix);
    while (at !== -1) {
      const next = path.charCodeAt(at + prefix.length);
      if (Number.isNaN(next) || next === 47 /* / */) return true;
      at = path.indexOf(prefix, at + 1);
    }
  }
  return false;
}

/** The require-in-the-middle Hook for every package the registry names (and their subpath entry points). */
function startRitm(packages: readonly InstallableHook[]): void {
  const byModule = new Map<string, InstallableHook[]>();
  for (const hook of packages) byModule.set(hook.module, [...(byModule.get(hook.module) ?? []), hook]);
  const entryPoints = new Set(packages.flatMap((h) => h.entryPoints ?? []));
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded at the first require of a hooked package
  const { Hook: RitmHook } = require('require-in-the-middle') as typeof import('require-in-the-middle');
  ritm = new RitmHook([...byModule.keys(), ...entryPoints], (exports, name, basedir) => {
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
  stopDeferring();
  ritm?.unhook();
  ritm = undefined;
  if (trampoline && moduleProto.require === trampoline && requireBefore) moduleProto.require = requireBefore;
  trampoline = undefined;
  requireBefore = undefined;
}

/** Whether require-in-the-middle was set up (tests: an app that requires no hooked package never loads it). */
export function packageHookStarted(): boolean {
  return ritm !== undefined;
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

/** Only once a versioned package is required (builtins have no version); semver itself only when needed. */
function satisfies(version: string, range: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- kept off the start-up path
  return (require('../version-range.js') as typeof import('../version-range.js')).versionInRange(version, range);
}
