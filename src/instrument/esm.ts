import { readFileSync, statSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { log, errorMessage } from '../log.js';
import { applyHook, loadMainOf, type InstallableHook } from './install.js';

/**
 * ES-module apps. Builtins are already covered for ESM (patched eagerly, named exports re-synced), but a
 * package imported with `import` never passes through `require`, so require-in-the-middle cannot see it.
 * When started with `--import stepguard/register`, an import-in-the-middle loader hook is registered for
 * exactly the packages the hooks name, and the same patch functions run on what they export.
 */

/** Set by the `--import` entry (src/register-esm.mts) before the agent starts, without loading this module. */
const ESM_ENTRY = Symbol.for('stepguard.esm-entry');
type Holder = { [ESM_ENTRY]?: boolean };

export function startedFromEsmEntry(): boolean {
  return (globalThis as Holder)[ESM_ENTRY] === true;
}

let acknowledged: Promise<void> = Promise.resolve();

/** Resolves once the loader thread knows every hooked package (the `--import` entry awaits it). */
export function esmHooksReady(): Promise<void> {
  return acknowledged;
}

export function installEsmHooks(hooks: readonly InstallableHook[]): void {
  const packages = hooks.filter((h) => !h.builtin && !h.global);
  if (packages.length === 0) return;
  const register = (Module as unknown as { register?: (specifier: string, parentURL: string, options?: unknown) => void }).register;
  if (typeof register !== 'function') {
    log.error('this Node.js has no module.register(): packages imported with `import` are NOT protected (builtins are)');
    return;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only for ES-module apps
    const iitm = require('import-in-the-middle') as typeof import('import-in-the-middle');
    const { registerOptions, waitForAllMessagesAcknowledged } = iitm.createAddHookMessageChannel();
    register('import-in-the-middle/hook.mjs', pathToFileURL(__filename).href, registerOptions);
    const byName = new Map<string, InstallableHook[]>();
    for (const hook of packages) byName.set(hook.module, [...(byName.get(hook.module) ?? []), hook]);
    const entryPoints = new Set(packages.flatMap((h) => h.entryPoints ?? []));
    new iitm.Hook([...byName.keys(), ...entryPoints], (namespace, name, basedir) => {
      if (entryPoints.has(name)) {
        loadMainOf(name, basedir ?? undefined);
        return undefined;
      }
      // A CommonJS package (or an ESM wrapper around one, like pg's) exposes module.exports as `default`:
      // patching it is patching what `require` returns, and the marks on it keep us from patching twice.
      const exported = namespace as Record<string, unknown>;
      const target = exported.default && (typeof exported.default === 'object' || typeof exported.default === 'function') ? exported.default : exported;
      for (const hook of byName.get(name) ?? []) {
        try {
          applyHook(hook, target, basedir ?? undefined);
        } catch (error) {
          log.error(`${name} is NOT protected: ${errorMessage(error)}`);
        }
      }
      return undefined;
    });
    acknowledged = waitForAllMessagesAcknowledged().catch((error: unknown) => {
      log.error(`the ES-module loader hook did not confirm (${errorMessage(error)}); imported packages may be unprotected`);
    });
  } catch (error) {
    log.error(`could not register the ES-module loader hook (${errorMessage(error)}): packages imported with \`import\` are NOT protected`);
  }
}

/**
 * Says at start-up when the app is one the agent cannot fully protect, instead of leaving it silently open:
 * an ES-module app started with `--require` only, or a bundled app whose dependencies are inlined.
 */
export function announceCoverage(mainFile: string | undefined): void {
  if (!mainFile) return;
  let text: string;
  try {
    const size = statSync(mainFile).size;
    text = readFileSync(mainFile, { encoding: 'utf8' }).slice(0, 256 * 1024);
    if (!startedFromEsmEntry() && isEsm(mainFile, text)) {
      log.error(
        `${mainFile} is an ES module: packages it imports (pg, mysql2, …) are NOT protected with --require. ` +
          'Start it with: node --import stepguard/register ' + mainFile,
      );
    }
    const bundler = BUNDLE_MARKERS.find(([marker]) => text.includes(marker));
    if (bundler) {
      log.error(
        `${mainFile} looks like a ${bundler[1]} bundle (${Math.round(size / 1024)} KB): drivers inlined in a bundle are NOT protected. ` +
          'Mark pg, mysql2 and other drivers as externals so they load from node_modules.',
      );
    }
  } catch {
    // the main module is not a readable file (node -e, REPL): nothing to say
  }
}

const BUNDLE_MARKERS: ReadonlyArray<[string, string]> = [
  ['__webpack_require__', 'webpack'],
  ['__commonJS(', 'esbuild'],
  ['__toESM(', 'esbuild'],
  ['parcelRequire', 'Parcel'],
  ['rollupPluginBabelHelpers', 'Rollup'],
  ['__ncc_wildcard$', 'ncc'],
];

function isEsm(file: string, text: string): boolean {
  if (file.endsWith('.mjs') || file.endsWith('.mts')) return true;
  if (file.endsWith('.cjs') || file.endsWith('.cts')) return false;
  let dir = dirname(file);
  for (let i = 0; i < 32; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: string };
      return pkg.type === 'module';
    } catch {
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  // No package.json: Node 20 treats .js as CommonJS unless it has ESM syntax and detection is on.
  return /^\s*(import\s|export\s)/m.test(text) && !/\brequire\(/.test(text.slice(0, 4096));
}
