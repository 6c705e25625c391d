import type { Node as YamlNode, Pair, Scalar, YAMLMap } from 'yaml';
import { expandAcr } from '../stepup/tiers.js';
import { ACTIONS, type Action, type LoginWatch, type StepUpRequirement } from './types.js';
import { compilePattern, patternProblem } from './pattern.js';
import { labelOf, RISK_LEVELS, SIGNAL_NAMES, SUBJECTS, type RiskCondition, type RiskLevel, type RiskPolicy, type SignalCondition, type Subject } from '../risk/types.js';

/**
 * The adaptive parts of a rule file: `risk:` signal lists, `act_at`, `acr_values` per level, the `flag`
 * action (alone or in a list) and the top-level `login:` watch. Same error style as load.ts: file, line,
 * field, and the fix.
 */

type At = (node: YamlNode | Pair | null | undefined, field: string, message: string) => void;

/* eslint-disable @typescript-eslint/no-require-imports -- the YAML parser is already loaded when this runs */
const yaml = (): typeof import('yaml') => require('yaml') as typeof import('yaml');
/* eslint-enable @typescript-eslint/no-require-imports */
const isMap = (node: unknown): node is YAMLMap<unknown, unknown> => yaml().isMap(node);
const isScalar = (node: unknown): node is Scalar<unknown> => yaml().isScalar(node);
const json = (node: unknown): unknown => (node as { toJSON?: () => unknown } | undefined)?.toJSON?.();


const MAX_WINDOW_SECONDS = 30 * 86_400;
const MAX_QUIET_SECONDS = 365 * 86_400;
const MAX_COUNT = 100_000;

/** `action: step_up`, `action: flag`, `action: [flag, step_up]` → the enforcing action and whether to flag. */
export function parseActions(node: YamlNode | undefined, parent: YamlNode, field: string, at: At, didYouMean: (value: string, options: readonly string[]) => string): { action: Action; flag: boolean } | undefined {
  const allowed = [...ACTIONS, 'flag'];
  if (node === undefined) {
    at(parent, field, 'missing required field `action` (monitor, step_up, block, flag, or a list such as [flag, step_up])');
    return undefined;
  }
  const raw = json(node);
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((a) => typeof a === 'string' && allowed.includes(a))) {
    // A single unknown word keeps the message every other enum field uses; `flag` and lists are the extensions.
    if (typeof raw === 'string') at(node, field, `expected one of ${ACTIONS.join(', ')}, got ${JSON.stringify(raw)}${didYouMean(raw, allowed)}; or flag, or a list such as [flag, step_up]`);
    else at(node, field, `expected one of ${allowed.join(', ')} or a list of them (at most one besides flag), got ${JSON.stringify(raw)}`);
    return undefined;
  }
  const enforcing = list.filter((a) => a !== 'flag') as Action[];
  if (enforcing.length > 1) {
    at(node, field, `at most one of monitor, step_up, block per rule (flag combines with any), got ${enforcing.join(', ')}`);
    return undefined;
  }
  return { action: enforcing[0] ?? 'monitor', flag: list.includes('flag') };
}

