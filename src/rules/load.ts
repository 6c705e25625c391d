import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import type { LineCounter, Node as YamlNode, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { SINK_KINDS, type SinkKind } from '../events.js';
import { compilePattern, patternProblem } from './pattern.js';
import type { LoginWatch } from './types.js';
import {
  ACTIONS,
  type Action,
  type PolicyConditions,
  type Rule,
  type RuleExample,
  type RuleMeta,
  type RuleSet,
  type StepUpRequirement,
} from './types.js';

/**
 * Rule files are YAML. Every problem names file, line, column and field, and suggests a fix, so a
 * mistake is found at start-up (or by `stepguard rules lint`), never deep inside a request.
 */

export interface RuleProblem {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly field: string;
  readonly message: string;
}

/* eslint-disable @typescript-eslint/no-require-imports -- the YAML parser loads only when a rule file is parsed */
let yamlModule: typeof import('yaml') | undefined;
const yaml = (): typeof import('yaml') => (yamlModule ??= require('yaml') as typeof import('yaml'));
/* eslint-enable @typescript-eslint/no-require-imports */
const isMap = (node: unknown): node is YAMLMap<unknown, unknown> => yaml().isMap(node);
const isSeq = (node: unknown): node is YAMLSeq<unknown> => yaml().isSeq(node);
const isScalar = (node: unknown): node is Scalar<unknown> => yaml().isScalar(node);

export function formatProblem(p: RuleProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.field ? p.field + ': ' : ''}${p.message}`;
}

/** Where the shipped rules live: `<package>/rules`, both from src/ (tests) and dist/src/ (runtime). */
export function shippedRulesDir(): string {
  for (const candidate of [resolve(__dirname, '../../rules'), resolve(__dirname, '../../../rules')]) {
    try {
      if (statSync(candidate).isDirectory()) return candidate;
    } catch {
      // try the next layout
    }
  }
  return resolve(__dirname, '../../../rules');
}

export function ruleFilesIn(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...ruleFilesIn(full));
    else if (/\.ya?ml$/.test(entry.name)) out.push(full);
  }
  return out;
}

export interface LoadResult {
  readonly ruleSet: RuleSet;
  readonly problems: readonly RuleProblem[];
}

/**
 * Loads the shipped rules, then each user file (or directory) in order; a later rule with the same id
 * replaces an earlier one (that is how users tune a shipped rule). A file with any problem contributes
 * no rules at all: half a rule file is worse than none.
 */
export function loadRules(userPaths: readonly string[], knownDetectors: readonly string[], shippedDir = shippedRulesDir()): LoadResult {
  const problems: RuleProblem[] = [];
  const byId = new Map<string, Rule>();
  let login: LoginWatch | undefined;
  const files: string[] = [];
  const expand = (p: string, shipped = false): string[] => {
    try {
      return statSync(p).isDirectory() ? ruleFilesIn(p) : [p];
    } catch {
      // The shipped directory is not the user's path to fix: the package was copied or installed without it.
      const message = shipped
        ? "the shipped rules directory is missing from stepguard's package (its rules/ belongs beside dist/); reinstall stepguard — the agent runs without the shipped rules"
        : 'rule file not found; fix the path in STEPGUARD_RULES';
      problems.push({ file: p, line: 1, column: 1, field: '', message });
      return [];
    }
  };
  const compiled = compiledShippedRules(shippedDir, knownDetectors);
  if (compiled) {
    files.push(...compiled.files);
    for (const rule of compiled.rules) byId.set(rule.meta.id, rule);
  }
  for (const file of [...(compiled ? [] : expand(shippedDir, true)), ...userPaths.flatMap((p) => expand(p))]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      problems.push({ file, line: 1, column: 1, field: '', message: `cannot read: ${(error as Error).message}` });
      continue;
    }
    const parsed = parseRuleFile(file, text, knownDetectors);
    problems.push(...parsed.problems);
    if (parsed.problems.length > 0) continue;
    files.push(file);
    for (const rule of parsed.rules) byId.set(rule.meta.id, rule);
    if (parsed.login) login = parsed.login;
  }
  return { ruleSet: login ? { rules: [...byId.values()], files, login } : { rules: [...byId.values()], files }, problems };
}

/* eslint-disable @typescript-eslint/no-require-imports -- kept off the start-up path */
/**
 * The parsers of actions, risk, login and step-up settings, and the step-up tiers: needed only to parse a YAML file.
 * The shipped rules come compiled, so a start without rule files of its own loads neither (each file loaded at start
 * adds to the path work that made V8 optimise Node's path code: README, Benchmark results).
 */
function riskParsers(): typeof import('./load-risk.js') {
  return require('./load-risk.js') as typeof import('./load-risk.js');
}
function stepUpTiers(): typeof import('../stepup/tiers.js') {
  return require('../stepup/tiers.js') as typeof import('../stepup/tiers.js');
}
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * The shipped rules, parsed and validated at build time (`npm run build` runs compile-shipped.js) into
 * shipped-rules.json beside this file, so a start without user rules never loads the YAML parser. The
 * JSON carries the YAML it came from: an edited or added shipped file, or a detector
 * that no longer exists, falls back to parsing the YAML, so the result is always what the files say.
 */
export const COMPILED_SHIPPED_RULES = join(__dirname, 'shipped-rules.json');
const SHIPPED_PREFIX = '$shipped/';

interface CompiledShipped {
  /** shippedSource() of the YAML it was compiled from. */
  readonly source: string;
  readonly files: readonly string[];
  readonly rules: readonly Rule[];
}

/**
 * The shipped rule files' names and contents, which the compiled JSON records whole and compares exactly: no
 * hash, so neither node:crypto nor a byte loop hot enough for V8 to optimise (either costs megabytes at start).
 */
export function shippedSource(shippedDir: string): string {
  let source = '';
  for (const file of yamlFilesByCodePoint(shippedDir, '')) source += `${file.relative}\0${readFileSync(file.path, 'utf8')}\0`;
  return source;
}

/** JSON for COMPILED_SHIPPED_RULES: patterns by their source, file paths relative to the rules directory. */
export function serializeShippedRules(ruleSet: RuleSet, shippedDir: string): string {
  const compiled = { source: shippedSource(shippedDir), files: ruleSet.files, rules: ruleSet.rules };
  return JSON.stringify(compiled, (_key, value: unknown) => {
    if (typeof value === 'string' && value.startsWith(shippedDir + sep)) {
      return SHIPPED_PREFIX + relative(shippedDir, value).split(sep).join('/');
    }
    if (value && typeof value === 'object' && typeof (value as { test?: unknown }).test === 'function') {
      return { $pattern: (value as { source: string }).source };
    }
    return value;
  });
}

/**
 * Like ruleFilesIn, but without `localeCompare`, whose first call sets up ICU collation (milliseconds at start),
 * and with each file's path relative to the rules directory (`/`-separated) built as it walks. Paths are joined by
 * hand: `dir` is already normal and a directory entry's name has no separator, and `path.join`/`path.relative` on
 * each file (a few hundred characters each, under a deep install directory) were enough, with Node's own work for
 * the agent's modules, to make Node's path normalisation hot enough for V8's optimising compiler at every start
 * (whose first use costs megabytes of resident memory: README, Benchmark results).
 */
function yamlFilesByCodePoint(dir: string, relativeDir: string): { path: string; relative: string }[] {
  const out: { path: string; relative: string }[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = dir + sep + entry.name;
    const relativeName = relativeDir + entry.name;
    if (entry.isDirectory()) out.push(...yamlFilesByCodePoint(full, relativeName + '/'));
    else if (/\.ya?ml$/.test(entry.name)) out.push({ path: full, relative: relativeName });
  }
  return out;
}

function compiledShippedRules(shippedDir: string, knownDetectors: readonly string[]): { rules: readonly Rule[]; files: readonly string[] } | undefined {
  let text: string;
  try {
    text = readFileSync(COMPILED_SHIPPED_RULES, 'utf8');
  } catch {
    return undefined; // running from sources (tests) or a build without the compile step: parse the YAML
  }
  try {
    const compiled = JSON.parse(text, (_key, value: unknown) => {
      // Plain concatenation where it is the same (the paths were written by serializeShippedRules): a `join` per rule
      // path was enough path work at start for V8 to optimise Node's path code, paging in its compiler.
      if (typeof value === 'string' && value.startsWith(SHIPPED_PREFIX)) return sep === '/' ? `${shippedDir}/${value.slice(SHIPPED_PREFIX.length)}` : join(shippedDir, ...value.slice(SHIPPED_PREFIX.length).split('/'));
      if (value && typeof value === 'object' && typeof (value as { $pattern?: unknown }).$pattern === 'string') {
        return compilePattern((value as { $pattern: string }).$pattern);
      }
      return value;
    }) as CompiledShipped;
    if (compiled.source !== shippedSource(shippedDir)) return undefined;
    if (compiled.rules.some((r) => r.type === 'detection' && !knownDetectors.includes(r.detector))) return undefined;
    return compiled;
  } catch {
    return undefined;
  }
}

const TOP_KEYS = ['ruleset', 'version', 'rules', 'login'] as const;
const RULE_KEYS = [
  'id', 'uuid', 'title', 'category', 'version', 'description', 'reference',
  'detector', 'on', 'when', 'risk', 'act_at', 'action', 'step_up', 'examples',
] as const;
const WHEN_KEYS = ['sink', 'operation', 'statement', 'command', 'path', 'url', 'code', 'route', 'method', 'finding', 'new_client_address'] as const;
const STEP_UP_KEYS = ['acr_values', 'max_age'] as const;
const EXAMPLE_KEYS = ['event', 'inputs', 'expect', 'signals', 'level'] as const;
const TARGET_FIELD_SINK: Record<string, SinkKind> = { statement: 'sql', command: 'exec', path: 'fs', url: 'http.out', code: 'code' };
const ID_SHAPE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function parseRuleFile(file: string, text: string, knownDetectors: readonly string[]): { rules: Rule[]; problems: RuleProblem[]; login?: LoginWatch } {
  const lineCounter = new (yaml().LineCounter)();
  const doc = yaml().parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: RuleProblem[] = [];
  const at = (node: YamlNode | Pair | null | undefined, field: string, message: string): void => {
    const offset = nodeOffset(node);
    const pos = lineCounter.linePos(offset);
    problems.push({ file, line: pos.line, column: pos.col, field, message });
  };

  for (const error of doc.errors) {
    const pos = error.linePos?.[0] ?? lineCounter.linePos(error.pos[0]);
    problems.push({ file, line: pos.line, column: pos.col, field: '', message: `YAML syntax: ${error.message.split('\n')[0]}` });
  }
  if (problems.length > 0) return { rules: [], problems };

  const root = doc.contents;
  if (!isMap(root)) {
    at(root, '', 'a rule file is a mapping with `ruleset`, `version` and `rules:` (a list)');
    return { rules: [], problems };
  }
  checkKeys(root, TOP_KEYS, '', at);
  const ruleset = optionalString(root.get('ruleset', true) as YamlNode, 'ruleset', at) ?? 'custom';
  const fileVersion = scalarText(root.get('version', true) as YamlNode) ?? '1';
  const rulesNode = root.get('rules', true) as YamlNode | undefined;
  if (!isSeq(rulesNode)) {
    at(rulesNode ?? root, 'rules', 'expected a list of rules (`rules:` followed by `- id: …` items)');
    return { rules: [], problems };
  }

  const rules: Rule[] = [];
  const loginNode = root.get('login', true) as YamlNode | undefined;
  const login = loginNode ? riskParsers().parseLogin(loginNode, file, lineCounter.linePos(nodeOffset(loginNode)).line, at) : undefined;
  const seenIds = new Map<string, number>();
  rulesNode.items.forEach((item, index) => {
    const field = `rules[${index}]`;
    if (!isMap(item)) return at(item as YamlNode, field, 'expected a mapping (id, title, category, action, …)');
    const before = problems.length;
    checkKeys(item, RULE_KEYS, field, at);
    const get = (key: string) => item.get(key, true) as YamlNode | undefined;
    const id = requiredString(get('id'), item, `${field}.id`, at);
    if (id !== undefined && !ID_SHAPE.test(id)) {
      at(get('id'), `${field}.id`, `"${id}" is not a valid id; use lowercase letters, digits, ".", "_" or "-" (max 64)`);
    }
    if (id !== undefined) {
      const line = lineCounter.linePos(nodeOffset(get('id'))).line;
      if (seenIds.has(id)) at(get('id'), `${field}.id`, `duplicate id "${id}" (first defined on line ${seenIds.get(id)}); ids must be unique`);
      else seenIds.set(id, line);
    }
    const title = requiredString(get('title'), item, `${field}.title`, at);
    const category = requiredString(get('category'), item, `${field}.category`, at);
    const description = optionalString(get('description'), `${field}.description`, at);
    const reference = optionalString(get('reference'), `${field}.reference`, at);
    const version = scalarText(get('version')) ?? fileVersion;
    const uuid = optionalString(get('uuid'), `${field}.uuid`, at);
    if (uuid !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid)) {
      at(get('uuid'), `${field}.uuid`, 'expected a UUID such as 3f2b8c1e-0d4a-4c8e-9a51-2b7c6d8e9f01 (or leave it out: one is derived from ruleset and id)');
    }
    const parsedActions = riskParsers().parseActions(get('action'), item, `${field}.action`, at, didYouMean);
    const action = parsedActions?.action;
    const flag = parsedActions?.flag === true;
    const stepUp = parseStepUp(get('step_up'), action, item, field, at);

    const detectorNode = get('detector');
    const whenNode = get('when');
    if (detectorNode && whenNode) at(whenNode, `${field}.when`, 'a rule has either `detector` (detection rule) or `when` (policy rule), not both');
    if (!detectorNode && !whenNode) at(item, field, 'missing `detector` (detection rule) or `when` (policy rule)');

    const origin = `${file}:${lineCounter.linePos(nodeOffset(item)).line}`;
    const meta: RuleMeta = {
      id: id ?? '',
      uuid: uuid ?? deriveUuid(ruleset, id ?? ''),
      title: title ?? '',
      category: category ?? '',
      version,
      description,
      reference,
      ruleset,
      origin,
    };
    const examples = parseExamples(get('examples'), field, file, lineCounter, at);

    if (detectorNode) {
      const detector = requiredString(detectorNode, item, `${field}.detector`, at);
      if (detector !== undefined && !knownDetectors.includes(detector)) {
        at(detectorNode, `${field}.detector`, `unknown detector "${detector}"${didYouMean(detector, knownDetectors)}; known: ${knownDetectors.join(', ')}`);
      }
      const on = (get('on') ? enumValue(get('on'), item, `${field}.on`, ['attack', 'vulnerability'], at) : 'attack') as 'attack' | 'vulnerability' | undefined;
      if (on === 'vulnerability' && action && action !== 'monitor') {
        at(get('action'), `${field}.action`, 'vulnerability findings are reported, never acted on; use `action: monitor` (or `on: attack`)');
      }
      if (get('risk')) at(get('risk'), `${field}.risk`, '`risk` belongs to policy rules (with `when`)');
      if (problems.length === before && detector && action && on) {
        rules.push({ type: 'detection', meta, action, stepUp, examples, detector, on, ...(flag ? { flag } : {}) });
      }
    } else if (whenNode) {
      if (get('on')) at(get('on'), `${field}.on`, '`on` belongs to detection rules; in a policy rule use `when.finding`');
      const when = parseWhen(whenNode, field, at);
      const risk = get('risk') ? riskParsers().parseRisk(get('risk')!, get('act_at'), field, at) : undefined;
      if (!get('risk') && get('act_at')) at(get('act_at'), `${field}.act_at`, '`act_at` needs a `risk:` list of signals');
      if (stepUp?.acrByLevel && !risk) at(get('step_up'), `${field}.step_up.acr_values`, 'acr_values per level need a `risk:` list of signals; use a plain list otherwise');
      if (problems.length === before && when && action) {
        rules.push({ type: 'policy', meta, action, stepUp, examples, when, ...(risk ? { risk } : {}), ...(flag ? { flag } : {}) });
      }
    }
  });
  return login ? { rules, problems, login } : { rules, problems };
}

type At = (node: YamlNode | Pair | null | undefined, field: string, message: string) => void;

function parseStepUp(node: YamlNode | undefined, action: Action | undefined, parent: YamlNode, field: string, at: At): StepUpRequirement | undefined {
  if (action !== 'step_up') {
    if (node) at(node, `${field}.step_up`, '`step_up` settings only apply with `action: step_up`');
    return undefined;
  }
  if (!isMap(node)) {
    at(node ?? parent, `${field}.step_up`, 'action step_up needs `step_up: { max_age: <seconds>, acr_values: [otp] }`');
    return undefined;
  }
  checkKeys(node, STEP_UP_KEYS, `${field}.step_up`, at);
  const maxAgeNode = node.get('max_age', true) as YamlNode | undefined;
  const maxAge = isScalar(maxAgeNode) ? maxAgeNode.value : undefined;
  if (maxAgeNode === undefined) at(node, `${field}.step_up.max_age`, 'missing; how many seconds a verification stays valid, e.g. `max_age: 300`');
  else if (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge <= 0 || maxAge > 86_400) {
    at(maxAgeNode, `${field}.step_up.max_age`, `expected whole seconds between 1 and 86400, got ${JSON.stringify(maxAge)}`);
  }
  const acrNode = node.get('acr_values', true) as YamlNode | undefined;
  let acrValues: string[] = [stepUpTiers().ACR.otp];
  let acrByLevel: StepUpRequirement['acrByLevel'];
  if (isMap(acrNode)) {
    acrByLevel = riskParsers().parseAcrByLevel(acrNode, `${field}.step_up.acr_values`, at);
    acrValues = [...(acrByLevel?.low ?? acrByLevel?.medium ?? acrByLevel?.high ?? acrValues)];
  } else if (acrNode !== undefined) {
    const raw = (acrNode as { toJSON?: () => unknown }).toJSON?.();
    const list = typeof raw === 'string' ? raw.split(/\s+/).filter(Boolean) : raw;
    if (!Array.isArray(list) || list.length === 0 || !list.every((v) => typeof v === 'string' && /^[\x21-\x7e]+$/.test(v) && !v.includes('"'))) {
      at(acrNode, `${field}.step_up.acr_values`, 'expected a non-empty list of ACR values without spaces or quotes, e.g. [otp], [phr] or [urn:stepguard:acr:otp]');
    } else acrValues = (list as string[]).map(stepUpTiers().expandAcr); // short tier names (otp, phr) → their URNs
  }
  if (typeof maxAge !== 'number') return undefined;
  return acrByLevel ? { acrValues, maxAge, acrByLevel } : { acrValues, maxAge };
}

function parseWhen(node: YamlNode, field: string, at: At): PolicyConditions | undefined {
  if (!isMap(node)) {
    at(node, `${field}.when`, 'expected a mapping of conditions, e.g. `when: { sink: sql, statement: "UPDATE accounts *" }`');
    return undefined;
  }
  checkKeys(node, WHEN_KEYS, `${field}.when`, at);
  const get = (key: string) => node.get(key, true) as YamlNode | undefined;
  const sink = get('sink') ? (enumValue(get('sink'), node, `${field}.when.sink`, SINK_KINDS, at) as SinkKind | undefined) : undefined;
  let target: ReturnType<typeof compilePattern> | undefined;
  for (const [key, kind] of Object.entries(TARGET_FIELD_SINK)) {
    const t = get(key);
    if (!t) continue;
    if (target) at(t, `${field}.when.${key}`, 'only one of statement, command, path, url or code per rule');
    if (sink && sink !== kind) at(t, `${field}.when.${key}`, `\`${key}\` applies to sink ${kind}, but this rule says sink ${sink}`);
    const text = requiredString(t, node, `${field}.when.${key}`, at);
    const problem = text !== undefined ? patternProblem(text) : undefined;
    if (problem) at(t, `${field}.when.${key}`, problem);
    else if (text !== undefined) target = compilePattern(text);
  }
  const targetSinkField = Object.keys(TARGET_FIELD_SINK).find((k) => get(k));
  const operationText = optionalString(get('operation'), `${field}.when.operation`, at);
  const routeText = optionalString(get('route'), `${field}.when.route`, at);
  for (const [key, text] of [['operation', operationText], ['route', routeText]] as const) {
    const problem = text !== undefined ? patternProblem(text) : undefined;
    if (problem) at(get(key), `${field}.when.${key}`, problem);
  }
  if (routeText !== undefined && !routeText.startsWith('/') && routeText !== '*') {
    at(get('route'), `${field}.when.route`, `expected a path pattern starting with "/", e.g. "/transfer" or "/admin/*", got "${routeText}"`);
  }
  let methods: string[] | undefined;
  const methodNode = get('method');
  if (methodNode) {
    const raw = (methodNode as { toJSON?: () => unknown }).toJSON?.();
    const list = typeof raw === 'string' ? [raw] : raw;
    const valid = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
    if (!Array.isArray(list) || !list.every((m) => typeof m === 'string' && valid.includes(m.toUpperCase()))) {
      at(methodNode, `${field}.when.method`, `expected an HTTP method or a list of them (${valid.join(', ')})`);
    } else methods = list.map((m: string) => m.toUpperCase());
  }
  const findingKind = get('finding')
    ? (enumValue(get('finding'), node, `${field}.when.finding`, ['attack', 'vulnerability'], at) as 'attack' | 'vulnerability' | undefined)
    : undefined;
  const ncaNode = get('new_client_address');
  const newClientAddress = isScalar(ncaNode) && ncaNode.value === true;
  if (ncaNode && !(isScalar(ncaNode) && typeof ncaNode.value === 'boolean')) {
    at(ncaNode, `${field}.when.new_client_address`, 'expected true or false');
  }
  if (!sink && !targetSinkField && !operationText && !routeText && !methods) {
    at(node, `${field}.when`, 'a policy rule needs at least one of sink, operation, statement/command/path/url, route or method');
  }
  return {
    sink: sink ?? (targetSinkField ? TARGET_FIELD_SINK[targetSinkField] : undefined),
    operation: operationText !== undefined ? compilePattern(operationText) : undefined,
    target,
    route: routeText !== undefined ? compilePattern(routeText) : undefined,
    methods,
    findingKind,
    newClientAddress,
  };
}

