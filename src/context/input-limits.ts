import type { SinkEvent, UserInput } from '../events.js';
import type { Finding } from '../detectors/types.js';
import type { DetectionRule } from '../rules/types.js';
import { targetOf, type Decision } from '../rules/engine.js';
import type { InputSource } from '../events.js';
import { decodeText, hasDecodedForms, InputCollector, isBinary, joinPath, SNIFF_BYTES } from './user-input.js';

/**
 * What happens when a request carries more than the agent gathers up front (STEPGUARD_MAX_INPUTS,
 * STEPGUARD_MAX_INPUT_BYTES, nesting depth 32):
 *
 * 1. The first sink walks the whole request once (hard caps below) into a flat list of its values
 *    (RequestLeaves); at each sink the search pass hands the detectors the values of that list that occur in the
 *    sink's text — so an attack placed after padding is judged like any other, and a padded request costs one
 *    walk per request and one linear scan of its values per sink, not a detector run per value.
 * 2. When even that cannot see everything — the raw body of an app without a body parser was cut at
 *    STEPGUARD_MAX_BODY_BYTES, nesting deeper than SEARCH_MAX_DEPTH, more than SEARCH_MAX_VALUES values —
 *    the agent says so: one `input-limit` finding per request, and STEPGUARD_ON_INPUT_LIMIT decides.
 */

export type InputLimitReason = 'count' | 'bytes' | 'depth' | 'raw-body' | 'budget';

export interface InputLimitExceeded {
  readonly reason: InputLimitReason;
  /** Where the agent stopped looking, e.g. `body.a.a.a`, `body` (never a value). */
  readonly path: string;
}

export interface InputsForSink {
  readonly inputs: readonly UserInput[];
  /** Set when part of the request could not be judged for this sink. */
  readonly limitExceeded: InputLimitExceeded | undefined;
}

/**
 * The hard budget of one inspection, in CPU time: BUDGET_BASE_MS plus BUDGET_MS_PER_KB per KB of sink text.
 * Every tokenizer and detector is linear (test/fuzz/complexity.test.ts); the slowest adversarial shape
 * measured costs about 0.5-1 ms per KB on a loaded 2-core machine (`COMPLEXITY_REPORT=1`), so the rate keeps
 * at least twice that: no input shape reaches the budget on its own, and a stopped judgement cannot be
 * bought with padding. When the budget is spent the judgement stops (src/grammar/work-budget.ts) and the
 * request gets an `input-limit` finding (reason `budget`), refused under STEPGUARD_ON_INPUT_LIMIT=block in
 * block mode. Only sink texts of at least BUDGET_CHECK_CHARS are budgeted: shorter ones cannot come near it.
 */
export const INSPECTION_BUDGET = { baseMs: 100, msPerKb: 2, checkChars: 16 * 1024 };

/** CPU milliseconds allowed to judge a sink text of `chars` characters. */
export function inspectionBudgetMs(chars: number): number {
  return INSPECTION_BUDGET.baseMs + (INSPECTION_BUDGET.msPerKb * chars) / 1024;
}

/** Hard caps of the search pass: nesting it walks, and request values it looks at per sink. */
export const SEARCH_MAX_DEPTH = 1000;
export const SEARCH_MAX_VALUES = 200_000;

/** Shorter values occur in almost any text by chance; they stay in the budget pass only. */
const MIN_SEARCHED_LENGTH = 2;
/** A value can be in the text, raw or decoded, only if it is at most this many times longer (`%E2%80%A8` → 1 char). */
const MAX_ENCODED_RATIO = 9;

/**
 * Every value of the request as sent (keys, values, Buffers), walked once per request under the search pass's
 * hard caps and kept by reference in parallel arrays (no object per value): each later sink of the request
 * searches this list instead of walking the request again (a 10,000-key body cost one full walk per sink).
 * Decoded forms are derived per sink, and only for values short enough to be in its text.
 */
const LEAF_PLAIN = 0;
const LEAF_KEY = 1;
const LEAF_DECODES = 2;
const LEAF_BUFFER = 3;

export class RequestLeaves extends InputCollector {
  readonly sources: InputSource[] = [];
  readonly paths: string[] = [];
  readonly values: Array<string | Buffer> = [];
  /** LEAF_* per value: what the search pass must do with it beyond a plain substring test. */
  readonly kinds: number[] = [];
  private visited = 0;

