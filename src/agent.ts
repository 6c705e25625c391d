import type { Config, ConfigProblem } from './config.js';
import { log, setLogLevel, type LogLevel } from './log.js';
import type { Runtime } from './runtime.js';

/**
 * Composition root: config → rules → detectors → telemetry → hooks. Any problem in the user's config or
 * rule files is printed once with file and field, and the agent continues in monitor mode: it keeps
 * reporting but never blocks on a configuration it could not fully understand.
 *
 * Nothing is loaded before the `enabled` switch is read: STEPGUARD_ENABLED=false (which no config file can
 * override) costs this file and the logger; `enabled: false` in a config file costs the config module too.
 */
export interface StartResult {
  readonly runtime: Runtime | undefined;
  readonly problems: readonly string[];
}

/** STEPGUARD_ENABLED=false (the words config.ts reads as false); says so once. */
export function switchedOffByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!/^(0|false|no|off)$/i.test(env.STEPGUARD_ENABLED?.trim() ?? '')) return false;
  const level = env.STEPGUARD_LOG_LEVEL?.trim().toLowerCase();
  if (level && ['debug', 'info', 'warn', 'error', 'silent'].includes(level)) setLogLevel(level as LogLevel);
  log.info('disabled by STEPGUARD_ENABLED=false; nothing is inspected');
  return true;
}

export function start(env: NodeJS.ProcessEnv = process.env): StartResult {
  // runtime.ts's holder, read without loading that module (a switched-off agent loads almost nothing).
  const existing = (globalThis as { [key: symbol]: { current?: Runtime } | undefined })[Symbol.for('stepguard.runtime-holder')]?.current;
  if (existing) return { runtime: existing, problems: [] };
  if (switchedOffByEnv(env)) return { runtime: undefined, problems: [] };

  // eslint-disable-next-line @typescript-eslint/no-require-imports -- not loaded when switched off by the environment
  const { loadConfig } = require('./config.js') as typeof import('./config.js');
  const { config: loaded, problems: configProblems } = loadConfig(env);
  setLogLevel(loaded.logLevel);
  if (!loaded.enabled) {
    log.info('disabled by STEPGUARD_ENABLED=false; nothing is inspected');
    return { runtime: undefined, problems: [] };
  }
  return compose(loaded, configProblems, env);
}

