import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { statSync } from 'node:fs';
import { DETECTOR_IDS } from '../detectors/index.js';
import { detectorSlots, getRuntime, setRuntime } from '../runtime.js';
import { ATTR, SPAN_RULES_RELOAD } from '../telemetry/attributes.js';
import { log, errorMessage } from '../log.js';
import { RuleEngine } from './engine.js';
import { formatProblem, loadRules } from './load.js';

/**
 * Hot reload of the user's rule files: on a change (file watch, and SIGHUP when enabled) the rules are
 * loaded and validated in full, then swapped in atomically — requests in flight finish with the rules they
 * started judging with. An invalid edit keeps the last good rules and says why. Every reload is a span.
 */
export interface ReloadOptions {
  readonly files: readonly string[];
  /** The mode from the configuration, restored once the rules are valid again. */
  readonly configuredMode: 'monitor' | 'block';
  readonly watchFiles: boolean;
  readonly onSighup: boolean;
}

const DEBOUNCE_MS = 75;

export function reloadRules(configuredMode: 'monitor' | 'block', files: readonly string[], trigger: string): boolean {
  const runtime = getRuntime();
  if (!runtime) return false;
  const { ruleSet, problems } = loadRules(files, DETECTOR_IDS);
  if (problems.length > 0) {
    for (const p of problems) log.error(formatProblem(p));
    log.error(`rules not reloaded (${trigger}): keeping the previous ${runtime.engine.ruleSet.rules.length} rules until the problems above are fixed`);
    runtime.telemetry.span(SPAN_RULES_RELOAD, { [ATTR.RULES_RESULT]: 'rejected', [ATTR.RULES_COUNT]: runtime.engine.ruleSet.rules.length, [ATTR.RULES_PROBLEMS]: problems.length, [ATTR.RULES_TRIGGER]: trigger }, { message: 'rejected' });
    return false;
  }
  const engine = new RuleEngine(ruleSet, configuredMode);
  const config = runtime.config.mode === configuredMode ? runtime.config : Object.freeze({ ...runtime.config, mode: configuredMode });
  setRuntime({ ...runtime, config, engine, detectorsByKind: detectorSlots(engine, config, runtime.detectorsByKind) });
  log.info(`rules reloaded (${trigger}): ${ruleSet.rules.length} rules from ${ruleSet.files.length} files, mode=${configuredMode}`);
  runtime.telemetry.span(SPAN_RULES_RELOAD, { [ATTR.RULES_RESULT]: 'applied', [ATTR.RULES_COUNT]: ruleSet.rules.length, [ATTR.RULES_TRIGGER]: trigger });
  return true;
}

/** Starts watching; returns a function that stops. Watchers never keep the process alive. */
export function watchRules(options: ReloadOptions): () => void {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  const schedule = (trigger: string) => {
    if (timer) clearTimeout(timer);
    // Editors write in several steps (truncate, write, rename): judge the file once it settled.
    timer = setTimeout(() => {
      timer = undefined;
      try {
        reloadRules(options.configuredMode, options.files, trigger);
      } catch (error) {
        log.error(`rules reload failed: ${errorMessage(error)}; keeping the previous rules`);
      }
    }, DEBOUNCE_MS);
    timer.unref();
  };

  if (options.watchFiles) {
    for (const file of options.files) {
      let isDir = false;
      try {
        isDir = statSync(file).isDirectory();
      } catch {
        // watch the parent: the file may be created later
      }
      // Watching the directory survives editors that replace the file (rename over it).
      const dir = isDir ? file : dirname(file);
      const name = isDir ? undefined : basename(file);
      try {
        const watcher = watch(dir, { persistent: false }, (_event, changed) => {
          if (name === undefined ? /\.ya?ml$/.test(String(changed ?? '')) : changed === name || changed === null) schedule(`file ${file}`);
        });
        watcher.on('error', () => undefined);
        watchers.push(watcher);
      } catch (error) {
        log.warn(`cannot watch ${dir} for rule changes (${errorMessage(error)}); use SIGHUP or restart to reload`);
      }
    }
  }
  const onSignal = () => schedule('SIGHUP');
  if (options.onSighup) process.on('SIGHUP', onSignal);
  return () => {
    for (const w of watchers) w.close();
    if (options.onSighup) process.off('SIGHUP', onSignal);
    if (timer) clearTimeout(timer);
  };
}
