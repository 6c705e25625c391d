import type { Config } from '../config.js';
import type { Telemetry } from './telemetry.js';
import { FindingsLog } from './findings-log.js';
import { metricsFromEnv } from './metrics.js';
import { AnomalyTracker } from './anomalies.js';
import { SPAN_ANOMALY } from './attributes.js';
import { errorMessage, log } from '../log.js';

/**
 * Trends: the recorders fed by every finding and step-up event (`Telemetry.span`), whether or not spans
 * are exported. Each one is fail-safe: a recorder that cannot start is reported once and left out.
 */
export function startTrends(telemetry: Telemetry, config: Config, env: NodeJS.ProcessEnv = process.env): void {
  if (config.telemetry && !/^(1|true|yes)$/i.test(env.OTEL_SDK_DISABLED?.trim() ?? '')) {
    try {
      const metrics = metricsFromEnv(config.serviceName, env, config.exportThread);
      if (metrics) telemetry.addRecorder(metrics);
    } catch (error) {
      log.warn(`metrics are off: ${errorMessage(error)}`);
    }
  }
  if (config.findingsFile) {
    try {
      telemetry.addRecorder(new FindingsLog({ file: config.findingsFile, maxBytes: config.findingsFileMaxBytes }));
    } catch (error) {
      log.warn(`the findings log (STEPGUARD_FINDINGS_FILE) is off: ${errorMessage(error)}`);
    }
  }
  telemetry.addRecorder(
    new AnomalyTracker({
      factor: config.anomalyFactor,
      windowSeconds: config.anomalyWindowSeconds,
      minEvents: config.anomalyMinEvents,
      userFailures: config.anomalyUserFailures,
      emit: (attributes) => telemetry.span(SPAN_ANOMALY, attributes),
    }),
  );
}
