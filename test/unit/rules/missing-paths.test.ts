/**
 * A missing rules path is named with the fix that applies to it: a user's STEPGUARD_RULES entry is the user's to
 * fix; the shipped directory missing means the package was copied or installed without it, which no
 * STEPGUARD_RULES change repairs.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadRules, shippedRulesDir } from '../../../src/rules/load.js';
import { DETECTOR_IDS } from '../../../src/detectors/index.js';

const nowhere = join(tmpdir(), 'stepguard-no-such-dir', 'rules');

describe('missing rule paths', () => {
  it('a missing shipped directory says the package is incomplete, not to fix STEPGUARD_RULES', () => {
    const { ruleSet, problems } = loadRules([], DETECTOR_IDS, nowhere);
    expect(ruleSet.rules).toHaveLength(0);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.file).toBe(nowhere);
    expect(problems[0]!.message).toMatch(/shipped rules directory is missing/);
    expect(problems[0]!.message).toMatch(/reinstall stepguard/);
    expect(problems[0]!.message).not.toMatch(/STEPGUARD_RULES/);
  });

  it('a missing user path names STEPGUARD_RULES, and the shipped rules still load', () => {
    const missing = join(tmpdir(), 'stepguard-no-such-file.yaml');
    const { ruleSet, problems } = loadRules([missing], DETECTOR_IDS, shippedRulesDir());
    expect(ruleSet.rules.length).toBeGreaterThan(0);
    expect(problems).toEqual([expect.objectContaining({ file: missing, message: 'rule file not found; fix the path in STEPGUARD_RULES' })]);
  });
});
