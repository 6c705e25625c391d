import type { SinkEvent, SinkKind } from '../events.js';
import { commandLine, SINK_KINDS } from '../events.js';
import type { Finding } from '../detectors/types.js';
import { assess } from '../risk/model.js';
import type { RiskAssessment, RiskFacts } from '../risk/types.js';
import { actionStrength, type Action, type DetectionRule, type PolicyRule, type Rule, type RuleSet } from './types.js';

/** What the engine may ask about the request; all answers are cheap and synchronous. */
export interface RequestFacts {
  readonly method: string | undefined;
  readonly urlPath: string | undefined;
  readonly route: string | undefined;
  /** Findings recorded earlier in this request. */
  readonly earlierFindings: readonly Finding[];
  /** `true` when the user's client address is new to them; `undefined` when unknown. */
  isNewClientAddress(): boolean | undefined;
  /** Risk signal facts loaded for this request (adaptive step-up); absent: every signal is unknown. */
  readonly risk?: RiskFacts;
}

export interface RuleMatch {
  readonly rule: Rule;
  /** The finding that triggered a detection rule (absent for policy rules). */
  readonly finding: Finding | undefined;
  /** The action after the global mode was applied. */
  readonly action: Action;
  /** Adaptive rules: the signals measured and the level. */
  readonly risk?: RiskAssessment;
}

/** A rule with risk signals whose other conditions held: assessed whether or not it applied. */
export interface Assessed {
  readonly rule: PolicyRule;
  readonly assessment: RiskAssessment;
}

export interface Decision {
  readonly action: Action;
  /** The match that decided `action` (strongest wins; earlier rule on a tie). */
  readonly decisive: RuleMatch | undefined;
  readonly matches: readonly RuleMatch[];
  /** Adaptive rules whose other conditions held (their signals were measured). */
  readonly assessed?: readonly Assessed[];
}

/**
 * Rules compiled for the hot path: per sink kind, the detector ids some rule uses and the policy rules
 * that can apply. A detector no rule names never runs.
 */
export class RuleEngine {
  private readonly detectionRules = new Map<string, DetectionRule[]>();
  private readonly policyRules = new Map<SinkKind, PolicyRule[]>();
  private readonly detectorIds = new Set<string>();

  constructor(
    readonly ruleSet: RuleSet,
    private readonly mode: 'monitor' | 'block',
  ) {
    for (const kind of SINK_KINDS) this.policyRules.set(kind, []);
    for (const rule of ruleSet.rules) {
      if (rule.type === 'detection') {
        this.detectorIds.add(rule.detector);
        const list = this.detectionRules.get(rule.detector) ?? [];
        list.push(rule);
        this.detectionRules.set(rule.detector, list);
      } else {
        for (const kind of rule.when.sink ? [rule.when.sink] : SINK_KINDS) this.policyRules.get(kind)!.push(rule);
      }
    }
  }

  usesDetector(id: string): boolean {
    return this.detectorIds.has(id);
  }

  hasPolicyFor(kind: SinkKind): boolean {
    return this.policyRules.get(kind)!.length > 0;
  }

  /** Some policy rule for `kind` names an operation: the same text via another call may decide otherwise. */
  distinguishesOperations(kind: SinkKind): boolean {
    return this.policyRules.get(kind)!.some((r) => r.when.operation !== undefined);
  }

  /** `monitor` mode reports what would have happened but never blocks or challenges. */
  private effective(action: Action): Action {
    return this.mode === 'monitor' ? 'monitor' : action;
  }

  decide(event: SinkEvent, findings: readonly Finding[], facts: RequestFacts): Decision {
    const matches: RuleMatch[] = [];
    for (const finding of findings) {
      for (const rule of this.detectionRules.get(finding.detector) ?? []) {
        if (rule.on !== finding.kind) continue;
        // A vulnerability is reported, never acted on, whatever the rule says.
        const action = finding.kind === 'vulnerability' ? 'monitor' : this.effective(rule.action);
        matches.push({ rule, finding, action });
      }
    }
    const policies = this.policyRules.get(event.kind)!;
    let assessed: Assessed[] | undefined;
    if (policies.length > 0) {
      let target: string | undefined;
      for (const rule of policies) {
        target ??= targetOf(event);
        if (!policyApplies(rule, event, target, findings, facts)) continue;
        if (!rule.risk) {
          matches.push({ rule, finding: undefined, action: this.effective(rule.action) });
          continue;
        }
        const assessment = assess(rule.meta.id, rule.risk, facts.risk ?? UNKNOWN_RISK);
        (assessed ??= []).push({ rule, assessment });
        // A signal the store could not answer: the operation fails closed (as strong as a block, answered 503).
        if (assessment.unavailable) matches.push({ rule, finding: undefined, action: this.effective('block'), risk: assessment });
        else if (assessment.applies) matches.push({ rule, finding: undefined, action: this.effective(rule.action), risk: assessment });
      }
    }
    let decisive: RuleMatch | undefined;
    for (const m of matches) if (!decisive || actionStrength(m.action) > actionStrength(decisive.action)) decisive = m;
    return assessed ? { action: decisive?.action ?? 'monitor', decisive, matches, assessed } : { action: decisive?.action ?? 'monitor', decisive, matches };
  }
}

/** The shell-program tables, loaded at the first command judged: an app that runs none never reads them. */
let shellPrograms: typeof import('../detectors/shell-programs.js') | undefined;
function loadShellPrograms(): typeof import('../detectors/shell-programs.js') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- kept off the start-up path
  return require('../detectors/shell-programs.js') as typeof import('../detectors/shell-programs.js');
}

export function targetOf(event: SinkEvent): string {
  switch (event.kind) {
    case 'sql':
      return event.sql;
    case 'exec':
      return (shellPrograms ??= loadShellPrograms()).shellScriptOf(event) ?? commandLine(event);
    case 'fs':
      return event.path;
    case 'http.out':
      return event.url;
    case 'code':
      return event.source;
    // issue #12 part B sinks
    case 'redirect':
      return event.location;
    case 'html':
      return event.html;
    case 'deserialize':
      return event.text;
    case 'xml':
      return event.xml;
    case 'config':
      return event.text;
    default: {
      const unreachable: never = event;
      return String(unreachable);
    }
  }
}

function policyApplies(rule: PolicyRule, event: SinkEvent, target: string, findings: readonly Finding[], facts: RequestFacts): boolean {
  const w = rule.when;
  if (w.operation && !w.operation.test(event.op)) return false;
  if (w.methods && (!facts.method || !w.methods.includes(facts.method.toUpperCase()))) return false;
  if (w.route) {
    const routeOk = (facts.route !== undefined && w.route.test(facts.route)) || (facts.urlPath !== undefined && w.route.test(facts.urlPath));
    if (!routeOk) return false;
  }
  if (w.target && !w.target.test(target)) return false;
  if (w.findingKind) {
    const kind = w.findingKind;
    if (!findings.some((f) => f.kind === kind) && !facts.earlierFindings.some((f) => f.kind === kind)) return false;
  }
  if (w.newClientAddress && facts.isNewClientAddress() !== true) return false;
  return true;
}

const UNKNOWN_RISK: RiskFacts = {
  newDevice: () => undefined,
  newClientAddress: () => undefined,
  clientAddresses: () => undefined,
  frequency: () => undefined,
  failedLogins: () => undefined,
  recentAttacks: () => undefined,
  vulnerableRoute: () => undefined,
  flagged: () => undefined,
};