  /** `budget`: values it holds and that have no decoded form can never be found by the search: not kept. */
  constructor(private readonly budget?: InputCollector) {
    super({ maxInputs: Number.MAX_SAFE_INTEGER, maxInputBytes: Number.MAX_SAFE_INTEGER, maxDepth: SEARCH_MAX_DEPTH });
  }

  get length(): number {
    return this.values.length;
  }

  override add(source: InputSource, path: string, value: string, isKey = false): void {
    if (this.full) return;
    if (++this.visited > SEARCH_MAX_VALUES) return this.skip('count', path);
    this.push(source, path, value, isKey);
  }

  override addNamed(source: InputSource, parent: string, name: string | number, value: string, isKey = false): void {
    this.add(source, joinPath(parent, name), value, isKey);
  }

  override addBuffer(source: InputSource, path: string, buffer: Buffer): void {
    if (this.full || buffer.length === 0) return;
    if (++this.visited > SEARCH_MAX_VALUES) return this.skip('count', path);
    this.push(source, path, buffer, false);
  }

  private push(source: InputSource, path: string, value: string | Buffer, isKey: boolean): void {
    const kind = typeof value !== 'string' ? LEAF_BUFFER : isKey ? LEAF_KEY : hasDecodedForms(value) ? LEAF_DECODES : LEAF_PLAIN;
    if ((kind === LEAF_PLAIN || kind === LEAF_KEY) && this.budget?.has(value as string)) return;
    this.sources.push(source);
    this.paths.push(path);
    this.values.push(value);
    this.kinds.push(kind);
  }
}

/**
 * The search pass for one sink: goes through the request's leaves (RequestLeaves, the same sources and the
 * same decoded forms as the budget pass) but keeps only values the sink text contains and the budget does not
 * hold. Nothing is kept for values that are not in the text, values too long to be in it are not decoded, and
 * a Buffer is decoded only when the text is long enough to hold it.
 */
export class SearchCollector extends InputCollector {
  readonly found: UserInput[] = [];
  private readonly foundValues = new Set<string>();
  private visited = 0;
  /** More values of the request occur in the text than `max`. */
  overflow = false;

  constructor(
    private readonly sinkText: string,
    private readonly budget: InputCollector,
    private readonly max: number,
  ) {
    super({ maxInputs: Number.MAX_SAFE_INTEGER, maxInputBytes: Number.MAX_SAFE_INTEGER, maxDepth: SEARCH_MAX_DEPTH });
  }

  /** Searches every leaf of the request (walked once per request) for this sink. */
  searchLeaves(leaves: RequestLeaves): void {
    const { sources, paths, values, kinds } = leaves;
    const text = this.sinkText;
    for (let i = 0; i < values.length && !this.full; i++) {
      const value = values[i]!;
      const kind = kinds[i]!;
      if (kind === LEAF_BUFFER) this.addBuffer(sources[i]!, paths[i]!, value as Buffer);
      else if (kind === LEAF_DECODES) this.add(sources[i]!, paths[i]!, value as string);
      else {
        // Most values have no decoded form: one substring test, and the bookkeeping only for those it finds.
        const v = value as string;
        if (v.length >= MIN_SEARCHED_LENGTH && v.length <= text.length && text.includes(v)) this.add(sources[i]!, paths[i]!, v, kind === LEAF_KEY);
      }
    }
  }

  override add(source: InputSource, path: string, value: string, isKey = false): void {
    if (this.full) return;
    if (++this.visited > SEARCH_MAX_VALUES) return this.skip('count', path);
    if (value.length > this.sinkText.length * MAX_ENCODED_RATIO) return;
    // Keys as sent: a parameter name an app decodes before concatenating is rare, and decoding each costs.
    if (isKey) this.addExact(source, path, undefined, value, true);
    else super.add(source, path, value);
  }

  override addNamed(source: InputSource, parent: string, name: string | number, value: string, isKey = false): void {
    this.add(source, joinPath(parent, name), value, isKey);
  }

  override addBuffer(source: InputSource, path: string, buffer: Buffer): void {
    // UTF-8 takes at least one byte per UTF-16 unit… and at most 3: a longer buffer cannot fit in the text.
    if (buffer.length === 0 || buffer.length > this.sinkText.length * 3 || isBinary(buffer.subarray(0, SNIFF_BYTES))) return;
    const text = decodeText(buffer);
    if (text !== null) this.add(source, path, text);
  }

