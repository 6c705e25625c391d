import type { LazyHook } from '../src/hook-kit.js';
import { SUPPORTED_VERSIONS, FRAMEWORKS } from './versions.js';
/** Packages no hook covers yet, for `stepguard doctor` (the registry is src/'s one door into hooks/). */
export { UNCOVERED_RISKY_PACKAGES } from './uncovered.js';
/** ORMs, query builders, promise libraries and pools the agent knows, and how their context propagation is covered. */
export { STACKS, type StackEntry } from './stacks.js';
/** Recognised web frameworks and what of their input is covered, for `stepguard doctor`. */
export { FRAMEWORKS, type FrameworkCoverage } from './versions.js';

/**
 * THE REGISTRY: one line per hook. A line names the module and its supported versions and says how to load
 * the hook's code; the code is required only when the module is, so an app without mysql never parses the
 * mysql hook. Globals and most builtins are patched at start; http, https, child_process, vm and crypto at their
 * first require/import where Node has in-thread module hooks (src/instrument/install.ts, deferBuiltins). `name` is what STEPGUARD_DISABLED_HOOKS and `stepguard doctor` use;
 * one name may cover several lines (`fs` is `fs` and `fs/promises`).
 */
export type HookLine = LazyHook & { readonly name: string };

/* eslint-disable @typescript-eslint/no-require-imports -- each hook file is required on first need */
export const HOOKS: readonly HookLine[] = [
  { name: 'http-server', module: 'http', builtin: true, load: () => (require('./http-server.js') as typeof import('./http-server.js')).httpServer },
  { name: 'http-server', module: 'https', builtin: true, load: () => (require('./http-server.js') as typeof import('./http-server.js')).httpsServer },
  { name: 'pg', module: 'pg', versions: SUPPORTED_VERSIONS.pg.range, load: () => (require('./pg.js') as typeof import('./pg.js')).pg },
  { name: 'mysql2', module: 'mysql2', versions: SUPPORTED_VERSIONS.mysql2.range, entryPoints: ['mysql2/promise'], load: () => (require('./mysql2.js') as typeof import('./mysql2.js')).mysql2 },
  { name: 'mysql', module: 'mysql/lib/Connection', versions: SUPPORTED_VERSIONS.mysql.range, load: () => (require('./mysql.js') as typeof import('./mysql.js')).mysqlConnection },
  { name: 'mysql', module: 'mysql/lib/Pool', versions: SUPPORTED_VERSIONS.mysql.range, load: () => (require('./mysql.js') as typeof import('./mysql.js')).mysqlPool },
  { name: 'postgres', module: 'postgres/cjs/src/query', versions: SUPPORTED_VERSIONS.postgres.range, load: () => (require('./postgres.js') as typeof import('./postgres.js')).postgres },
  { name: 'child_process', module: 'child_process', builtin: true, load: () => (require('./child-process.js') as typeof import('./child-process.js')).childProcess },
  { name: 'fs', module: 'fs', builtin: true, load: () => (require('./fs.js') as typeof import('./fs.js')).fs },
  { name: 'fs', module: 'fs/promises', builtin: true, load: () => (require('./fs.js') as typeof import('./fs.js')).fsPromises },
  { name: 'function', module: 'Function', global: true, load: () => (require('./function.js') as typeof import('./function.js')).functionConstructor },
  { name: 'eval', module: 'module', builtin: true, load: () => (require('./eval.js') as typeof import('./eval.js')).directEval },
  { name: 'vm', module: 'vm', builtin: true, load: () => (require('./vm.js') as typeof import('./vm.js')).vm },
  { name: 'http-client', module: 'http', builtin: true, load: () => (require('./http-client.js') as typeof import('./http-client.js')).httpClient },
  { name: 'http-client', module: 'https', builtin: true, load: () => (require('./http-client.js') as typeof import('./http-client.js')).httpsClient },
  { name: 'net', module: 'net', builtin: true, load: () => (require('./net.js') as typeof import('./net.js')).netConnect },
  { name: 'fetch', module: 'fetch', global: true, load: () => (require('./fetch.js') as typeof import('./fetch.js')).globalFetch },
  { name: 'undici', module: 'undici', versions: SUPPORTED_VERSIONS.undici.range, load: () => (require('./fetch.js') as typeof import('./fetch.js')).undici },
  // issue #12 part B: response and parser sinks
  { name: 'redirect', module: 'http', builtin: true, load: () => (require('./redirect.js') as typeof import('./redirect.js')).redirect },
  { name: 'html-response', module: 'http', builtin: true, load: () => (require('./html-response.js') as typeof import('./html-response.js')).htmlResponse },
  // issue #12 B6: insecure configuration (reported, never refused)
  { name: 'html-response', module: 'Math.random', global: true, load: () => (require('./html-response.js') as typeof import('./html-response.js')).mathRandom },
  { name: 'crypto-hash', module: 'crypto', builtin: true, load: () => (require('./crypto-hash.js') as typeof import('./crypto-hash.js')).cryptoHash },
  { name: 'node-serialize', module: 'node-serialize', versions: SUPPORTED_VERSIONS['node-serialize'].range, load: () => (require('./node-serialize.js') as typeof import('./node-serialize.js')).nodeSerialize },
  { name: 'js-yaml', module: 'js-yaml', versions: SUPPORTED_VERSIONS['js-yaml'].range, load: () => (require('./js-yaml.js') as typeof import('./js-yaml.js')).jsYaml },
  { name: 'libxmljs', module: 'libxmljs2', versions: SUPPORTED_VERSIONS.libxmljs2.range, load: () => (require('./libxmljs.js') as typeof import('./libxmljs.js')).libxmljs2 },
  { name: 'libxmljs', module: 'libxmljs', versions: SUPPORTED_VERSIONS.libxmljs.range, load: () => (require('./libxmljs.js') as typeof import('./libxmljs.js')).libxmljs },
  // issue #9: context propagation where libraries queue work (no sink of their own)
  { name: 'bluebird', module: 'bluebird', versions: SUPPORTED_VERSIONS.bluebird.range, load: () => (require('./bluebird.js') as typeof import('./bluebird.js')).bluebird },
  { name: 'generic-pool', module: 'generic-pool', versions: SUPPORTED_VERSIONS['generic-pool'].range, load: () => (require('./generic-pool.js') as typeof import('./generic-pool.js')).genericPool },
  { name: 'graphql', module: 'graphql/execution/execute', versions: SUPPORTED_VERSIONS.graphql.range, load: () => (require('./graphql.js') as typeof import('./graphql.js')).graphqlExecute },
  // Frameworks are recognised, never patched (their input comes through http-server, whose name they share):
  // one line per FRAMEWORKS entry, so the agent names each framework the app loads.
  ...FRAMEWORKS.map((f): HookLine => ({ name: 'http-server', module: f.package, load: () => (require('./frameworks.js') as typeof import('./frameworks.js')).frameworkHook(f) })),
];
/* eslint-enable @typescript-eslint/no-require-imports */

/** The names STEPGUARD_DISABLED_HOOKS accepts, in registry order. */
export const HOOK_NAMES: readonly string[] = [...new Set(HOOKS.map((h) => h.name))];

/** The registry minus the switched-off hooks, and a message for each name that is not a hook. */
export function enabledHooks(disabled: readonly string[]): { hooks: readonly HookLine[]; unknown: readonly string[] } {
  const off = new Set(disabled.map((n) => n.trim().toLowerCase()).filter(Boolean));
  const unknown = [...off].filter((n) => !HOOK_NAMES.includes(n));
  return { hooks: HOOKS.filter((h) => !off.has(h.name)), unknown };
}