/** `10m`, `1h`, `30s`, `7d` or whole seconds. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,7})(s|m|h|d)$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export function parseRisk(node: YamlNode, actAtNode: YamlNode | undefined, field: string, at: At): RiskPolicy | undefined {
  const f = `${field}.risk`;
  if (!yaml().isSeq(node) || node.items.length === 0) {
    at(node, f, 'expected a list of signals, e.g. `- new_device: true` / `- frequency: { per: user, window: 10m, at_least: 4 }` (each may add `level: high`)');
    return undefined;
  }
  const conditions: RiskCondition[] = [];
  node.items.forEach((item, i) => {
    const fi = `${f}[${i}]`;
    if (!isMap(item)) return at(item as YamlNode, fi, `expected a mapping with one signal (${SIGNAL_NAMES.join(', ')}) and optionally \`level\``);
    const keys = item.items.map((p) => String(isScalar(p.key) ? p.key.value : p.key));
    const names = keys.filter((k) => k !== 'level');
    for (const k of names) if (!(SIGNAL_NAMES as readonly string[]).includes(k)) at(item.items.find((p) => String((p.key as Scalar).value) === k)?.key as YamlNode, `${fi}.${k}`, `unknown signal; known: ${SIGNAL_NAMES.join(', ')}`);
    if (names.length !== 1) return at(item, fi, 'exactly one signal per list item (write two items to combine signals)');
    const name = names[0]!;
    if (!(SIGNAL_NAMES as readonly string[]).includes(name)) return;
    const levelNode = item.get('level', true) as YamlNode | undefined;
    const levelText = levelNode ? json(levelNode) : 'medium';
    if (levelText !== 'medium' && levelText !== 'high') return at(levelNode, `${fi}.level`, 'expected medium or high (the level this signal raises the risk to; default medium)');
    const condition = parseSignal(name, item.get(name, true) as YamlNode, `${fi}.${name}`, at);
    if (condition) conditions.push({ condition, level: levelText, label: labelOf(condition) });
  });
  let actAt: RiskLevel = conditions.some((c) => c.level === 'medium') ? 'medium' : 'high';
  if (actAtNode) {
    const v = json(actAtNode);
    if (typeof v !== 'string' || !(RISK_LEVELS as readonly string[]).includes(v)) at(actAtNode, `${field}.act_at`, 'expected low, medium or high: the level from which the rule applies');
    else actAt = v as RiskLevel;
  }
  return conditions.length === node.items.length ? { conditions, actAt } : undefined;
}

function parseSignal(name: string, node: YamlNode, field: string, at: At): SignalCondition | undefined {
  const raw = json(node);
  const flagOnly = (signal: 'new_device' | 'new_client_address' | 'flagged_account'): SignalCondition | undefined => {
    if (raw !== true) return at(node, field, `expected true (\`${signal}: true\`); to not use the signal, leave it out`), undefined;
    return { signal };
  };
  switch (name) {
    case 'new_device':
    case 'new_client_address':
    case 'flagged_account':
      return flagOnly(name);
    case 'vulnerable_route': {
      if (raw === true) return { signal: 'vulnerable_route', quietSeconds: 7 * 86_400 };
      const o = params(raw, ['quiet'], node, field, at);
      if (!o) return undefined;
      const quiet = range(o.quiet, 'quiet', 1, MAX_QUIET_SECONDS, node, field, at, true);
      return quiet === undefined ? undefined : { signal: 'vulnerable_route', quietSeconds: quiet };
    }
    case 'client_addresses': {
      const o = params(raw, ['window', 'at_least'], node, field, at);
      if (!o) return undefined;
      const w = range(o.window, 'window', 1, MAX_WINDOW_SECONDS, node, field, at, true);
      const n = range(o.at_least, 'at_least', 2, 1000, node, field, at, false);
      return w === undefined || n === undefined ? undefined : { signal: 'client_addresses', windowSeconds: w, atLeast: n };
    }
    case 'frequency': {
      const o = params(raw, ['per', 'window', 'at_least'], node, field, at);
      if (!o) return undefined;
      const per = o.per ?? 'user';
      if (typeof per !== 'string' || !(SUBJECTS as readonly string[]).includes(per)) return at(node, `${field}.per`, `expected ${SUBJECTS.join(', ')}`), undefined;
      const w = range(o.window, 'window', 1, MAX_WINDOW_SECONDS, node, field, at, true);
      const n = range(o.at_least, 'at_least', 2, 10_000, node, field, at, false);
      return w === undefined || n === undefined ? undefined : { signal: 'frequency', per: per as Subject, windowSeconds: w, atLeast: n };
    }
    case 'failed_logins': {
      const o = params(raw, ['per', 'window', 'at_least', 'distinct_addresses', 'distinct_accounts'], node, field, at);
      if (!o) return undefined;
      const per = o.per ?? 'account';
      if (per !== 'account' && per !== 'address') return at(node, `${field}.per`, 'expected account or address'), undefined;
      if (per === 'account' && o.distinct_accounts !== undefined) return at(node, `${field}.distinct_accounts`, 'applies to `per: address`; per account use distinct_addresses'), undefined;
      if (per === 'address' && o.distinct_addresses !== undefined) return at(node, `${field}.distinct_addresses`, 'applies to `per: account`; per address use distinct_accounts'), undefined;
      const w = range(o.window, 'window', 1, MAX_WINDOW_SECONDS, node, field, at, true);
      const n = range(o.at_least, 'at_least', 1, MAX_COUNT, node, field, at, false);
      const d = o.distinct_addresses ?? o.distinct_accounts;
      const distinct = d === undefined ? undefined : range(d, per === 'account' ? 'distinct_addresses' : 'distinct_accounts', 2, 1000, node, field, at, false);
      if (w === undefined || n === undefined || (d !== undefined && distinct === undefined)) return undefined;
      return { signal: 'failed_logins', per, windowSeconds: w, atLeast: n, distinct };
    }
    case 'recent_attack': {
      const o = params(raw, ['per', 'window'], node, field, at);
      if (!o) return undefined;
      const perRaw = o.per ?? ['user', 'session', 'address'];
      const per = typeof perRaw === 'string' ? [perRaw] : perRaw;
      if (!Array.isArray(per) || per.length === 0 || !per.every((p) => (SUBJECTS as readonly unknown[]).includes(p))) return at(node, `${field}.per`, `expected one or a list of ${SUBJECTS.join(', ')}`), undefined;
      const w = range(o.window, 'window', 1, MAX_WINDOW_SECONDS, node, field, at, true);
      return w === undefined ? undefined : { signal: 'recent_attack', per: per as Subject[], windowSeconds: w };
    }
    default:
      return undefined;
  }
}

function params(raw: unknown, allowed: readonly string[], node: YamlNode, field: string, at: At): Record<string, unknown> | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    at(node, field, `expected a mapping with ${allowed.join(', ')}`);
    return undefined;
  }
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!allowed.includes(k)) at(node, `${field}.${k}`, `unknown field; allowed: ${allowed.join(', ')}`);
  return Object.keys(o).every((k) => allowed.includes(k)) ? o : undefined;
}

function range(value: unknown, name: string, min: number, max: number, node: YamlNode, field: string, at: At, duration: boolean): number | undefined {
  const n = duration ? parseDuration(value) : typeof value === 'number' && Number.isInteger(value) ? value : undefined;
  if (value === undefined) {
    at(node, `${field}.${name}`, `missing; ${duration ? 'a duration such as 10m, 1h, 30s or 7d' : `a whole number between ${min} and ${max}`}`);
    return undefined;
  }
  if (n === undefined || n < min || n > max) {
    at(node, `${field}.${name}`, duration ? `expected a duration between ${min}s and ${max / 86_400}d such as 10m, 1h or 30s, got ${JSON.stringify(value)}` : `expected a whole number between ${min} and ${max}, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return n;
}

/** `acr_values: { medium: [otp], high: [phr] }`. */
export function parseAcrByLevel(node: YAMLMap<unknown, unknown>, field: string, at: At): StepUpRequirement['acrByLevel'] {
  const out: Partial<Record<RiskLevel, readonly string[]>> = {};
  for (const pair of node.items) {
    const level = String(isScalar(pair.key) ? pair.key.value : pair.key);
    if (!(RISK_LEVELS as readonly string[]).includes(level)) {
      at(pair.key as YamlNode, `${field}.${level}`, 'expected a risk level: low, medium or high');
      continue;
    }
    const raw = json(pair.value);
    const list = typeof raw === 'string' ? raw.split(/\s+/).filter(Boolean) : raw;
    if (!Array.isArray(list) || list.length === 0 || !list.every((v) => typeof v === 'string' && /^[\x21-\x7e]+$/.test(v) && !v.includes('"'))) {
      at(pair.value as YamlNode, `${field}.${level}`, 'expected a non-empty list of ACR values (otp, phr or URNs)');
      continue;
    }
    out[level as RiskLevel] = (list as string[]).map(expandAcr);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Top-level `login: { route: /login, method: POST, failure_status: [401, 403], account: body.username }`. */
export function parseLogin(node: YamlNode, file: string, line: number, at: At): LoginWatch | undefined {
  const raw = json(node);
  const field = 'login';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    at(node, field, 'expected `login: { route: /login, method: POST, failure_status: [401], account: body.username }`');
    return undefined;
  }
  const o = raw as Record<string, unknown>;
  const allowed = ['route', 'method', 'failure_status', 'account'];
  let ok = true;
  for (const k of Object.keys(o)) if (!allowed.includes(k)) (at(node, `${field}.${k}`, `unknown field; allowed: ${allowed.join(', ')}`), (ok = false));
  const route = o.route;
  if (typeof route !== 'string' || !route.startsWith('/')) (at(node, `${field}.route`, 'expected the login path pattern, starting with "/", e.g. /login'), (ok = false));
  else if (patternProblem(route)) (at(node, `${field}.route`, patternProblem(route)!), (ok = false));
  const methodsRaw = o.method ?? 'POST';
  const methods = (typeof methodsRaw === 'string' ? [methodsRaw] : methodsRaw) as unknown;
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string' && /^(GET|POST|PUT|PATCH)$/i.test(m))) (at(node, `${field}.method`, 'expected POST (or GET, PUT, PATCH, or a list)'), (ok = false));
  const statusRaw = o.failure_status ?? [401, 403];
  const status = (typeof statusRaw === 'number' ? [statusRaw] : statusRaw) as unknown;
  if (!Array.isArray(status) || status.length === 0 || !status.every((s) => Number.isInteger(s) && s >= 200 && s <= 599)) (at(node, `${field}.failure_status`, 'expected HTTP status codes, e.g. [401, 403]'), (ok = false));
  const account = o.account;
  if (typeof account !== 'string' || !/^(body|query|params|headers|cookies)\.[A-Za-z0-9_.-]+$/.test(account)) (at(node, `${field}.account`, 'expected the input naming the account, e.g. body.username or query.user'), (ok = false));
  if (!ok) return undefined;
  return {
    route: compilePattern(route as string),
    methods: (methods as string[]).map((m) => m.toUpperCase()),
    failureStatus: status as number[],
    account: account as string,
    origin: `${file}:${line}`,
  };
}
