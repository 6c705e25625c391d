import { loadConfig, type Config } from './config.js';
import { log, setLogLevel } from './log.js';
import { DETECTOR_IDS } from './detectors/index.js';
import { loadRules, formatProblem } from './rules/load.js';
import { RuleEngine } from './rules/engine.js';
import { Telemetry } from './telemetry/telemetry.js';
import { startTrends } from './telemetry/trends.js';
import { detectorSlots, getRuntime, setRuntime, type Runtime } from './runtime.js';
import { installHooks } from './instrument/install.js';
import { createStepUp } from './stepup/setup.js';
import { setSsrfAllowList } from './detectors/ssrf.js';
import { watchRules } from './rules/reload.js';
import { installEsmHooks, startedFromEsmEntry } from './instrument/esm.js';
import { HOOKS } from '../hooks/index.js';

/**
 * Composition root: config → rules → detectors → telemetry → hooks. Any problem in the user's config or
 * rule files is printed once with file and field, and the agent continues in monitor mode: it keeps
 * reporting but never blocks on a configuration it could not fully understand.
 */
export interface StartResult {
  readonly runtime: Runtime | undefined;
  readonly problems: readonly string[];
}

export function start(env: NodeJS.ProcessEnv = process.env): StartResult {
  const existing = getRuntime();
  if (existing) return { runtime: existing, problems: [] };

  const { config: loaded, problems: configProblems } = loadConfig(env);
  setLogLevel(loaded.logLevel);
  if (!loaded.enabled) {
    log.info('disabled by STEPGUARD_ENABLED=false; nothing is inspected');
    return { runtime: undefined, problems: [] };
  }
  const problems = configProblems.map((p) => `${p.where}: ${p.message}`);
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

  setSsrfAllowList(config.ssrfAllow);
  const engine = new RuleEngine(ruleSet, config.mode);
  const telemetry = new Telemetry({ enabled: config.telemetry, serviceName: config.serviceName });
  startTrends(telemetry, config, env);
  const stepUp = createStepUp(config, env, telemetry, ruleSet.rules.some((r) => r.action === 'step_up'));
  const runtime: Runtime = {
    config,
    engine,
    detectorsByKind: detectorSlots(engine),
    telemetry,
    stepUp,
    endpoints: stepUp,
  };
  setRuntime(runtime);
  installHooks(HOOKS);
  if (startedFromEsmEntry()) installEsmHooks(HOOKS);
  if (config.rulesFiles.length > 0 && (config.reload || config.reloadOnSighup)) {
    // A fixed rule file restores the configured mode; a broken setting keeps monitor mode until restart.
    const configuredMode = configProblems.length > 0 ? 'monitor' : loaded.mode;
    watchRules({ files: config.rulesFiles, configuredMode, watchFiles: config.reload, onSighup: config.reloadOnSighup });
  }
  process.once('beforeExit', () => void telemetry.flush());
  log.info(
    `active: mode=${config.mode}, ${ruleSet.rules.length} rules from ${ruleSet.files.length} files, ` +
      `telemetry ${telemetry.active ? 'on' : 'off'}`,
  );
  return { runtime, problems };
}
