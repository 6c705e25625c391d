import type { SinkEvent, Verdict } from './events.js';
import type { AnyDetector, Finding } from './detectors/types.js';
import { NOT_JUDGED, type RequestContext } from './context/request-context.js';
import { currentContext, runInContext } from './context/store.js';
import { firstOfOtherLive, othersMayBeLive } from './context/live.js';
import { getRuntime, type DetectorSlot, type Runtime } from './runtime.js';
import type { RequestFacts, RuleMatch } from './rules/engine.js';
import { targetOf } from './rules/engine.js';
import { judge, type JudgeCall } from './judge/judge.js';
import { withWorkBudget } from './grammar/work-budget.js';
import { BlockedError } from './errors.js';
import { forbiddenResponse, newIncidentId, refuse, stepUpUnavailableResponse } from './enforce/index.js';
import { reportDecision, reportUnmatched, type FindingReporter, type RequestView } from './telemetry/findings.js';
import type { Outcome } from './telemetry/attributes.js';
import { log, warnOnce, errorMessage } from './log.js';
import { applyInputLimitPolicy, INSPECTION_BUDGET, inputLimitFindingFor, inspectionBudgetMs, searchTextOf } from './context/input-limits.js';
import { measureInspection } from './telemetry/metrics.js';
import { reportCrossedContext, reportStaleContext } from './context/stale.js';
import { resolve } from 'node:path';

/** The agent's own files, left out of stale-context stacks. */
const OWN_DIR = resolve(__dirname, '..');

const ANONYMOUS_SENSITIVE: Finding = Object.freeze({ detector: 'insecure-config', kind: 'vulnerability', start: 0, end: 0, reason: 'anonymous-sensitive-operation' });

/** Response heads judged without a refusal, per rule engine (a reload starts afresh), per route and head. */
const judgedHeads = new WeakMap<object, Set<string>>();
const MAX_JUDGED_HEADS = 10_000;

function headsJudgedBy(runtime: Runtime): Set<string> {
  let heads = judgedHeads.get(runtime.engine);
  if (!heads) judgedHeads.set(runtime.engine, (heads = new Set()));
  return heads;
}

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
export function inspect(event: SinkEvent, ctx: RequestContext | undefined = currentContext()): Verdict {
  const runtime = getRuntime();
  if (!ctx || !runtime) return undefined;
  try {
    // Nothing could judge this call — no detector of its kind applies to it, no policy rule looks at its kind
    // (an HTML chunk without `<`): no key, no cache entry, no input gathered, no inspection measured.
    if (!anythingJudges(runtime, event)) return undefined;
    // One library call often reaches several wrapped layers (exec → execFile → ChildProcess#spawn,
    // Pool.query → Client.query): the same sink text is judged once per request. Only when some policy rule
    // distinguishes operations does the operation take part in the key.
    const target =
      event.kind === 'http.out'
        ? `${event.url}\0${event.address ?? ''}\0${event.redirectFrom ?? ''}`
        : event.kind === 'config'
          ? `${event.check}\0${event.text}\0${event.data ?? ''}\0${event.https === true}\0${event.randomCookies?.join('\0') ?? ''}` // two digests in one request differ by data
          : targetOf(event);
    // Two levels, not one joined key: the sink text is usually a string the app holds (a statement literal) whose
    // hash V8 keeps, while a key joined from it is a new string to copy and hash on every call.
    const calls = runtime.engine.distinguishesOperations(event.kind) ? `${event.kind}\0${event.op}` : event.kind;
    if (ctx.finished) {
      // A request that was already answered: its cached verdicts are never reused (the call may come from another
      // request through a library that lost the context) and nothing is cached for later calls either.
      // When the agent answered the request itself (a refusal, a step-up), the app's handler is still at work on the
      // refused call in this context (a rollback, an error page): that is expected, so no call site is reported. It
      // is judged all the same.
      if (!ctx.responded) reportStaleContext(runtime.telemetry, { kind: event.kind, op: event.op, method: ctx.method, route: ctx.route }, OWN_DIR);
      return measureInspection(event.kind, decideStale, runtime, ctx, event) ?? decideForLiveRequests(runtime, ctx, event);
    }
    // A call this request judged before: its verdict again, and (nothing refused) the other requests' look too,
    // since a worker running in this context may run the same text for another request more than once.
    const before = ctx.verdictOf(calls, target);
    if (before !== NOT_JUDGED) return before ?? ifAnotherRequestsWork(runtime, ctx, event);
    // A response head (no cookie holding a random token) recurs on every response of a route, and what it can
    // show is reported once per route: once a head was judged on a route without a refusal, it is not again.
    const headKey = event.kind === 'config' && event.check === 'response' && !event.randomCookies?.length ? `${ctx.route ?? ctx.urlPath}\0${calls}\0${target}` : undefined;
    const heads = headKey === undefined ? undefined : headsJudgedBy(runtime);
    if (heads?.has(headKey!)) return undefined;
    const verdict = measureInspection(event.kind, decide, runtime, ctx, event);
    ctx.rememberVerdict(calls, target, verdict);
    if (heads && verdict === undefined) {
      if (heads.size >= MAX_JUDGED_HEADS) heads.clear();
      heads.add(headKey!);
    }
    return verdict ?? ifAnotherRequestsWork(runtime, ctx, event);
  } catch (error) {
    warnOnce('inspect', `internal error while inspecting ${event.op}; the call proceeds unprotected: ${errorMessage(error)}`);
    return undefined;
  }
}