function parseExamples(node: YamlNode | undefined, field: string, file: string, lc: LineCounter, at: At): RuleExample[] {
  if (node === undefined) return [];
  if (!isSeq(node)) {
    at(node, `${field}.examples`, 'expected a list of `{ event: {...}, inputs: {...}, expect: match | no_match }`');
    return [];
  }
  const out: RuleExample[] = [];
  node.items.forEach((item, i) => {
    const f = `${field}.examples[${i}]`;
    if (!isMap(item)) return at(item as YamlNode, f, 'expected a mapping with event, inputs and expect');
    checkKeys(item, EXAMPLE_KEYS, f, at);
    const event = (item.get('event', true) as { toJSON?: () => unknown } | undefined)?.toJSON?.();
    const inputs = (item.get('inputs', true) as { toJSON?: () => unknown } | undefined)?.toJSON?.() ?? {};
    const expect = enumValue(item.get('expect', true) as YamlNode, item, `${f}.expect`, ['match', 'no_match'], at);
    if (!event || typeof event !== 'object' || Array.isArray(event)) return at(item, `${f}.event`, 'expected a mapping such as `{ kind: sql, sql: "SELECT 1" }`');
    if (typeof inputs !== 'object' || Array.isArray(inputs) || !Object.values(inputs as object).every((v) => typeof v === 'string')) {
      return at(item.get('inputs', true) as YamlNode, `${f}.inputs`, 'expected a mapping of input path to string, e.g. `{ query.id: "1 OR 1=1" }`');
    }
    const signals = (item.get('signals', true) as { toJSON?: () => unknown } | undefined)?.toJSON?.();
    if (signals !== undefined && (typeof signals !== 'object' || signals === null || Array.isArray(signals))) {
      return at(item.get('signals', true) as YamlNode, `${f}.signals`, 'expected a mapping of signal facts, e.g. `{ new_device: true, frequency: 3 }`');
    }
    const level = item.get('level', true) ? enumValue(item.get('level', true) as YamlNode, item, `${f}.level`, ['low', 'medium', 'high'], at) : undefined;
    if (expect) {
      out.push({
        event: event as Record<string, unknown>,
        inputs: inputs as Record<string, string>,
        expect: expect as 'match' | 'no_match',
        origin: `${file}:${lc.linePos(nodeOffset(item)).line}`,
        ...(signals ? { signals: signals as Record<string, unknown> } : {}),
        ...(level ? { level: level as 'low' | 'medium' | 'high' } : {}),
      });
    }
  });
  return out;
}

