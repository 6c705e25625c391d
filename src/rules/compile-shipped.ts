/**
 * Build step (`npm run build`): validates the shipped YAML rules with the same checks the agent applies
 * to user rules, and writes them as shipped-rules.json next to load.js, so the agent starts without the
 * YAML parser. Any problem fails the build with file, line and field.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { DETECTOR_IDS } from '../detectors/index.js';
import { COMPILED_SHIPPED_RULES, formatProblem, loadRules, serializeShippedRules, shippedRulesDir } from './load.js';

const shippedDir = shippedRulesDir();
// The previous output would otherwise be read back instead of the YAML.
rmSync(COMPILED_SHIPPED_RULES, { force: true });
const { ruleSet, problems } = loadRules([], DETECTOR_IDS, shippedDir);
if (problems.length > 0) {
  for (const problem of problems) process.stderr.write(`${formatProblem(problem)}\n`);
  process.stderr.write(`shipped rules in ${shippedDir} have ${problems.length} problem(s); not compiled\n`);
  process.exit(1);
}
writeFileSync(COMPILED_SHIPPED_RULES, serializeShippedRules(ruleSet, shippedDir) + '\n');
process.stdout.write(`compiled ${ruleSet.rules.length} shipped rules from ${ruleSet.files.length} files into ${COMPILED_SHIPPED_RULES}\n`);