/**
 * A call in the context of a request that was already answered (src/context/stale.ts). Only what the call's own
 * text proves is used: a finding needs that request's input to occur in the sink text, so it is that request's
 * (an app that answers first and works on, a client that hung up). Everything else the request stands for —
 * its route and method for policy rules, earlier findings, the user's step-up grants — is not lent to a call
 * that may come from another request, and a step-up cannot be answered any more, so it is refused.
 */
function decideStale(runtime: Runtime, ctx: RequestContext, event: SinkEvent): Verdict {
  return decide(runtime, ctx, event, true);
}

/**
 * Another request's call judged by this request's input (see decideForLiveRequests): as a stale call, and only an
 * attack counts. That the input occurs in another request's text proves nothing about a data flow — a search for
 * `name` while another request selects the column `name` — so nothing short of an attack is reported or decided.
 */
function decideOnBehalf(runtime: Runtime, ctx: RequestContext, event: SinkEvent): Verdict {
  return decide(runtime, ctx, event, true, true);
}

/**
 * A stale call that its answered request's input did not refuse may have been queued by a request still being
 * served (a library ran the callback from the context that started its worker): each such request whose input
 * occurs in the call's text judges the call too, with the same restraint as a stale call (its input only, no
 * route or grants lent), and a refusal is answered on that request's own response.
 */
function decideForLiveRequests(runtime: Runtime, current: RequestContext, event: SinkEvent, onRefused?: (carrier: RequestContext) => void): Verdict {
  const text = searchTextOf(event);
  if (text.length === 0) return undefined;
  return firstOfOtherLive(current, (other) => {
    if (!other.someInputOccursIn(text)) return undefined;
    const verdict = runInContext(other, () => measureInspection(event.kind, decideOnBehalf, runtime, other, event));
    if (verdict) onRefused?.(other);
    return verdict;
  });
}

/**
 * Sinks whose request is the caller's (the context the call runs in), not a response's: the only ones another
 * request's work can reach through a worker that runs in the wrong context. Response sinks (html, redirect,
 * config) belong to the response they write to.
 */
const CALLER_BOUND_KINDS: ReadonlySet<SinkEvent['kind']> = new Set(['sql', 'exec', 'fs', 'http.out', 'code', 'deserialize', 'xml']);

/**
 * A call in a live request that did not refuse, and whose text holds none of that request's input: it may be
 * another request's work run in this context — a worker started by this request running the callbacks other
 * requests queue (a hand-rolled job queue, a batching loader). Each other request in flight whose input occurs
 * in the text judges the call as a stale call would (src/context/live.ts); when the call's own request's input
 * does occur, the call is taken as its own and nothing more is searched. Cost while others are in flight: a
 * substring search per input value of each of them, on calls their own request does not explain.
 */
function ifAnotherRequestsWork(runtime: Runtime, ctx: RequestContext, event: SinkEvent): Verdict {
  if (!CALLER_BOUND_KINDS.has(event.kind) || !othersMayBeLive(ctx)) return undefined;
  const text = searchTextOf(event);
  if (text.length === 0 || ctx.someInputOccursIn(text)) return undefined;
  return decideForLiveRequests(runtime, ctx, event, (carrier) =>
    reportCrossedContext(runtime.telemetry, { kind: event.kind, op: event.op, method: ctx.method, route: ctx.route }, { method: carrier.method, route: carrier.route }, OWN_DIR),
  );
}

const NO_REQUEST_FACTS: RequestFacts = { method: undefined, urlPath: undefined, route: undefined, earlierFindings: [], isNewClientAddress: () => undefined };

const NO_SLOTS: readonly DetectorSlot[] = Object.freeze([]);

