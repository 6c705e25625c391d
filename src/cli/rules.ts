import { resolve, sep } from 'node:path';
import { loadConfig } from '../config.js';
import { DETECTOR_IDS } from '../detectors/index.js';
import { tokenizeSql } from '../grammar/sql-tokenizer.js';
import { tokenizeShell } from '../grammar/shell-tokenizer.js';
import type { SinkEvent } from '../events.js';
import { loadRules, formatProblem, shippedRulesDir, type LoadResult } from '../rules/load.js';
import { evaluate, inputsFrom, runExample, type ExampleResult } from '../rules/evaluate.js';

const HELP = `stepguard rules <subcommand>

  lint [paths…] [--json]
      Validate rule files: every problem with file:line:column, the field and a fix.
      Without paths: the shipped rules plus STEPGUARD_RULES. Exit 1 on any problem.

  test [paths…] [--json] [--require-examples]
      Run the examples written inside each rule (events that must match / must not match).
      Exit 1 when an example does not hold (or, with --require-examples, a rule has none).

  explain (--sql TEXT [--dialect postgres|mysql] | --command TEXT | --path PATH | --url URL | --code SOURCE) [--signal NAME[=VALUE]]…
          [--input SOURCE.PATH=VALUE]… [--method M] [--route R] [--rules PATHS] [--json]
      Show, for one event and request input, how the input maps onto the statement's tokens, which
      detectors found what, which rules fired and the resulting action — the agent's own judgement.
      --input path.N=V is the N-th URL path segment; --input key:query.name=name an object key or
      parameter name (a key or path segment equal to a name in the statement is no finding).
      e.g. stepguard rules explain --sql "SELECT * FROM t WHERE a = '' OR '1'='1'" --input "query.a=' OR '1'='1"
`;

export async function rulesCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    out.write(HELP);
    return sub ? 0 : 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out.write(HELP);
    return 0;
  }
  switch (sub) {
    case 'lint':
      return lint(rest, env, out);
    case 'test':
      return test(rest, env, out);
    case 'explain':
      return explain(rest, env, out);
    default:
      out.write(`stepguard rules: unknown subcommand "${sub}"\n\n${HELP}`);
      return 2;
  }
}

function positional(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i]!.startsWith('--')) continue;
    out.push(args[i]!);
  }
  return out;
}

/** Explicit paths are loaded after the shipped rules (as the agent would); without paths, what the agent loads. */
function load(args: string[], env: NodeJS.ProcessEnv): LoadResult {
  const paths = positional(args).map((p) => resolve(p));
  if (paths.length === 0) return loadRules(loadConfig(env).config.rulesFiles, DETECTOR_IDS);
  const shipped = shippedRulesDir();
  const onlyShipped = paths.every((p) => p === shipped || p.startsWith(shipped + sep));
  return loadRules(onlyShipped ? [] : paths, DETECTOR_IDS);
}

function lint(args: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): number {
  const { ruleSet, problems } = load(args, env);
  if (args.includes('--json')) {
    out.write(JSON.stringify({ ok: problems.length === 0, rules: ruleSet.rules.length, files: ruleSet.files, problems }, null, 2) + '\n');
  } else {
    for (const p of problems) out.write(`${formatProblem(p)}\n`);
    out.write(problems.length === 0 ? `ok: ${ruleSet.rules.length} rules in ${ruleSet.files.length} files\n` : `${problems.length} problem(s)\n`);
  }
  return problems.length === 0 ? 0 : 1;
}