  protected override addExact(source: InputSource, parent: string, name: string | number | undefined, value: string, isKey = false): boolean {
    if (this.full) return false;
    const v = value;
    if (v.length >= MIN_SEARCHED_LENGTH && v.length <= this.sinkText.length && this.sinkText.includes(v) && !this.foundValues.has(v) && !this.budget.has(v)) {
      const path = joinPath(parent, name);
      if (this.found.length >= this.max) {
        this.overflow = true;
        this.skip('count', path);
        return false;
      }
      this.foundValues.add(v);
      this.found.push(isKey ? { source, path, value: v, isKey } : { source, path, value: v });
    }
    return true; // its decoded forms may be in the text even when it is not
  }
}

// ---------------------------------------------------------------------------------------------------------
// The finding and the policy (STEPGUARD_ON_INPUT_LIMIT).

export type InputLimitPolicy = 'monitor' | 'block';

export const INPUT_LIMIT_DETECTOR = 'input-limit';

interface PolicySettings {
  readonly mode: string;
  readonly onInputLimit: InputLimitPolicy;
}

const refuses = (settings: PolicySettings) => settings.onInputLimit === 'block' && settings.mode === 'block';

/**
 * The finding for this sink call, or undefined: reported once per request, except where the policy refuses —
 * then every sensitive sink call of the request is refused (and each refusal recorded).
 */
export function inputLimitFindingFor(ctx: { inputLimitReported: boolean }, limit: InputLimitExceeded, settings: PolicySettings, event: SinkEvent): Finding | undefined {
  if (ctx.inputLimitReported && !refuses(settings)) return undefined;
  // `require()` during a request reads module files: no request input names them, and refusing would break the app.
  if (event.kind === 'fs' && fromModuleLoader()) return undefined;
  ctx.inputLimitReported = true;
  return inputLimitFinding(limit);
}

const MAX_PATH_LENGTH = 120;

/** The finding: no input value (there is none to show), the limit and the path where the agent stopped. */
export function inputLimitFinding(limit: InputLimitExceeded): Finding {
  const source = limit.path.split('.', 1)[0] as UserInput['source'];
  const path = limit.path.length > MAX_PATH_LENGTH ? `${limit.path.slice(0, MAX_PATH_LENGTH)}…` : limit.path;
  return { detector: INPUT_LIMIT_DETECTOR, kind: 'input-limit', reason: limit.reason, input: { source, path, value: '' }, start: 0, end: 0 };
}

/** The current call comes from Node's module loader. Reads a stack, so only on this rare path. */
function fromModuleLoader(): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  try {
    return /\(node:internal\/modules\//.test(new Error().stack ?? '');
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The built-in rule a refusal cites (span `security_rule.*`, BlockedError). */
export const INPUT_LIMIT_RULE: DetectionRule = Object.freeze({
  type: 'detection',
  detector: INPUT_LIMIT_DETECTOR,
  on: 'input-limit',
  action: 'block',
  stepUp: undefined,
  examples: Object.freeze([]),
  meta: Object.freeze({
    id: 'stepguard.input-limit',
    uuid: '6f1d3a52-4c1e-4f7e-9a53-0b8e2f3d9c41',
    title: 'Request input beyond what the agent can judge',
    category: 'input-limit',
    version: '1',
    description: 'Part of the request could not be judged (STEPGUARD_ON_INPUT_LIMIT=block refuses the sink call)',
    reference: undefined,
    ruleset: 'stepguard-builtin',
    origin: 'built-in',
  }),
});

/**
 * Adds the policy's verdict on an `input-limit` finding to the engine's decision: with
 * STEPGUARD_ON_INPUT_LIMIT=block in block mode, the sink call is refused unless a rule decided something
 * at least as strong already.
 */
export function applyInputLimitPolicy(decision: Decision, findings: readonly Finding[], settings: PolicySettings): Decision {
  if (!refuses(settings)) return decision;
  const finding = findings.find((f) => f.kind === 'input-limit');
  if (!finding || decision.action === 'block') return decision;
  const match = { rule: INPUT_LIMIT_RULE, finding, action: 'block' as const };
  return { action: 'block', decisive: match, matches: [...decision.matches, match] };
}

/** The text a sink's inputs can occur in: its target, and for a redirect hop the first URL of the chain. */
export function searchTextOf(event: SinkEvent): string {
  if (event.kind === 'http.out') return event.redirectFrom ? `${event.url}\n${event.redirectFrom}` : event.url;
  if (event.kind === 'config' && event.data !== undefined) return event.data;
  return targetOf(event);
}
