import type { SinkEvent, SinkKind, UserInput } from '../events.js';
import type { SqlToken } from '../grammar/sql-tokenizer.js';

/**
 * `attack`: the input changed the sink's syntax (it spans tokens, adds operators, keywords, comments...).
 * `vulnerability`: the input reached the sink verbatim but stayed inside one literal/word — the code
 * concatenates instead of parameterising. Reported, never blocked.
 * `input-limit`: not a detector's finding — part of the request was beyond what the agent can judge
 * (src/context/input-limits.ts); STEPGUARD_ON_INPUT_LIMIT decides whether that refuses the call.
 */
export type FindingKind = 'attack' | 'vulnerability' | 'input-limit';

export interface Finding {
  readonly detector: string;
  readonly kind: FindingKind;
  /**
   * The request value that was found in the sink. Absent for findings about the app's configuration that no
   * request value caused (a cookie without HttpOnly, a missing security header): those are reported once per
   * route (src/telemetry/findings.ts).
   */
  readonly input?: UserInput;
  /** Offsets of the occurrence inside the sink text (half-open). */
  readonly start: number;
  readonly end: number;
  /** Short, fixed vocabulary explaining the decision (e.g. `spans-tokens`, `comment`, `literal`). */
  readonly reason: string;
  /**
   * The sink text's tokens as the detector's grammar built them (SQL today), shared by every finding of
   * one call: redaction reuses them instead of tokenizing the statement again.
   */
  readonly tokens?: readonly SqlToken[];
}

export interface Detector<E extends SinkEvent = SinkEvent> {
  /** Equal to the file name, e.g. `sql-injection`. */
  readonly id: string;
  readonly kinds: readonly E['kind'][];
  /** `false`: runs even when the request has no input at all (configuration checks). */
  readonly needsInputs?: boolean;
  /**
   * Optional: false when this event is judged without the request's input (a response-head check), so the
   * input is not gathered for it. Absent: every event uses the input.
   */
  readonly usesInputs?: (event: SinkEvent) => boolean;
  /**
   * Optional cheap precondition, checked before the request's input is gathered: false means no input could
   * make this event a finding of this detector (`detect` is then not called).
   */
  readonly applies?: (event: SinkEvent) => boolean;
  /**
   * Optional, for a detector that reports only request values found in the sink text: false when `value` cannot
   * take part in any finding of this event (too short for it, nowhere in the text), whatever else the request
   * holds. When every detector that judges an event has it, a request's values are first put to it one by one
   * without being kept, and when none passes, nothing is gathered and `detect` is not called
   * (RequestContext.inputsFor). It may say true for a value that then finds nothing; never false for one that
   * would.
   */
  readonly mayFind?: (event: SinkEvent, value: string, isKey: boolean) => boolean;
  /** Pure: no I/O, no globals. Returns every finding, attacks first (a list the caller reads, never changes). */
  detect(event: E, inputs: readonly UserInput[]): readonly Finding[];
}

/**
 * A value's test against one sink call, made of the `mayFind` of the detectors that judge it: false when the value
 * cannot take part in any of their findings, wherever in the request it came from.
 */
export type ValueScreen = (value: string, isKey: boolean) => boolean;

/** What a detector returns when it found nothing: shared, so that judging a clean call allocates no list. */
export const NO_FINDINGS: readonly Finding[] = Object.freeze([]);

export type AnyDetector = Detector<SinkEvent> & { readonly kinds: readonly SinkKind[] };