function decide(runtime: Runtime, ctx: RequestContext, event: SinkEvent, stale = false, attacksOnly = false): Verdict {
  const slots = runtime.detectorsByKind.get(event.kind) ?? NO_SLOTS;
  // A request larger than what the agent gathers up front: the values that occur in this sink's text are
  // judged all the same; what could not be searched at all becomes one `input-limit` finding (src/context/input-limits.ts).
  let limitFinding: Finding | undefined;
  const text = searchTextOf(event);
  // A large sink text is judged under the hard budget (INSPECTION_BUDGET): the judgement stops when it is
  // spent, and going over it is reported (and refused under STEPGUARD_ON_INPUT_LIMIT=block), never silent.
  const budgeted = text.length >= INSPECTION_BUDGET.checkChars;
  const started = budgeted ? process.cpuUsage() : undefined;
  const call: JudgeCall = {
    event,
    detectors: healthy(slots),
    inputs: (screen) => {
      const { inputs, limitExceeded } = ctx.inputsFor(text, screen);
      if (limitExceeded) limitFinding = inputLimitFindingFor(ctx, limitExceeded, runtime.config, event);
      return inputs;
    },
    engine: runtime.engine,
    facts: () => (stale ? NO_REQUEST_FACTS : requestFacts(ctx, runtime)),
    onDetectorError: (detector, error) => detectorFailed(slots, detector, error),
  };
  const judged = budgeted ? withWorkBudget(inspectionBudgetMs(text.length), () => judge(call)) : judge(call);
  if (started && !limitFinding) {
    const used = process.cpuUsage(started);
    if (judged.stopped || (used.user + used.system) / 1000 >= inspectionBudgetMs(text.length)) {
      limitFinding = inputLimitFindingFor(ctx, { reason: 'budget', path: '' }, runtime.config, event);
    }
  }
  const findings = limitFinding ? [limitFinding, ...judged.findings] : judged.findings;
  const decision = limitFinding ? applyInputLimitPolicy(judged.decision, findings, runtime.config) : judged.decision;
  if (attacksOnly && !findings.some((f) => f.kind === 'attack')) return undefined;
  const recorded = runtime.risk && (findings.length > 0 || decision.assessed || decision.matches.some((m) => m.rule.flag)) ? runtime.risk.after(ctx, event, findings, decision) : undefined;
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
  if (decision.action === 'block' && decision.decisive!.risk?.unavailable) {
    // A risk signal was needed and the store could not answer: this operation fails closed, as documented (503).
    verdict = { error: new BlockedError(decision.decisive!.rule.meta.id, event.op, ctx.req) };
    outcome = 'unavailable';
    refuse(ctx, runtime.config.respond, async () => stepUpUnavailableResponse(incident()));
  } else if (decision.action === 'block') {
    verdict = { error: new BlockedError(decision.decisive!.rule.meta.id, event.op, ctx.req) };
    outcome = 'blocked';
    const refusal = forbiddenResponse(incident());
    // An attack the risk layer remembers is on record before the attacker hears the refusal (bounded wait).
    refuse(ctx, runtime.config.respond, recorded ? () => settledWithin(recorded, RECORD_WAIT_MS).then(() => refusal) : refusal);
  } else if (decision.action === 'step_up' && stale) {
    verdict = { error: new BlockedError(decision.decisive!.rule.meta.id, event.op, ctx.req) };
    outcome = 'blocked';
  } else if (decision.action === 'step_up') {
    verdict = stepUp(runtime, ctx, decision.decisive!, event, incident());
    // A request nobody can step up for (no signed-in user) is refused outright: record that, not a challenge.
    outcome = verdict === undefined ? 'allowed' : verdict.error instanceof BlockedError ? 'blocked' : 'challenged';
  }
  reportDecision(reporter, request, event, findings, decision, outcome, incidentId);
  // A sensitive operation the request reached without any identity: the gate refused it, and the route is an
  // access-control gap worth reporting (once per route) — the app should have asked for a login before.
  if (decision.action === 'step_up' && verdict && runtime.stepUp && runtime.stepUp.userIdOf(ctx) === undefined) {
    reportUnmatched(reporter, request, event, [ANONYMOUS_SENSITIVE]);
  }
  return verdict;
}

/** How long a refusal waits for its attack to be recorded; a slow store must not hold the attacker's socket. */
const RECORD_WAIT_MS = 500;

function settledWithin(work: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void work.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** See hook-kit's wouldJudge. Fails open towards judging: an error here means the call is inspected as before. */
export function wouldJudge(event: SinkEvent): boolean {
  const runtime = getRuntime();
  if (!runtime) return false;
  try {
    return anythingJudges(runtime, event);
  } catch {
    return true;
  }
}

/** Some policy rule looks at the call's kind, or some detector applies to the call. */
function anythingJudges(runtime: Runtime, event: SinkEvent): boolean {
  return runtime.engine.hasPolicyFor(event.kind) || someDetectorApplies(runtime.detectorsByKind.get(event.kind), event);
}

function someDetectorApplies(slots: readonly DetectorSlot[] | undefined, event: SinkEvent): boolean {
  if (!slots) return false;
  for (const slot of slots) if (!slot.disabled && (!slot.detector.applies || slot.detector.applies(event))) return true;
  return false;
}

/** The detectors of each kind's slots that still run, built once and again only after one is switched off. */
const healthyBySlots = new WeakMap<readonly DetectorSlot[], readonly AnyDetector[]>();

function healthy(slots: readonly DetectorSlot[]): readonly AnyDetector[] {
  let out = healthyBySlots.get(slots);
  if (out === undefined) {
    out = slots.filter((slot) => !slot.disabled).map((slot) => slot.detector);
    healthyBySlots.set(slots, out);
  }
  return out;
}

function detectorFailed(slots: readonly DetectorSlot[], detector: AnyDetector, error: unknown): void {
  const slot = slots.find((s) => s.detector === detector);
  if (slot && ++slot.failures >= MAX_DETECTOR_FAILURES) {
    slot.disabled = true;
    healthyBySlots.delete(slots);
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
    ...(runtime.risk ? { risk: runtime.risk.facts(ctx) } : {}),
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
