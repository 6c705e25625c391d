import { resolve } from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import type { SinkEvent, Verdict } from './events.js';
import type { Finding } from './detectors/types.js';
import type { RequestContext } from './context/request-context.js';
import { currentContext } from './context/store.js';
import { getRuntime, type Runtime } from './runtime.js';
import type { Decision, RequestFacts, RuleMatch } from './rules/engine.js';
import { targetOf } from './rules/engine.js';
import { BlockedError } from './errors.js';
import { claimResponse, forbiddenResponse, newIncidentId } from './respond.js';
import { ATTR, SPAN_FINDING, type Outcome } from './telemetry/attributes.js';
import { appStack, maskPayload, redactRanges, sanitizeSql, sanitizeUrl } from './telemetry/redact.js';
import { log, warnOnce, errorMessage } from './log.js';

const OWN_DIR = resolve(__dirname, '..');
/** A detector that throws this many times is switched off (with one warning) rather than cost every call. */
const MAX_DETECTOR_FAILURES = 10;
/** Vulnerabilities recur on every request through the same code: report each distinct one once per process. */
const reportedVulnerabilities = new Set<string>();
const MAX_REPORTED_VULNERABILITIES = 10_000;

/** The hot-path gate every wrapper calls first: one AsyncLocalStorage read, nothing allocated. */
export function shouldInspect(): boolean {
  return currentContext() !== undefined && getRuntime() !== undefined;
}

/**
 * Judges one sink call. Never throws: any internal failure is logged once and the call proceeds
 * (fail open). The only non-undefined verdicts are the ones a rule asked for.
 */
export function inspect(event: SinkEvent): Verdict {
  const ctx = currentContext();
  const runtime = getRuntime();
  if (!ctx || !runtime) return undefined;
  try {
    // One library call often reaches several wrapped layers (exec → execFile → ChildProcess#spawn,
    // Pool.query → Client.query): the same sink text is judged once per request. Only when some policy rule
    // distinguishes operations does the operation take part in the key.
    const target = event.kind === 'http.out' ? `${event.url}\0${event.address ?? ''}\0${event.redirectFrom ?? ''}` : targetOf(event);
    const key = runtime.engine.distinguishesOperations(event.kind) ? `${event.kind}\0${event.op}\0${target}` : `${event.kind}\0${target}`;
    if (ctx.judged.has(key)) return ctx.judged.get(key) as Verdict;
    const verdict = judge(runtime, ctx, event);
    ctx.judged.set(key, verdict);
    return verdict;
  } catch (error) {
    warnOnce('inspect', `internal error while inspecting ${event.op}; the call proceeds unprotected: ${errorMessage(error)}`);
    return undefined;
  }
}

function judge(runtime: Runtime, ctx: RequestContext, event: SinkEvent): Verdict {
  const slots = runtime.detectorsByKind.get(event.kind);
  const findings: Finding[] = [];
  if (slots && slots.length > 0) {
    const inputs = ctx.inputs();
    if (inputs.length > 0) {
      for (const slot of slots) {
        if (slot.disabled) continue;
        try {
          for (const finding of slot.detector.detect(event, inputs)) if (!isCoincidence(finding)) findings.push(finding);
        } catch (error) {
          if (++slot.failures >= MAX_DETECTOR_FAILURES) {
            slot.disabled = true;
            log.error(`detector ${slot.detector.id} failed ${slot.failures} times and is now disabled: ${errorMessage(error)}`);
          } else {
            warnOnce(`detector:${slot.detector.id}`, `detector ${slot.detector.id} failed; the call proceeds: ${errorMessage(error)}`);
          }
        }
      }
    }
  }
  if (findings.length === 0 && !runtime.engine.hasPolicyFor(event.kind)) return undefined;

  const facts = requestFacts(ctx, runtime);
  const decision = runtime.engine.decide(event, findings, facts);
  ctx.findings.push(...findings);
  if (decision.matches.length === 0) {
    for (const f of findings) report(runtime, ctx, event, f, undefined, 'monitor', 'reported', undefined);
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
    if (runtime.config.respond === 'agent') claimResponse(ctx)?.send(forbiddenResponse(incident()));
  } else if (decision.action === 'step_up') {
    verdict = stepUp(runtime, ctx, decision.decisive!, event, incident());
    outcome = verdict ? 'challenged' : 'allowed';
  }
  recordDecision(runtime, ctx, event, findings, decision, outcome, incidentId);
  return verdict;
}

/**
 * Vulnerability reports need the input to be something an app plausibly concatenated: not a parameter
 * name that happens to equal a column, nor a URL path segment that equals a table name. Attacks are
 * never discarded here.
 */
function isCoincidence(finding: Finding): boolean {
  if (finding.kind !== 'vulnerability') return false;
  if (finding.input.isKey) return true;
  return finding.input.source === 'path' && (finding.reason === 'identifier' || finding.reason === 'word');
}