/* eslint-disable @typescript-eslint/no-require-imports -- loaded only once the agent is known to be enabled */
function compose(loaded: Config, configProblems: readonly ConfigProblem[], env: NodeJS.ProcessEnv): StartResult {
  const { DETECTOR_IDS } = require('./detectors/index.js') as typeof import('./detectors/index.js');
  const { loadRules, formatProblem } = require('./rules/load.js') as typeof import('./rules/load.js');
  const { RuleEngine } = require('./rules/engine.js') as typeof import('./rules/engine.js');
  const { Telemetry } = require('./telemetry/telemetry.js') as typeof import('./telemetry/telemetry.js');
  const { detectorSlots, setRuntime } = require('./runtime.js') as typeof import('./runtime.js');
  const { installHooks } = require('./instrument/install.js') as typeof import('./instrument/install.js');
  const { createStepUp } = require('./stepup/setup.js') as typeof import('./stepup/setup.js');
  const { installEsmHooks, startedFromEsmEntry } = require('./instrument/esm.js') as typeof import('./instrument/esm.js');
  const { HOOKS, HOOK_NAMES, UNCOVERED_RISKY_PACKAGES, enabledHooks } = require('../hooks/index.js') as typeof import('../hooks/index.js');

  const problems = configProblems.map((p) => `${p.where}: ${p.message}`);
  const { hooks, unknown } = enabledHooks(loaded.disabledHooks);
  for (const name of unknown) {
    const where = env.STEPGUARD_DISABLED_HOOKS ? 'env STEPGUARD_DISABLED_HOOKS' : `${loaded.configFile ?? 'config'}: disabledHooks`;
    problems.push(`${where}: unknown hook "${name}"; valid names: ${HOOK_NAMES.join(', ')}`);
  }
  const { ruleSet, problems: ruleProblems } = loadRules(loaded.rulesFiles, DETECTOR_IDS);
  problems.push(...ruleProblems.map(formatProblem));

  let config: Config = loaded;
  if (problems.length > 0) {
    for (const problem of problems) log.error(problem);
    if (loaded.mode !== 'monitor') {
      log.error('running in MONITOR mode until the problems above are fixed: attacks are reported, not blocked');
    }
    config = Object.freeze({ ...loaded, mode: 'monitor' });
  }

  const engine = new RuleEngine(ruleSet, config.mode);
  const telemetry = new Telemetry({ enabled: config.telemetry, serviceName: config.serviceName, exportThread: config.exportThread });
  const { startTrends } = require('./telemetry/trends.js') as typeof import('./telemetry/trends.js');
  startTrends(telemetry, config, env);
  const stepUp = createStepUp(config, env, telemetry, ruleSet.rules.some((r) => r.action === 'step_up' || (r.type === 'policy' && r.risk !== undefined)));
  // The risk layer (and the step-up parts it uses) loads only when some rule can need it.
  const { usesRisk } = require('./risk/uses.js') as typeof import('./risk/uses.js');
  const { getRuntime } = require('./runtime.js') as typeof import('./runtime.js');
  // Adaptive step-up reads the rule set in force through the runtime, so a reload that adds adaptive rules
  // works; with reloading on it is always there (a request no adaptive rule concerns costs a plan lookup).
  const reloads = config.rulesFiles.length > 0 && (config.reload || config.reloadOnSighup);
  const risk = stepUp && (usesRisk(ruleSet) || reloads) ? (require('./risk/setup.js') as typeof import('./risk/setup.js')).createRisk(config, env, stepUp, telemetry, () => getRuntime()?.engine.ruleSet ?? ruleSet) : undefined;
  const runtime: Runtime = {
    config,
    engine,
    detectorsByKind: detectorSlots(engine, config),
    telemetry,
    stepUp,
    endpoints: stepUp,
    ...(risk ? { risk } : {}),
  };
  setRuntime(runtime);
  const disabled = HOOKS.filter((h) => !hooks.includes(h));
  installHooks(hooks, disabled, reportStacks, { eagerBuiltins: config.eagerBuiltins });
  if (startedFromEsmEntry()) installEsmHooks(hooks);
  if (disabled.length > 0) log.info(`hooks switched off by STEPGUARD_DISABLED_HOOKS: ${[...new Set(disabled.map((h) => h.name))].join(', ')}`);
  if (config.rulesFiles.length > 0 && (config.reload || config.reloadOnSighup)) {
    const { watchRules } = require('./rules/reload.js') as typeof import('./rules/reload.js');
    // A fixed rule file restores the configured mode; a broken setting keeps monitor mode until restart.
    const configuredMode = configProblems.length > 0 || unknown.length > 0 ? 'monitor' : loaded.mode;
    watchRules({ files: config.rulesFiles, configuredMode, watchFiles: config.reload, onSighup: config.reloadOnSighup });
  }
  process.once('beforeExit', () => void telemetry.flush());
  log.info(
    `active: mode=${config.mode}, ${ruleSet.rules.length} rules from ${ruleSet.files.length} files, ` +
      `telemetry ${telemetry.active ? 'on' : 'off'}${uncoveredNote(UNCOVERED_RISKY_PACKAGES)}`,
  );
  return { runtime, problems };
}

/**
 * `; NOT covered by any hook: vm2@3.9.19 (sandbox with known escapes), …` for the start-up line, or '' when the
 * app has none of the risky packages no hook covers installed. Resolved from the app's entry script (or the
 * working directory): a dozen failed lookups, once, at start.
 */
function uncoveredNote(table: Readonly<Record<string, string>>): string {
  try {
    const { uncoveredPackages } = require('./installed.js') as typeof import('./installed.js');
    const { dirname, resolve } = require('node:path') as typeof import('node:path');
    const entry = process.argv[1];
    const found = uncoveredPackages(entry ? dirname(resolve(entry)) : process.cwd(), table);
    if (found.length === 0) return '';
    return `; NOT covered by any hook: ${found.map((p) => `${p.module}@${p.version} (${p.risk})`).join(', ')} — see stepguard doctor`;
  } catch {
    return '';
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * `stacks: sequelize@6.37.7 propagation covered, …` for the ORMs, promise libraries and pools the app has installed,
 * said when the first hooked package loads (an ORM reaches its database through one): a dozen package.json look-ups
 * and semver are then off the start of apps that have none.
 */
function reportStacks(): void {
  const line = stacksLine();
  if (line) log.info(line);
}

function stacksLine(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a few package.json look-ups, only at start
    const { recognisedStacks, stacksSummary, appDir } = require('./stacks.js') as typeof import('./stacks.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the registry, already loaded by start()
    const { STACKS } = require('../hooks/index.js') as typeof import('../hooks/index.js');
    const summary = stacksSummary(recognisedStacks(appDir(), STACKS));
    return summary ? `stacks: ${summary}` : '';
  } catch {
    return '';
  }
}
