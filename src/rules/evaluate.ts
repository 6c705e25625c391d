import type { InputSource, SinkEvent, UserInput } from '../events.js';
import type { Finding } from '../detectors/types.js';
import { DETECTORS } from '../detectors/index.js';
import { detectorsUsedBy, judge } from '../judge/judge.js';
import { RuleEngine, type Decision } from './engine.js';
import type { Rule, RuleExample } from './types.js';
import { factsFromSignals } from '../risk/stated-facts.js';

/**
 * Offline evaluation of rules — what `stepguard rules test` and `stepguard rules explain` run. It calls the
 * same judge as the agent (same detectors, same coincidence and shell decisions, same engine); only the
 * request is described by hand instead of observed.
 */

export interface DescribedRequest {
  readonly method?: string;
  readonly route?: string;
  readonly path?: string;
  readonly newClientAddress?: boolean;
  /** Stated signal facts (`rules test` examples, `rules explain --signal`). */
  readonly signals?: Readonly<Record<string, unknown>>;
}

export interface Evaluation {
  readonly event: SinkEvent;
  readonly inputs: readonly UserInput[];
  readonly findings: readonly Finding[];
  readonly decision: Decision;
}

const SOURCES: readonly InputSource[] = ['query', 'body', 'params', 'path', 'cookies', 'headers', 'files'];

/**
 * `{ "query.q": "' OR 1=1" }` → user inputs with their sources, as the agent gathers them: `path.N` is the
 * N-th URL path segment; a `key:` prefix (`key:body.user.name`) makes the value an object key or parameter
 * name rather than a value.
 */
export function inputsFrom(map: Record<string, string>): UserInput[] {
  return Object.entries(map).map(([written, value]) => {
    const isKey = written.startsWith(KEY_PREFIX);
    const path = isKey ? written.slice(KEY_PREFIX.length) : written;
    const head = path.split('.')[0] as InputSource;
    const input: UserInput = { source: SOURCES.includes(head) ? head : 'query', path, value };
    return isKey ? { ...input, isKey } : input;
  });
}

const KEY_PREFIX = 'key:';

/**
 * Builds a sink event from a rule example's `event:` mapping. Throws with a message naming the missing
 * field, so a broken example fails `rules test` readably.
 */
export function eventFrom(raw: Record<string, unknown>): { event: SinkEvent; request: DescribedRequest } {
  const str = (key: string): string | undefined => (typeof raw[key] === 'string' ? (raw[key] as string) : undefined);
  const need = (key: string): string => {
    const v = str(key);
    if (v === undefined) throw new Error(`event.${key} is required for kind ${String(raw.kind)}`);
    return v;
  };
  const request: DescribedRequest = {
    method: str('method')?.toUpperCase(),
    route: str('route'),
    path: str('path_info') ?? str('route'),
    newClientAddress: raw.new_client_address === true,
  };
  switch (raw.kind) {
    case 'sql': {
      const dialect = str('dialect') === 'mysql' ? 'mysql' : 'postgres';
      return {
        event: { kind: 'sql', op: str('op') ?? (dialect === 'mysql' ? 'mysql2.query' : 'pg.query'), dialect, system: dialect === 'mysql' ? 'mysql' : 'postgresql', sql: need('sql') },
        request,
      };
    }
    case 'exec': {
      const command = str('command');
      if (command !== undefined) return { event: { kind: 'exec', op: str('op') ?? 'child_process.exec', file: command, args: [], shell: true }, request };
      const args = Array.isArray(raw.args) ? raw.args.map(String) : [];
      const shell = typeof raw.shell === 'string' || typeof raw.shell === 'boolean' ? raw.shell : undefined;
      return { event: { kind: 'exec', op: str('op') ?? 'child_process.execFile', file: need('file'), args, shell }, request };
    }
    case 'fs':
      return { event: { kind: 'fs', op: str('op') ?? 'fs.readFile', path: need('path'), write: raw.write === true }, request };
    case 'http.out':
      return { event: { kind: 'http.out', op: str('op') ?? 'fetch', url: need('url'), address: str('address'), redirectFrom: str('redirect_from') }, request };
    default:
      return eventFromOtherKind(raw, request);
  }
}

/** Sink kinds added after the core four: built generically from their fields. */
function eventFromOtherKind(raw: Record<string, unknown>, request: DescribedRequest): { event: SinkEvent; request: DescribedRequest } {
  if (raw.kind === 'code' && typeof raw.source === 'string') {
    return { event: { kind: 'code', op: typeof raw.op === 'string' ? raw.op : 'Function', source: raw.source } as SinkEvent, request };
  }
  const partB = responseSinkEventFrom(raw);
  if (partB) return { event: partB, request };
  throw new Error(`event.kind must be one of sql, exec, fs, http.out, code, redirect (with location), html (with html), deserialize (with text, format), xml (with xml, external_entities?); got ${JSON.stringify(raw.kind)}`);
}

