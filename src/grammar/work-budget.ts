/**
 * A cooperative CPU budget for one inspection. Every tokenizer and detector is linear, but "linear" is a
 * claim about the code we know; the budget is what holds when a shape nobody measured turns out slower.
 * The loops that can run long (tokenizer main loops, occurrence walks, nested shell fragments) call
 * `spendWork()`; once the inspection's CPU deadline has passed, the next call throws `WorkBudgetExceeded`
 * and the judge stops (src/judge/judge.ts): one request can never hold the event loop beyond its budget.
 *
 * Module state on purpose: judging is synchronous and never nests (the agent's own work is not judged),
 * so "the inspection running now" is well defined, and the hot loops pay one counter decrement per step
 * instead of carrying a deadline through every tokenizer's signature. Outside an inspection (the CLI,
 * telemetry redaction) there is no deadline and `spendWork()` never throws.
 */

/** Steps between two clock reads: a clock read costs about a microsecond, a step a few nanoseconds. */
const STEPS_PER_CHECK = 1024;

let deadlineMicros = 0;
let stepsLeft = STEPS_PER_CHECK;

export class WorkBudgetExceeded extends Error {
  constructor() {
    super('inspection exceeded its CPU budget');
    this.name = 'WorkBudgetExceeded';
  }
}

function cpuMicros(): number {
  const used = process.cpuUsage();
  return used.user + used.system;
}

/** Called once per step of a loop whose length the input decides. */
export function spendWork(): void {
  if (--stepsLeft > 0) return;
  stepsLeft = STEPS_PER_CHECK;
  if (deadlineMicros !== 0 && cpuMicros() > deadlineMicros) {
    // One throw per inspection: whatever runs after the judge stopped (the rules on the findings so far)
    // finishes instead of being cut short too.
    deadlineMicros = 0;
    throw new WorkBudgetExceeded();
  }
}

/**
 * Runs `work` under a budget of `ms` milliseconds of process CPU time; restores any budget around it.
 * `work` sees `WorkBudgetExceeded` thrown from its loops once the budget is spent.
 */
export function withWorkBudget<T>(ms: number, work: () => T): T {
  const saved = deadlineMicros;
  deadlineMicros = cpuMicros() + Math.max(0, ms) * 1000;
  stepsLeft = STEPS_PER_CHECK;
  try {
    return work();
  } finally {
    deadlineMicros = saved;
  }
}
