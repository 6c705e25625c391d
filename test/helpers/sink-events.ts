/**
 * What a hook hands to `inspect`: the `SinkEvent` itself, not only the agent's end result.
 *
 * The seam is the detector slot list of the running agent (the runtime's `detectorsByKind`): a recording
 * detector is added in front of the real ones for every sink kind, through the same runtime API the agent
 * uses when it starts and when rules reload. It finds nothing, so verdicts are unchanged, and production code
 * has no test-only branch.
 *
 * What it sees is what `inspect` judges: detectors run only inside a request whose input is not empty (run the
 * call under `runWithContext` with some input), and a sink text already judged in the same request is answered
 * from the request's verdict cache without reaching the detectors — so one library call that passes through
 * several wrapped layers (exec → ChildProcess#spawn, Pool.query → Client.query) shows up once, as the
 * outermost layer the app called.
 */
import { createRequire } from 'node:module';
import type { SinkEvent, SinkKind, UserInput } from '../../src/events.js';
import type { DetectorSlot, Runtime } from '../../src/runtime.js';

const require = createRequire(import.meta.url);

export interface RecordedEvent {
  readonly event: SinkEvent;
  /** The request's inputs the detectors were given with it. */
  readonly inputs: readonly UserInput[];
}

export interface SinkEventRecorder {
  /** The events judged since the last call, oldest first (and forgets them). */
  take(): SinkEvent[];
  /** Runs `fn` (awaiting it when it returns a promise) and returns the events judged meanwhile. */
  during(fn: () => unknown): Promise<SinkEvent[]>;
  /** Everything recorded since the last `take`/`during`, with the inputs. */
  readonly recorded: readonly RecordedEvent[];
}

/** Adds the recording detector to the agent running in this process (started by `startAgentInProcess`). */
export function recordSinkEvents(): SinkEventRecorder {
  const { getRuntime, setRuntime } = require('../../dist/src/runtime.js') as { getRuntime(): Runtime | undefined; setRuntime(r: Runtime): void };
  const { SINK_KINDS } = require('../../dist/src/events.js') as { SINK_KINDS: readonly SinkKind[] };
  const runtime = getRuntime();
  if (!runtime) throw new Error('no agent is running in this process: call startAgentInProcess() first');

  const recorded: RecordedEvent[] = [];
  const recorder: DetectorSlot = {
    detector: {
      id: 'test-recorder',
      kinds: SINK_KINDS,
      detect(event, inputs) {
        recorded.push({ event: { ...event }, inputs });
        return [];
      },
    },
    failures: 0,
    disabled: false,
  };
  const detectorsByKind = new Map<SinkKind, readonly DetectorSlot[]>();
  for (const kind of SINK_KINDS) detectorsByKind.set(kind, [recorder, ...(runtime.detectorsByKind.get(kind) ?? [])]);
  setRuntime({ ...runtime, detectorsByKind });

  const take = (): SinkEvent[] => recorded.splice(0).map((r) => r.event);
  return {
    take,
    async during(fn) {
      recorded.length = 0;
      await fn();
      return take();
    },
    get recorded() {
      return recorded;
    },
  };
}
