import type { Config } from './config.js';
import type { SinkEvent, SinkKind, Verdict } from './events.js';
import type { AnyDetector } from './detectors/types.js';
import type { RuleEngine, RuleMatch } from './rules/engine.js';
import type { Telemetry } from './telemetry/telemetry.js';
import type { RequestContext } from './context/request-context.js';
import type { RiskService } from './risk/service.js';
import { createDetectors, type DetectorSettings } from './detectors/index.js';
import { detectorsUsedBy } from './judge/judge.js';

/** A detector plus its health: one that keeps throwing is switched off instead of costing every call. */
export interface DetectorSlot {
  readonly detector: AnyDetector;
  failures: number;
  disabled: boolean;
}

/** Decides step-up rules; provided by src/stepup when the agent starts. */
export interface StepUpGate {
  /** `undefined` when the user holds a valid grant for the rule; otherwise the error to fail the call with. */
  require(ctx: RequestContext, match: RuleMatch, event: SinkEvent, incidentId: string): Verdict;
  /** Known-address check for `new_client_address` conditions (synchronous, from a cache). */
  isNewClientAddress(ctx: RequestContext): boolean | undefined;
  /** User id for telemetry, when known. */
  userIdOf(ctx: RequestContext): string | undefined;
}

/** HTTP endpoints the agent serves itself (step-up verification). */
export interface AgentEndpoints {
  handles(ctx: RequestContext): boolean;
  serve(ctx: RequestContext): void;
}

export interface Runtime {
  readonly config: Config;
  readonly engine: RuleEngine;
  readonly detectorsByKind: ReadonlyMap<SinkKind, readonly DetectorSlot[]>;
  readonly telemetry: Telemetry;
  readonly stepUp: StepUpGate | undefined;
  readonly endpoints: AgentEndpoints | undefined;
  /** Adaptive step-up (risk signals); present when some rule uses signals, `flag` or `login:`. */
  readonly risk?: RiskService;
}

const HOLDER_KEY = Symbol.for('stepguard.runtime-holder');
interface RuntimeHolder {
  current: Runtime | undefined;
}

/**
 * One holder per process, shared by every copy of this module (the CommonJS and the ESM load of the agent), and kept
 * in a module constant: every wrapper asks for the runtime on every call, and a symbol-keyed property of the global
 * object was a generic lookup each time (bench:instructions, Node 24).
 */
const holder: RuntimeHolder = ((globalThis as { [HOLDER_KEY]?: RuntimeHolder })[HOLDER_KEY] ??= { current: undefined });

export function getRuntime(): Runtime | undefined {
  return holder.current;
}

export function setRuntime(runtime: Runtime | undefined): void {
  holder.current = runtime;
}

/** Only the detectors some rule uses, indexed by sink kind. Slots are reused so health survives reloads. */
export function detectorSlots(engine: RuleEngine, settings: DetectorSettings, previous?: ReadonlyMap<SinkKind, readonly DetectorSlot[]>): Map<SinkKind, DetectorSlot[]> {
  const old = new Map<string, DetectorSlot>();
  for (const list of previous?.values() ?? []) for (const slot of list) old.set(slot.detector.id, slot);
  const out = new Map<SinkKind, DetectorSlot[]>();
  for (const detector of detectorsUsedBy(engine, createDetectors(settings))) {
    const slot = old.get(detector.id) ?? { detector, failures: 0, disabled: false };
    for (const kind of detector.kinds) {
      const list = out.get(kind) ?? [];
      list.push(slot);
      out.set(kind, list);
    }
  }
  return out;
}
