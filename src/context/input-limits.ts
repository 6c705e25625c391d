import type { SinkEvent, UserInput } from '../events.js';
import type { Finding } from '../detectors/types.js';
import type { DetectionRule } from '../rules/types.js';
import { targetOf, type Decision } from '../rules/engine.js';
import { decodeText, type CollectorLimits, type InputCollector } from './user-input.js';

/**
 * What happens when a request carries more than the agent gathers up front (STEPGUARD_MAX_INPUTS,
 * STEPGUARD_MAX_INPUT_BYTES, nesting depth 32):
 *
 * 1. The search pass walks the whole request once (hard caps below) and, at each sink, hands the detectors
 *    the values that occur in the sink's text — so an attack placed after padding is judged like any other,
 *    and a padded request costs a bounded walk plus one `includes` per value, not a detector run per value.
 * 2. When even that cannot see everything — the raw body of an app without a body parser was cut at
 *    STEPGUARD_MAX_BODY_BYTES, nesting deeper than SEARCH_LIMITS.maxDepth, more than SEARCH_LIMITS values —
 *    the agent says so: one `input-limit` finding per request, and STEPGUARD_ON_INPUT_LIMIT decides.
 */

export type InputLimitReason = 'count' | 'bytes' | 'depth' | 'raw-body';

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
 * Hard caps of the search pass. Memory: ≤ 50,000 small records (≈ 120 bytes each with their path) plus decoded
 * copies of percent-/base64-encoded values; request strings and Buffers are referenced, not copied.
 */
export const SEARCH_LIMITS: CollectorLimits = Object.freeze({
  maxInputs: 50_000,
  maxInputBytes: 64 << 20,
  maxDepth: 1000,
  eagerBufferBytes: 64 * 1024,
});

/** Shorter values occur in almost any text by chance; they stay in the budget pass only. */
const MIN_SEARCHED_LENGTH = 2;

/**
 * Values of the search pass that occur in `sinkText` and are not in the budget already. At most `max` of
 * them: more means the request was built from the sink's own text, which is reported as a `count` limit.
 */
export function occurringIn(sinkText: string, search: InputCollector, budget: InputCollector, max: number): { found: UserInput[]; overflow: boolean } {
  const found: UserInput[] = [];
  for (const input of search.values()) {
    const v = input.value;
    if (v.length < MIN_SEARCHED_LENGTH || v.length > sinkText.length || budget.has(v) || !sinkText.includes(v)) continue;
    if (found.length >= max) return { found, overflow: true };
    found.push(input);
  }
  for (const deferred of search.deferredBuffers) {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: a longer buffer cannot fit in the text.
    if (deferred.buffer.length > sinkText.length * 3) continue;
    if (deferred.text === undefined) deferred.text = decodeText(deferred.buffer);
    const v = deferred.text;
    if (v === null || v.length < MIN_SEARCHED_LENGTH || v.length > sinkText.length || budget.has(v) || !sinkText.includes(v)) continue;
    if (found.length >= max) return { found, overflow: true };
    found.push({ source: deferred.source, path: deferred.path, value: v });
  }
  return { found, overflow: false };
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
  return targetOf(event);
}
