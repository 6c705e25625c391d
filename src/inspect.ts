import type { SinkEvent, Verdict } from './events.js';
import type { AnyDetector, Finding } from './detectors/types.js';
import type { RequestContext } from './context/request-context.js';
import { currentContext } from './context/store.js';
import { getRuntime, type DetectorSlot, type Runtime } from './runtime.js';
import type { RequestFacts, RuleMatch } from './rules/engine.js';
import { targetOf } from './rules/engine.js';
import { judge } from './judge/judge.js';
import { BlockedError } from './errors.js';
import { forbiddenResponse, newIncidentId, refuse } from './enforce/index.js';
import { reportDecision, reportUnmatched, type FindingReporter, type RequestView } from './telemetry/findings.js';
import type { Outcome } from './telemetry/attributes.js';
import { log, warnOnce, errorMessage } from './log.js';
import { applyInputLimitPolicy, INSPECTION_BUDGET, inputLimitFindingFor, inspectionBudgetMs, searchTextOf } from './context/input-limits.js';
import { measureInspection } from './telemetry/metrics.js';

/** A detector that throws this many times is switched off (with one warning) rather than cost every call. */
const MAX_DETECTOR_FAILURES = 10;

/** The hot-path gate every wrapper calls first: one AsyncLocalStorage read, nothing allocated. */
export function shouldInspect(): boolean {
  return currentContext() !== undefined && getRuntime() !== undefined;
}

/**
 * Judges one sink call: request context → verdict cache → judge (detectors + rules, inputs gathered
 * lazily) → enforce (the refusal response) and telemetry. Never throws: any internal failure is logged
 * once and the call proceeds (fail open). The only non-undefined verdicts are the ones a rule asked for.
 */
export function inspect(event: SinkEvent): Verdict {
  const ctx = currentContext();
  const runtime = getRuntime();
  if (!ctx || !runtime) return undefined;
  try {
    // Nothing could judge this call — no detector of its kind applies to it, no policy rule looks at its kind
    // (an HTML chunk without `<`): no key, no cache entry, no input gathered, no inspection measured.
    if (!runtime.engine.hasPolicyFor(event.kind) && !someDetectorApplies(runtime.detectorsByKind.get(event.kind), event)) return undefined;
    // One library call often reaches several wrapped layers (exec → execFile → ChildProcess#spawn,
    // Pool.query → Client.query): the same sink text is judged once per request. Only when some policy rule
    // distinguishes operations does the operation take part in the key.
    const target = event.kind === 'http.out' ? `${event.url}\0${event.address ?? ''}\0${event.redirectFrom ?? ''}` : targetOf(event);
    const key = runtime.engine.distinguishesOperations(event.kind) ? `${event.kind}\0${event.op}\0${target}` : `${event.kind}\0${target}`;
    if (ctx.judged.has(key)) return ctx.judged.get(key) as Verdict;
    const verdict = measureInspection(event.kind, decide, runtime, ctx, event);
    ctx.judged.set(key, verdict);
    return verdict;
  } catch (error) {
    warnOnce('inspect', `internal error while inspecting ${event.op}; the call proceeds unprotected: ${errorMessage(error)}`);
    return undefined;
  }
}

