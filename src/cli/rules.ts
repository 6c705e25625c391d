import { resolve } from 'node:path';
import { loadConfig } from '../config.js';
import { DETECTOR_IDS } from '../detectors/index.js';
import { loadRules, formatProblem } from '../rules/load.js';

const HELP = `stepguard rules <subcommand>

  lint [paths…] [--json]     validate rule files: every problem with file:line:column, field and a fix.
                             Without paths: the shipped rules plus STEPGUARD_RULES.
`;

export async function rulesCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    out.write(HELP);
    return sub ? 0 : 2;
  }
  switch (sub) {
    case 'lint':
      return lint(rest, env, out);
    default:
      out.write(`stepguard rules: unknown subcommand "${sub}"\n\n${HELP}`);
      return 2;
  }
}

function userPaths(args: string[], env: NodeJS.ProcessEnv): string[] {
  const paths = args.filter((a) => !a.startsWith('--')).map((p) => resolve(p));
  return paths.length > 0 ? paths : [...loadConfig(env).config.rulesFiles];
}

function lint(args: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): number {
  const { ruleSet, problems } = loadRules(userPaths(args, env), DETECTOR_IDS);
  if (args.includes('--json')) {
    out.write(JSON.stringify({ ok: problems.length === 0, rules: ruleSet.rules.length, files: ruleSet.files, problems }, null, 2) + '\n');
  } else {
    for (const p of problems) out.write(`${formatProblem(p)}\n`);
    out.write(problems.length === 0 ? `ok: ${ruleSet.rules.length} rules in ${ruleSet.files.length} files\n` : `${problems.length} problem(s)\n`);
  }
  return problems.length === 0 ? 0 : 1;
}