function test(args: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): number {
  const { ruleSet, problems } = load(args, env);
  const explicit = positional(args).map((p) => resolve(p));
  const inScope = ruleSet.rules.filter((r) => explicit.length === 0 || explicit.some((p) => r.meta.origin.startsWith(p)));
  const results: ExampleResult[] = [];
  const missing: string[] = [];
  for (const rule of inScope) {
    if (rule.examples.length === 0) missing.push(`${rule.meta.id} (${rule.meta.origin})`);
    for (const example of rule.examples) results.push(runExample(rule, example, ruleSet.rules));
  }
  const failed = results.filter((r) => !r.passed);
  const requireExamples = args.includes('--require-examples');
  const ok = problems.length === 0 && failed.length === 0 && !(requireExamples && missing.length > 0);
  if (args.includes('--json')) {
    out.write(
      JSON.stringify(
        {
          ok,
          problems,
          examples: results.map((r) => ({ rule: r.rule.meta.id, origin: r.example.origin, expect: r.example.expect, passed: r.passed, detail: r.detail || undefined })),
          rulesWithoutExamples: missing,
        },
        null,
        2,
      ) + '\n',
    );
    return ok ? 0 : 1;
  }
  for (const p of problems) out.write(`${formatProblem(p)}\n`);
  for (const r of results) {
    out.write(`${r.passed ? '✓' : '✗'} ${r.rule.meta.id}: ${r.example.expect} — ${r.example.origin}\n`);
    if (!r.passed) {
      out.write(`    - expected: ${r.example.expect === 'match' ? 'match' : 'no match'}\n    + actual:   ${r.matched ? 'match' : 'no match'}\n    ${r.detail}\n`);
    }
  }
  if (missing.length > 0) out.write(`${requireExamples ? '✗' : '!'} rules without examples: ${missing.join(', ')}\n`);
  out.write(`${results.length - failed.length} passed, ${failed.length} failed (${inScope.length} rules)\n`);
  return ok ? 0 : 1;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i !== -1 ? args[i + 1] : undefined;
}

function options(args: string[], name: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a === name && args[i + 1] !== undefined) out.push(args[i + 1]!);
  });
  return out;
}

