/** The JSON Schema covers the adaptive syntax; the adaptive rule files lint clean and their examples pass. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import Ajv from 'ajv';
import { parseRuleFile } from '../../../src/rules/load.js';
import { runExample } from '../../../src/rules/evaluate.js';
import { DETECTOR_IDS } from '../../../src/detectors/index.js';

const REPO = resolve(__dirname, '../../..');
const FILES = [join(REPO, 'examples/bank/adaptive-rules.yaml'), join(REPO, 'test/fixtures/rules/adaptive.yaml')];
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(JSON.parse(readFileSync(join(REPO, 'rules/schema.json'), 'utf8')) as object);

describe('adaptive rule files', () => {
  it.each(FILES)('%s: schema-valid, lint-clean, examples pass', (file) => {
    const text = readFileSync(file, 'utf8');
    expect(validate(parse(text)), ajv.errorsText(validate.errors)).toBe(true);
    const { rules, problems } = parseRuleFile(file, text, DETECTOR_IDS);
    expect(problems).toEqual([]);
    const results = rules.flatMap((r) => r.examples.map((e) => runExample(r, e, rules)));
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) expect(r.passed, `${r.example.origin}: ${r.detail}`).toBe(true);
  });

  it('the schema rejects what the loader rejects', () => {
    const base = { id: 'x', title: 't', category: 'c', when: { sink: 'sql' } };
    expect(validate({ rules: [{ ...base, risk: [{ new_devise: true }], action: 'monitor' }] })).toBe(false);
    expect(validate({ rules: [{ ...base, risk: [{ frequency: { per: 'device', window: '10m', at_least: 3 } }], action: 'monitor' }] })).toBe(false);
    expect(validate({ rules: [{ ...base, risk: [{ frequency: { window: 'soon', at_least: 3 } }], action: 'monitor' }] })).toBe(false);
    expect(validate({ rules: [{ ...base, risk: [{ new_device: true, level: 'extreme' }], action: 'monitor' }] })).toBe(false);
    expect(validate({ rules: [{ ...base, action: 'step_up', step_up: { max_age: 5, acr_values: { severe: ['phr'] } } }] })).toBe(false);
    expect(validate({ login: { route: '/login' }, rules: [] })).toBe(false);
    expect(validate({ rules: [{ ...base, risk: [{ new_device: true }], act_at: 'medium', action: ['flag', 'step_up'], step_up: { max_age: 5, acr_values: { medium: ['otp'] } } }] })).toBe(true);
  });
});