function checkKeys(node: YamlNode, allowed: readonly string[], field: string, at: At): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (!allowed.includes(key)) {
      at(pair.key as YamlNode, field ? `${field}.${key}` : key, `unknown field${didYouMean(key, allowed)}; allowed: ${allowed.join(', ')}`);
    }
  }
}

function requiredString(node: YamlNode | undefined, parent: YamlNode, field: string, at: At): string | undefined {
  if (node === undefined) {
    at(parent, field, `missing required field \`${field.split('.').pop()}\``);
    return undefined;
  }
  return optionalString(node, field, at);
}

function optionalString(node: YamlNode | undefined, field: string, at: At): string | undefined {
  if (node === undefined) return undefined;
  if (!isScalar(node) || typeof node.value !== 'string' || node.value.trim() === '') {
    at(node, field, `expected a non-empty string, got ${describe(node)}`);
    return undefined;
  }
  return node.value;
}

function enumValue(node: YamlNode | undefined, parent: YamlNode, field: string, allowed: readonly string[], at: At): string | undefined {
  const value = requiredString(node, parent, field, at);
  if (value === undefined) return undefined;
  if (!allowed.includes(value)) {
    at(node, field, `expected one of ${allowed.join(', ')}, got "${value}"${didYouMean(value, allowed)}`);
    return undefined;
  }
  return value;
}

function scalarText(node: YamlNode | undefined): string | undefined {
  return isScalar(node) && node.value !== null && node.value !== undefined ? String(node.value) : undefined;
}

function describe(node: YamlNode): string {
  if (isScalar(node)) return node.value === null ? 'nothing' : `${typeof node.value} ${JSON.stringify(node.value)}`;
  if (isSeq(node)) return 'a list';
  if (isMap(node)) return 'a mapping';
  return 'an unsupported value';
}

function nodeOffset(node: YamlNode | Pair | null | undefined): number {
  if (!node) return 0;
  if ('range' in node && Array.isArray(node.range)) return node.range[0];
  if ('key' in node && node.key && typeof node.key === 'object' && 'range' in node.key) return nodeOffset(node.key as YamlNode);
  return 0;
}

/** A stable UUID (v5-shaped, from SHA-1) so `security_rule.uuid` is the same on every host and restart. */
export function deriveUuid(ruleset: string, id: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- only for rules parsed from YAML, never at a compiled start
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const h = createHash('sha1').update(`stepguard:${ruleset}:${id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function didYouMean(value: string, options: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const option of options) {
    const d = editDistance(value.toLowerCase(), option.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = option;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(value.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