function decide(runtime: Runtime, ctx: RequestContext, event: SinkEvent): Verdict {
  const slots = runtime.detectorsByKind.get(event.kind) ?? [];
  // A request larger than what the agent gathers up front: the values that occur in this sink's text are
  // judged all the same; what could not be searched at all becomes one `input-limit` finding (src/context/input-limits.ts).
  let limitFinding: Finding | undefined;
  const text = searchTextOf(event);
  // A large sink text is judged against the hard budget (INSPECTION_BUDGET): going over it is reported, never silent.
  const started = text.length >= INSPECTION_BUDGET.checkChars ? process.cpuUsage() : undefined;
  const judged = judge({
    event,
    detectors: healthy(slots),
    inputs: () => {
      const { inputs, limitExceeded } = ctx.inputsFor(text);
      if (limitExceeded) limitFinding = inputLimitFindingFor(ctx, limitExceeded, runtime.config, event);
      return inputs;
    },
    engine: runtime.engine,
    facts: () => requestFacts(ctx, runtime),
    onDetectorError: (detector, error) => detectorFailed(slots, detector, error),
  });
  if (started && !limitFinding) {
    const used = process.cpuUsage(started);
    if ((used.user + used.system) / 1000 >= inspectionBudgetMs(text.length)) {
      limitFinding = inputLimitFindingFor(ctx, { reason: 'budget', path: '' }, runtime.config, event);
    }
  }
  const findings = limitFinding ? [limitFinding, ...judged.findings] : judged.findings;
  const decision = limitFinding ? applyInputLimitPolicy(judged.decision, findings, runtime.config) : judged.decision;
  if (findings.length === 0 && decision.matches.length === 0) return undefined;

  ctx.findings.push(...findings);
  const reporter: FindingReporter = { telemetry: runtime.telemetry, mode: runtime.config.mode, logFindings: runtime.config.logFindings };
  const request = requestView(runtime, ctx);
  if (decision.matches.length === 0) {
    reportUnmatched(reporter, request, event, findings);
    return undefined;
  }

  // Incident ids are for refusals and attacks; a repeated vulnerability report must stay cheap.
  let incidentId: string | undefined;
  const incident = (): string => (incidentId ??= newIncidentId());
  if (findings.some((f) => f.kind === 'attack')) incident();
  let verdict: Verdict;
  let outcome: Outcome = 'reported';
  if (decision.action === 'block') {
    verdict = { error: new BlockedError(decision.decisive!.rule.meta.id, event.op, ctx.req) };
    outcome = 'blocked';
    refuse(ctx, runtime.config.respond, forbiddenResponse(incident()));
  } else if (decision.action === 'step_up') {
    verdict = stepUp(runtime, ctx, decision.decisive!, event, incident());
    outcome = verdict ? 'challenged' : 'allowed';
  }
  reportDecision(reporter, request, event, findings, decision, outcome, incidentId);
  return verdict;
}

function someDetectorApplies(slots: readonly DetectorSlot[] | undefined, event: SinkEvent): boolean {
  if (!slots) return false;
  for (const slot of slots) if (!slot.disabled && (!slot.detector.applies || slot.detector.applies(event))) return true;
  return false;
}

function healthy(slots: readonly DetectorSlot[]): AnyDetector[] {
  const out: AnyDetector[] = [];
  for (const slot of slots) if (!slot.disabled) out.push(slot.detector);
  return out;
}

function detectorFailed(slots: readonly DetectorSlot[], detector: AnyDetector, error: unknown): void {
  const slot = slots.find((s) => s.detector === detector);
  if (slot && ++slot.failures >= MAX_DETECTOR_FAILURES) {
    slot.disabled = true;
    log.error(`detector ${detector.id} failed ${slot.failures} times and is now disabled: ${errorMessage(error)}`);
  } else {
    warnOnce(`detector:${detector.id}`, `detector ${detector.id} failed; the call proceeds: ${errorMessage(error)}`);
  }
}

function stepUp(runtime: Runtime, ctx: RequestContext, match: RuleMatch, event: SinkEvent, incidentId: string): Verdict {
  if (runtime.stepUp) return runtime.stepUp.require(ctx, match, event, incidentId);
  // A step-up rule without the step-up subsystem cannot be satisfied: refuse rather than let it through.
  warnOnce('stepup:missing', `rule ${match.rule.meta.id} asks for step_up but step-up is not available; the operation is refused`);
  refuse(ctx, runtime.config.respond, forbiddenResponse(incidentId));
  return { error: new BlockedError(match.rule.meta.id, event.op, ctx.req) };
}

function requestFacts(ctx: RequestContext, runtime: Runtime): RequestFacts {
  return {
    method: ctx.method,
    urlPath: ctx.urlPath,
    route: ctx.route,
    earlierFindings: ctx.findings,
    isNewClientAddress: () => runtime.stepUp?.isNewClientAddress(ctx),
  };
}

function requestView(runtime: Runtime, ctx: RequestContext): RequestView {
  return {
    method: ctx.method,
    urlPath: ctx.urlPath,
    route: ctx.route,
    clientAddress: ctx.clientAddress,
    userId: () => runtime.stepUp?.userIdOf(ctx),
  };
}
