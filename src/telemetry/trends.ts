import type { Config } from '../config.js';
import type { Telemetry } from './telemetry.js';
import { FindingsLog } from './findings-log.js';
import { errorMessage, log } from '../log.js';

/**
 * Trends: the recorders fed by every finding and step-up event (`Telemetry.span`), whether or not spans
 * are exported. Each one is fail-safe: a recorder that cannot start is reported once and left out.
 */
export function startTrends(telemetry: Telemetry, config: Config): void {
  if (config.findingsFile) {
    try {
      telemetry.addRecorder(new FindingsLog({ file: config.findingsFile, maxBytes: config.findingsFileMaxBytes }));
    } catch (error) {
      log.warn(`the findings log (STEPGUARD_FINDINGS_FILE) is off: ${errorMessage(error)}`);
    }
  }
}
