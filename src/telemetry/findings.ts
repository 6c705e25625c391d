import { resolve } from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import type { SinkEvent } from '../events.js';
import type { Finding } from '../detectors/types.js';
import type { Decision, RuleMatch } from '../rules/engine.js';
import { targetOf } from '../rules/engine.js';
import type { Telemetry } from './telemetry.js';
import { ATTR, SPAN_FINDING, type Outcome } from './attributes.js';
import { appStack, maskPayload, redactRanges, sanitizeSql, sanitizeUrl } from './redact.js';
import { log } from '../log.js';

/**
 * The one builder of `stepguard.finding` spans (and their log lines): what a judgement found and what
 * the agent did about it. Raw input never leaves in clear: payloads are masked, sink text is redacted with
 * the tokens the detector already built.
 */

const OWN_DIR = resolve(__dirname, '..', '..');
/** Vulnerabilities recur on every request through the same code: report each distinct one once per process. */
const reportedVulnerabilities = new Set<string>();
const MAX_REPORTED_VULNERABILITIES = 10_000;

/** The request as telemetry sees it; `userId` is resolved only when a span is written. */
export interface RequestView {
  readonly method: string | undefined;
  readonly urlPath: string;
  readonly route: string | undefined;
  readonly clientAddress: string | undefined;
  userId(): string | undefined;
}

export interface FindingReporter {
  readonly telemetry: Telemetry;
  readonly mode: string;
  readonly logFindings: boolean;
}

/** Every finding without a matching rule: reported, nothing done. */
export function reportUnmatched(reporter: FindingReporter, request: RequestView, event: SinkEvent, findings: readonly Finding[]): void {
  for (const f of findings) report(reporter, request, event, f, undefined, 'monitor', 'reported', undefined, findings);
}

/** One span per rule match (the decisive one with `outcome`) and per finding no rule matched. */
export function reportDecision(
  reporter: FindingReporter,
  request: RequestView,
  event: SinkEvent,
  findings: readonly Finding[],
  decision: Decision,
  outcome: Outcome,
  incidentId: string | undefined,
): void {
  const reported = new Set<Finding>();
  for (const match of decision.matches) {
    const matchOutcome: Outcome = match === decision.decisive ? outcome : 'reported';
    // A satisfied step-up is recorded once per request by the step-up lifecycle (grant_used), not per statement.
    if (!match.finding && matchOutcome === 'allowed') continue;
    if (match.finding) reported.add(match.finding);
    report(reporter, request, event, match.finding, match, match.action, matchOutcome, incidentId, findings);
  }
  for (const f of findings) if (!reported.has(f)) report(reporter, request, event, f, undefined, 'monitor', 'reported', incidentId, findings);
}

function report(
  reporter: FindingReporter,
  request: RequestView,
  event: SinkEvent,
  finding: Finding | undefined,
  match: RuleMatch | undefined,
  action: string,
  outcome: Outcome,
  incidentId: string | undefined,
  allFindings: readonly Finding[],
): void {
  if (finding?.kind === 'vulnerability' && outcome === 'reported') {
    // Configuration findings carry no input: one report per route and reason.
    const key = finding.input
      ? `${finding.detector}|${event.op}|${finding.input.path}|${redactRanges(targetOf(event), [finding])}`
      : `${finding.detector}|${finding.reason}|${request.method ?? ''} ${request.route ?? request.urlPath}`;
    if (reportedVulnerabilities.has(key)) return;
    if (reportedVulnerabilities.size < MAX_REPORTED_VULNERABILITIES) reportedVulnerabilities.add(key);
  }
  const rule = match?.rule.meta;
  const attributes = findingAttributes(reporter.mode, request, event, finding, match, action, outcome, incidentId, allFindings);
  reporter.telemetry.span(SPAN_FINDING, attributes, outcome === 'blocked' || outcome === 'challenged' || outcome === 'unavailable' ? { message: outcome } : undefined);
  if (reporter.logFindings) {
    const what = !finding ? 'policy' : finding.kind === 'input-limit' ? `input-limit (${finding.reason})` : `${finding.kind} ${finding.detector}`;
    log.info(
      `${what} ${outcome}${rule ? ` rule=${rule.id}` : ''} op=${event.op}${finding?.input ? ` source=${finding.input.path} payload=${JSON.stringify(maskPayload(finding.input.value))}` : ''}${finding && !finding.input ? ` reason=${finding.reason}` : ''} ${request.method ?? ''} ${request.route ?? request.urlPath}${incidentId ? ` incident=${incidentId}` : ''}`,
    );
  }
}

/** The attributes of one `stepguard.finding` span. Exported for tests. */
export function findingAttributes(
  mode: string,
  request: RequestView,
  event: SinkEvent,
  finding: Finding | undefined,
  match: RuleMatch | undefined,
  action: string,
  outcome: Outcome,
  incidentId: string | undefined,
  findings: readonly Finding[],
): Attributes {
  const rule = match?.rule.meta;
  const attributes: Attributes = {
    [ATTR.ACTION]: action,
    [ATTR.OUTCOME]: outcome,
    [ATTR.SINK]: event.kind,
    [ATTR.OPERATION]: event.op,
    [ATTR.MODE]: mode,
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
  if (match?.risk) {
    attributes[ATTR.RISK_LEVEL] = match.risk.level;
    attributes[ATTR.RISK_SIGNALS] = match.risk.signals.filter((s) => s.fired).map((s) => s.label);
    const acr = match.rule.stepUp?.acrByLevel?.[match.risk.level];
    if (acr) attributes[ATTR.RISK_ACR] = [...acr];
  }
  if (match?.rule.flag) attributes[ATTR.RISK_FLAGGED] = true;
  if (finding) {
    attributes[ATTR.KIND] = finding.kind;
    attributes[ATTR.DETECTOR] = finding.detector;
    attributes[ATTR.REASON] = finding.reason;
    if (finding.input) {
      attributes[ATTR.SOURCE] = finding.input.path;
      attributes[ATTR.PAYLOAD] = maskPayload(finding.input.value);
    }
  }
  addSinkAttributes(attributes, event, findings);
  attributes[ATTR.HTTP_METHOD] = request.method ?? '_OTHER';
  attributes[ATTR.URL_PATH] = request.urlPath;
  if (request.route) attributes[ATTR.HTTP_ROUTE] = request.route;
  if (request.clientAddress) attributes[ATTR.CLIENT_ADDRESS] = request.clientAddress;
  const userId = request.userId();
  if (userId) attributes[ATTR.USER_ID] = userId;
  const stack = appStack(deepStack(), OWN_DIR);
  if (stack) attributes[ATTR.CODE_STACKTRACE] = stack;
  return attributes;
}

/** The current stack with room for the agent's own frames above the app's (the default limit is 10). */
function deepStack(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  try {
    return new Error().stack;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function addSinkAttributes(attributes: Attributes, event: SinkEvent, findings: readonly Finding[]): void {
  if (event.kind === 'sql') {
    attributes[ATTR.DB_SYSTEM_NAME] = event.system;
    // The detector's tokens when it built them; a policy match alone tokenizes here.
    const tokens = findings.find((f) => f.tokens !== undefined)?.tokens;
    attributes[ATTR.DB_QUERY_TEXT] = sanitizeSql(event.sql, event.dialect, findings, tokens);
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
    case 'config':
      // Head lines without cookie values, or a digest's algorithm: nothing secret.
      attributes[ATTR.CONFIG_TEXT] = text.slice(0, 1024);
      return;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}