/** Issue #12 part B sinks (response and parser sinks). */
function responseSinkEventFrom(raw: Record<string, unknown>): SinkEvent | undefined {
  const str = (key: string): string | undefined => (typeof raw[key] === 'string' ? (raw[key] as string) : undefined);
  switch (raw.kind) {
    case 'redirect': {
      const location = str('location');
      return location === undefined ? undefined : { kind: 'redirect', op: str('op') ?? 'res.setHeader', location, self: str('host') ?? 'app.example' };
    }
    case 'html': {
      const html = str('html');
      return html === undefined ? undefined : { kind: 'html', op: str('op') ?? 'res.end', html };
    }
    case 'deserialize': {
      const text = str('text');
      const format = str('format') === 'yaml' ? 'yaml' : 'node-serialize';
      return text === undefined ? undefined : { kind: 'deserialize', op: str('op') ?? (format === 'yaml' ? 'js-yaml.load' : 'node-serialize.unserialize'), format, text };
    }
    case 'xml': {
      const xml = str('xml');
      return xml === undefined ? undefined : { kind: 'xml', op: str('op') ?? 'libxmljs2.parseXml', xml, externalEntities: raw.external_entities !== false };
    }
    case 'config': {
      const text = str('text');
      if (text === undefined) return undefined;
      const check = str('check') === 'hash' ? 'hash' : 'response';
      const randomCookies = Array.isArray(raw.random_cookies) ? raw.random_cookies.map(String) : [];
      return { kind: 'config', op: str('op') ?? (check === 'hash' ? 'crypto.createHash' : 'res.writeHead'), check, text, https: raw.https === true, data: str('data'), randomCookies };
    }
    default:
      return undefined;
  }
}

/** The judge, as the agent runs it, with the rule set in block mode (the CLI shows what block mode does). */
export function evaluate(rules: readonly Rule[], event: SinkEvent, inputs: readonly UserInput[], request: DescribedRequest, earlier: readonly Finding[] = []): Evaluation {
  const engine = new RuleEngine({ rules, files: [] }, 'block');
  const { findings, decision } = judge({
    event,
    detectors: detectorsUsedBy(engine, DETECTORS),
    inputs: () => inputs,
    engine,
    facts: () => ({
      method: request.method,
      urlPath: request.path,
      route: request.route,
      earlierFindings: earlier,
      isNewClientAddress: () => request.newClientAddress,
      risk: factsFromSignals({ new_client_address: request.newClientAddress === true, ...request.signals }),
    }),
  });
  return { event, inputs, findings, decision };
}

export interface ExampleResult {
  readonly rule: Rule;
  readonly example: RuleExample;
  readonly passed: boolean;
  readonly matched: boolean;
  readonly detail: string;
}

/** One rule example: does the rule match (or not) as the example says? */
export function runExample(rule: Rule, example: RuleExample, allRules: readonly Rule[]): ExampleResult {
  let built: ReturnType<typeof eventFrom>;
  try {
    built = eventFrom(example.event);
  } catch (error) {
    return { rule, example, passed: false, matched: false, detail: (error as Error).message };
  }
  const request = example.signals ? { ...built.request, signals: example.signals } : built.request;
  const evaluation = evaluate(allRules, built.event, inputsFrom(example.inputs), request);
  const match = evaluation.decision.matches.find((m) => m.rule.meta.id === rule.meta.id);
  const matched = match !== undefined;
  const level = evaluation.decision.assessed?.find((a) => a.rule.meta.id === rule.meta.id)?.assessment.level;
  const levelOk = example.level === undefined || example.level === level;
  const passed = matched === (example.expect === 'match') && levelOk;
  if (!levelOk) return { rule, example, passed, matched, detail: `expected level ${example.level}, got ${level ?? 'none (no risk signals assessed)'}` };
  const findings = evaluation.findings.map((f) => `${f.kind} ${f.detector} (${f.reason}) on ${f.input?.path ?? 'the configuration'}`).join('; ') || 'no findings';
  const detail = passed ? '' : `expected ${example.expect === 'match' ? 'a match' : 'no match'}, got ${matched ? 'a match' : 'no match'} — ${findings}`;
  return { rule, example, passed, matched, detail };
}
