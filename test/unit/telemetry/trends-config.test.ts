import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';

describe('trends settings', () => {
  it('reads the findings log and anomaly settings, resolving the file against the working directory', () => {
    const { config, problems } = loadConfig(
      { STEPGUARD_FINDINGS_FILE: 'logs/f.jsonl', STEPGUARD_FINDINGS_FILE_MAX_BYTES: '2048', STEPGUARD_ANOMALY_FACTOR: '2.5', STEPGUARD_ANOMALY_WINDOW_SECONDS: '30', STEPGUARD_ANOMALY_MIN_EVENTS: '4', STEPGUARD_ANOMALY_USER_FAILURES: '2' },
      '/srv/app',
    );
    expect(problems).toEqual([]);
    expect(config).toMatchObject({ findingsFile: '/srv/app/logs/f.jsonl', findingsFileMaxBytes: 2048, anomalyFactor: 2.5, anomalyWindowSeconds: 30, anomalyMinEvents: 4, anomalyUserFailures: 2 });
    expect(loadConfig({}, '/srv/app').config).toMatchObject({ findingsFile: undefined, anomalyFactor: 3, anomalyWindowSeconds: 60 });
  });

  it('names the variable and the expected value when a setting is wrong', () => {
    const { problems } = loadConfig({ STEPGUARD_ANOMALY_FACTOR: '1', STEPGUARD_FINDINGS_FILE_MAX_BYTES: '10MB', STEPGUARD_ANOMALY_WINDOW_SECONDS: '-5' }, '/srv/app');
    expect(problems).toEqual([
      { where: 'env STEPGUARD_FINDINGS_FILE_MAX_BYTES', message: 'expected a positive integer, got "10MB"' },
      { where: 'env STEPGUARD_ANOMALY_FACTOR', message: 'expected a number greater than 1 (e.g. 3), got "1"' },
      { where: 'env STEPGUARD_ANOMALY_WINDOW_SECONDS', message: 'expected a positive integer, got "-5"' },
    ]);
  });
});