function explain(args: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): number {
  const dialect = option(args, '--dialect') === 'mysql' ? 'mysql' : 'postgres';
  let event: SinkEvent;
  const sql = option(args, '--sql');
  const command = option(args, '--command');
  const path = option(args, '--path');
  const url = option(args, '--url');
  const code = option(args, '--code');
  if (sql !== undefined) event = { kind: 'sql', op: dialect === 'mysql' ? 'mysql2.query' : 'pg.query', dialect, system: dialect === 'mysql' ? 'mysql' : 'postgresql', sql };
  else if (command !== undefined) event = { kind: 'exec', op: 'child_process.exec', file: command, args: [], shell: true };
  else if (path !== undefined) event = { kind: 'fs', op: 'fs.readFile', path, write: false };
  else if (url !== undefined) event = { kind: 'http.out', op: 'fetch', url };
  else if (code !== undefined) event = { kind: 'code', op: 'Function', source: code } as SinkEvent;
  else {
    out.write(`stepguard rules explain: give one of --sql, --command, --path, --url, --code\n\n${HELP}`);
    return 2;
  }
  const inputMap: Record<string, string> = {};
  for (const pair of options(args, '--input')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      out.write(`stepguard rules explain: --input takes SOURCE.PATH=VALUE, e.g. query.q=abc (got "${pair}")\n`);
      return 2;
    }
    inputMap[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const rulesArg = option(args, '--rules');
  const { ruleSet, problems } = loadRules(rulesArg ? rulesArg.split(',').map((p) => resolve(p)) : loadConfig(env).config.rulesFiles, DETECTOR_IDS);
  const method = option(args, '--method')?.toUpperCase();
  const route = option(args, '--route');
  const signals: Record<string, unknown> = {};
  for (const pair of options(args, '--signal')) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    const raw = eq === -1 ? 'true' : pair.slice(eq + 1);
    signals[name] = raw === 'true' ? true : raw === 'false' ? false : Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  const evaluation = evaluate(ruleSet.rules, event, inputsFrom(inputMap), { method, route, path: route, signals });
  const text = event.kind === 'sql' ? event.sql : (command ?? path ?? url ?? code ?? '');
  const tokens = tokensOf(event, text);
  const occurrences = evaluation.inputs.map((input) => {
    const spans: Array<{ start: number; end: number; tokens: string[] }> = [];
    if (input.value.length > 0) {
      for (let at = text.indexOf(input.value); at !== -1 && spans.length < 8; at = text.indexOf(input.value, at + 1)) {
        const end = at + input.value.length;
        spans.push({ start: at, end, tokens: tokens.filter((t) => t.start < end && t.end > at).map((t) => `${t.type} ${JSON.stringify(text.slice(t.start, t.end))}`) });
      }
    }
    return { input, spans };
  });
  const d = evaluation.decision;
  if (args.includes('--json')) {
    out.write(
      JSON.stringify(
        {
          event,
          tokens: tokens.map((t) => ({ ...t, text: text.slice(t.start, t.end) })),
          inputs: occurrences.map((o) => ({ path: o.input.path, value: o.input.value, occurrences: o.spans })),
          findings: evaluation.findings,
          rules: d.matches.map((m) => ({ id: m.rule.meta.id, action: m.action, origin: m.rule.meta.origin, finding: m.finding ? `${m.finding.kind} ${m.finding.detector}` : undefined })),
          action: d.action,
          decisive: d.decisive?.rule.meta.id,
          risk: (d.assessed ?? []).map((a) => ({ id: a.rule.meta.id, level: a.assessment.level, applies: a.assessment.applies, signals: a.assessment.signals })),
          problems: problems.map(formatProblem),
        },
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  const line = (s = '') => out.write(s + '\n');
  for (const p of problems) line(`! ${formatProblem(p)}`);
  line(`event: ${event.kind}${event.kind === 'sql' ? ` (${event.dialect})` : ''} ${event.op}`);
  line(`  ${text}`);
  if (tokens.length > 0) line(`tokens: ${tokens.map((t) => `[${t.type} ${JSON.stringify(text.slice(t.start, t.end))}]`).join(' ')}`);
  for (const { input, spans } of occurrences) {
    line(`input ${input.path} = ${JSON.stringify(input.value)}`);
    if (spans.length === 0) line('  does not occur');
    for (const s of spans) line(`  occurs at ${s.start}..${s.end}, covering ${s.tokens.length} token(s): ${s.tokens.join(', ') || '(none)'}`);
  }
  line('findings:');
  if (evaluation.findings.length === 0) line('  none');
  for (const f of evaluation.findings) line(`  ${f.kind} ${f.detector} (${f.reason}) ${f.input ? `from ${f.input.path} at ${f.start}..${f.end}` : '(configuration)'}`);
  line('rules:');
  if (d.matches.length === 0) line('  none');
  for (const m of d.matches) line(`  ${m.rule.meta.id} → ${m.action}${m.finding ? ` (on ${m.finding.kind} ${m.finding.detector})` : ' (policy)'}   ${m.rule.meta.origin}`);
  if (d.assessed && d.assessed.length > 0) {
    line('risk:');
    for (const { rule, assessment } of d.assessed) {
      line(`  ${rule.meta.id}: level ${assessment.level} (acts from ${rule.risk!.actAt}) → ${assessment.applies ? rule.action : 'does not apply'}`);
      for (const s of assessment.signals) line(`    ${s.fired ? '✓' : '·'} ${s.label} = ${String(s.value)}${s.fired ? ` → ${s.level}` : ''}`);
      const acr = rule.stepUp?.acrByLevel?.[assessment.level];
      if (assessment.applies && acr) line(`    acr_values at ${assessment.level}: ${acr.join(' ')}`);
    }
  }
  line(`decision: ${d.action}${d.decisive ? ` (rule ${d.decisive.rule.meta.id})` : ''} — in block mode; monitor mode would report only`);
  return 0;
}

interface ExplainToken {
  readonly type: string;
  readonly start: number;
  readonly end: number;
}

function tokensOf(event: SinkEvent, text: string): ExplainToken[] {
  if (event.kind === 'sql') return tokenizeSql(text, event.dialect).map((t) => ({ type: t.type, start: t.start, end: t.end }));
  if (event.kind === 'exec') return tokenizeShell(text).map((t) => ({ type: t.kind, start: t.start, end: t.end }));
  return [];
}
