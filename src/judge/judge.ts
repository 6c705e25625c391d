import type { SinkEvent, UserInput } from '../events.js';
import type { AnyDetector, Finding, ValueScreen } from '../detectors/types.js';
import type { Decision, RequestFacts, RuleEngine } from '../rules/engine.js';

/**
 * THE judgement of one sink call: event + request inputs + rules (+ request facts) → findings + decision.
 * The running agent (`inspect`) and `stepguard rules test/explain` both call it, so they cannot disagree.
 *
 * Pure: no I/O, no module state, no clock. Everything that depends on the request arrives as a function
 * the judge calls only when it needs the answer — inputs when some detector runs, facts when some rule
 * may look at them — so a call with nothing to judge costs nothing. Every detection decision (is this a
 * shell, is this match a coincidence) belongs to the detectors; the judge only runs them and the rules.
 */

export interface JudgeCall {
  readonly event: SinkEvent;
  /** The detectors that may run (those some rule names); the ones for other sink kinds are skipped. */
  readonly detectors: readonly AnyDetector[];
  /**
   * The request's input. `screen`, when given, is every judging detector's `mayFind` for this event: the inputs
   * may then leave out each value it turns away (RequestContext.inputsFor gathers nothing when it turns them all
   * away), since no finding could come of them. A caller may ignore it (the CLI does).
   */
  readonly inputs: (screen?: ValueScreen) => readonly UserInput[];
  readonly engine: RuleEngine;
  readonly facts: () => RequestFacts;
  /** A detector threw: the judgement goes on without it. Absent, the error propagates (the CLI wants it). */
  readonly onDetectorError?: (detector: AnyDetector, error: unknown) => void;
}

export interface Judgement {
  /** Attacks first within each detector, in detector order. */
  readonly findings: readonly Finding[];
  /** No match when nothing could apply (no finding and no policy rule for this sink kind). */
  readonly decision: Decision;
  /**
   * The inspection's CPU budget (src/grammar/work-budget.ts) ran out while a detector worked: the findings
   * are those made before it, and the caller must say that the rest was not judged.
   */
  readonly stopped?: true;
}

const NO_INPUTS: readonly UserInput[] = Object.freeze([]);

export const NO_DECISION: Decision = Object.freeze({ action: 'monitor', decisive: undefined, matches: Object.freeze([]) }) as Decision;

/** No finding (detectors/types.ts has the same constant; this module loads at start and that one with the first detector). */
const NO_FINDINGS: readonly Finding[] = Object.freeze([]);

/** The judgement of a call nothing applied to: no finding, no policy rule for its kind. */
const CLEAN: Judgement = Object.freeze({ findings: NO_FINDINGS, decision: NO_DECISION });

export function judge(call: JudgeCall): Judgement {
  const { event, engine } = call;
  let findings: Finding[] | undefined; // created at the first finding: a clean call allocates no list
  let inputs: readonly UserInput[] | undefined;
  let stopped: true | undefined;
  for (const detector of call.detectors) {
    if (!detector.kinds.includes(event.kind)) continue;
    if (detector.applies && !detector.applies(event)) continue;
    const given = !detector.usesInputs || detector.usesInputs(event) ? (inputs ??= call.inputs(screenOf(call.detectors, event))) : NO_INPUTS;
    if (given.length === 0 && detector.needsInputs !== false) continue;
    try {
      const found = detector.detect(event, given);
      for (let i = 0; i < found.length; i++) (findings ??= []).push(found[i]!);
    } catch (error) {
      if (isWorkBudgetExceeded(error)) {
        // Not a detector bug: the input made the work too long. Judge by what was found so far.
        stopped = true;
        break;
      }
      if (!call.onDetectorError) throw error;
      call.onDetectorError(detector, error);
    }
  }
  if (findings === undefined && !engine.hasPolicyFor(event.kind)) return stopped ? { findings: NO_FINDINGS, decision: NO_DECISION, stopped } : CLEAN;
  const all = findings ?? NO_FINDINGS;
  const decision = engine.decide(event, all, call.facts());
  return stopped ? { findings: all, decision, stopped } : { findings: all, decision };
}

/**
 * One test for a value that passes when any detector that will judge `event` with the request's input may find
 * it; undefined when one of them has no `mayFind` (it is then given every value, as it asks).
 */
function screenOf(detectors: readonly AnyDetector[], event: SinkEvent): ValueScreen | undefined {
  let only: AnyDetector | undefined;
  let several: AnyDetector[] | undefined;
  for (const detector of detectors) {
    if (!detector.kinds.includes(event.kind) || (detector.applies && !detector.applies(event))) continue;
    if (detector.usesInputs && !detector.usesInputs(event)) continue;
    if (!detector.mayFind) return undefined;
    if (only === undefined) only = detector;
    else (several ??= [only]).push(detector);
  }
  if (only === undefined) return undefined;
  if (several === undefined) {
    const detector = only;
    return (value, isKey) => detector.mayFind!(event, value, isKey);
  }
  const all = several;
  return (value, isKey) => all.some((d) => d.mayFind!(event, value, isKey));
}

/** The detectors a rule set uses, in registry order: the same choice for the agent and the CLI. */
export function detectorsUsedBy(engine: RuleEngine, registry: readonly AnyDetector[]): AnyDetector[] {
  return registry.filter((d) => engine.usesDetector(d.id));
}

/**
 * src/grammar/work-budget.ts's error, told by its name: the judge is loaded at every start and the budget
 * module only with the first tokenizer, so the class is not imported here.
 */
function isWorkBudgetExceeded(error: unknown): boolean {
  return error instanceof Error && error.name === 'WorkBudgetExceeded';
}