function stepUp(runtime: Runtime, ctx: RequestContext, match: RuleMatch, event: SinkEvent, incidentId: string): Verdict {
  if (runtime.stepUp) return runtime.stepUp.require(ctx, match, event, incidentId);
  // A step-up rule without the step-up subsystem cannot be satisfied: refuse rather than let it through.
  warnOnce('stepup:missing', `rule ${match.rule.meta.id} asks for step_up but step-up is not available; the operation is refused`);
  if (runtime.config.respond === 'agent') claimResponse(ctx)?.send(forbiddenResponse(incidentId));
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

function recordDecision(
  runtime: Runtime,
  ctx: RequestContext,
  event: SinkEvent,
  findings: readonly Finding[],
  decision: Decision,
  outcome: Outcome,
  incidentId: string | undefined,
): void {
  const reported = new Set<Finding>();
  for (const match of decision.matches) {
    const isDecisive = match === decision.decisive;
    const matchOutcome: Outcome = isDecisive ? outcome : 'reported';
    // A satisfied step-up is recorded once per request by the step-up lifecycle (grant_used), not per statement.
    if (!match.finding && matchOutcome === 'allowed') continue;
    if (match.finding) reported.add(match.finding);
    report(runtime, ctx, event, match.finding, match, match.action, matchOutcome, incidentId, findings);
  }
  for (const f of findings) if (!reported.has(f)) report(runtime, ctx, event, f, undefined, 'monitor', 'reported', incidentId, findings);
}

/** One span and (optionally) one log line per finding or policy match. Raw input never leaves redacted form. */
function report(
  runtime: Runtime,
  ctx: RequestContext,
  event: SinkEvent,
  finding: Finding | undefined,
  match: RuleMatch | undefined,
  action: string,
  outcome: Outcome,
  incidentId: string | undefined,
  allFindings: readonly Finding[] = finding ? [finding] : [],
): void {
  if (finding?.kind === 'vulnerability' && outcome === 'reported') {
    const key = `${finding.detector}|${event.op}|${finding.input.path}|${redactRanges(targetOf(event), [finding])}`;
    if (reportedVulnerabilities.has(key)) return;
    if (reportedVulnerabilities.size < MAX_REPORTED_VULNERABILITIES) reportedVulnerabilities.add(key);
  }
  const rule = match?.rule.meta;
  const attributes: Attributes = {
    [ATTR.ACTION]: action,
    [ATTR.OUTCOME]: outcome,
    [ATTR.SINK]: event.kind,
    [ATTR.OPERATION]: event.op,
    [ATTR.MODE]: runtime.config.mode,
  };
  if (incidentId) attributes[ATTR.INCIDENT] = incidentId;
  if (rule) {
    attributes[ATTR.RULE_NAME] = rule.id;
    attributes[ATTR.RULE_UUID] = rule.uuid;
    attributes[ATTR.RULE_CATEGORY] = rule.category;
    attributes[ATTR.RULE_RULESET] = rule.ruleset;
    attributes[ATTR.RULE_VERSION] = rule.version;
    if (rule.description) attributes[ATTR.RULE_DESCRIPTION] = rule.description;
    if (rule.reference) attributes[ATTR.RULE_REFERENCE] = rule.reference;
  }
  if (finding) {
    attributes[ATTR.KIND] = finding.kind;
    attributes[ATTR.DETECTOR] = finding.detector;
    attributes[ATTR.REASON] = finding.reason;
    attributes[ATTR.SOURCE] = finding.input.path;
    attributes[ATTR.PAYLOAD] = maskPayload(finding.input.value);
  }
  addSinkAttributes(attributes, event, allFindings);
  attributes[ATTR.HTTP_METHOD] = ctx.method ?? '_OTHER';
  attributes[ATTR.URL_PATH] = ctx.urlPath;
  const route = ctx.route;
  if (route) attributes[ATTR.HTTP_ROUTE] = route;
  const client = ctx.clientAddress;
  if (client) attributes[ATTR.CLIENT_ADDRESS] = client;
  const userId = runtime.stepUp?.userIdOf(ctx);
  if (userId) attributes[ATTR.USER_ID] = userId;
  const stack = appStack(new Error().stack, OWN_DIR);
  if (stack) attributes[ATTR.CODE_STACKTRACE] = stack;

  runtime.telemetry.span(SPAN_FINDING, attributes, outcome === 'blocked' || outcome === 'challenged' ? { message: outcome } : undefined);
  if (runtime.config.logFindings) {
    const what = finding ? `${finding.kind} ${finding.detector}` : `policy`;
    log.info(
      `${what} ${outcome}${rule ? ` rule=${rule.id}` : ''} op=${event.op}${finding ? ` source=${finding.input.path} payload=${JSON.stringify(maskPayload(finding.input.value))}` : ''} ${ctx.method ?? ''} ${route ?? ctx.urlPath}${incidentId ? ` incident=${incidentId}` : ''}`,
    );
  }
}

function addSinkAttributes(attributes: Attributes, event: SinkEvent, findings: readonly Finding[]): void {
  if (event.kind === 'sql') {
    attributes[ATTR.DB_SYSTEM_NAME] = event.system;
    attributes[ATTR.DB_QUERY_TEXT] = sanitizeSql(event.sql, event.dialect, findings);
    return;
  }
  const text = redactRanges(targetOf(event), findings);
  switch (event.kind) {
    case 'exec':
      attributes[ATTR.PROCESS_COMMAND_LINE] = text;
      return;
    case 'fs':
      attributes[ATTR.FILE_PATH] = text;
      return;
    case 'http.out':
      attributes[ATTR.URL_FULL] = sanitizeUrl(event.url, findings);
      return;
    case 'code':
      attributes[ATTR.CODE_SOURCE] = text;
      return;
    // ---- issue #12 part B sinks (helper "detect"): carry over with the switch ----
    case 'redirect':
      attributes[ATTR.HTTP_LOCATION] = sanitizeUrl(event.location, findings);
      return;
    case 'html': {
      // The part of the page around the input, not the whole body.
      const at = findings[0]?.start ?? 0;
      attributes[ATTR.HTML_EXCERPT] = text.slice(Math.max(0, at - 120), at + 120);
      return;
    }
    case 'deserialize':
      attributes[ATTR.DESERIALIZE_FORMAT] = event.format;
      attributes[ATTR.DESERIALIZE_TEXT] = text.slice(0, 1024);
      return;
    case 'xml':
      attributes[ATTR.XML_TEXT] = text.slice(0, 1024);
      return;
    // ---- end part B ----
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}
