import { afterAll, describe, expect, it } from 'vitest';
import { SHAPES, type Shape } from './shapes.js';

/**
 * Complexity check: every tokenizer, detector, redaction function and the rule matcher must take time linear
 * in its input on the adversarial shapes of shapes.ts.
 *
 * The statistic, chosen to be robust on a loaded 2-core machine shared with other jobs:
 * - Time is CPU time of this process (`process.cpuUsage`), not wall time: being descheduled by other jobs
 *   costs no CPU time.
 * - Each size is measured as a batch that handles about the same number of characters (16 calls at 4 KB,
 *   1 call at 64 KB), repeated until it has used at least 5 ms of CPU, so every measurement is a comparable
 *   amount of work, well above the resolution of the CPU clock.
 *   The results of a batch are kept alive until it ends, so small sizes see the same memory pressure (live
 *   tokens, garbage collection, cache misses) as one large call; otherwise a tokenizer allocating one
 *   object per token looks super-linear only because 4 KB of tokens fit in the CPU cache and 64 KB do not.
 * - Sizes are measured round-robin, several rounds, keeping each size's *minimum*: interference only ever
 *   adds time, so the minimum is the best estimate of the true cost.
 * - The growth exponent is the least-squares slope of log(time per call) against log(size), over sizes
 *   4 KB → 64 KB in CI (a factor of 16; 4 KB → 1 MB and beyond in the nightly run). Linear code gives ~1
 *   (cache effects can push it a little higher),
 *   quadratic code 2. The bound is 1.3: a quadratic shape fails by a wide margin, noise does not reach it.
 *   A shape over the bound is measured again (up to twice) before failing, since one bad round can only
 *   make an exponent look worse, never better.
 * - The first round stops early when one size costs more than 12 times the previous one (4 times the
 *   characters: linear code costs ~4 times, quadratic 16), or a call takes seconds: the shape is super-linear already,
 *   and the larger sizes would only make the test hang.
 *
 * Knobs (for the nightly run, `npm run fuzz`): COMPLEXITY_MIN_KB and COMPLEXITY_MAX_KB (sizes, default 4 and 64),
 * COMPLEXITY_ROUNDS (rounds per shape, default 2), COMPLEXITY_FILTER (substring of shape names),
 * COMPLEXITY_REPORT=1 (print each shape's CPU ms per 100 KB at the largest size, slowest first: the README's figures).
 */

const MIN_SIZE = Number(process.env.COMPLEXITY_MIN_KB ?? 4) * 1024;
const MAX_SIZE = Number(process.env.COMPLEXITY_MAX_KB ?? 64) * 1024;
const ROUNDS = Number(process.env.COMPLEXITY_ROUNDS ?? 2);
const FILTER = process.env.COMPLEXITY_FILTER ?? '';
const REPORT = process.env.COMPLEXITY_REPORT === '1';
const perHundredKb: [string, number][] = [];
const MAX_EXPONENT = 1.3;
const GIVE_UP_MS = 5_000;
/** A batch is repeated until it has used this much CPU time: fast shapes would otherwise measure the clock's grain. */
const MIN_MEASURE_MS = 5;

const SIZES: number[] = [];
for (let s = MIN_SIZE; s <= MAX_SIZE; s *= 4) SIZES.push(s);

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Measurement {
  readonly exponent: number;
  /** Best CPU time per call, by size. */
  readonly perCall: readonly number[];
  readonly gaveUp: boolean;
}

function measure(shape: Shape): Measurement {
  const calls = SIZES.map((size) => ({ size, run: shape.prepare(size), batch: Math.max(1, Math.round(MAX_SIZE / size)) }));
  // Warm up (JIT) on the smallest input.
  for (let k = 0; k < 3; k++) calls[0]!.run();
  const best = SIZES.map(() => Infinity);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < calls.length; k++) {
      const { run, batch } = calls[k]!;
      let perCall = cpuPerCall(run, batch);
      const suspect = () => round === 0 && k > 0 && perCall > 1 && perCall > 12 * best[k - 1]!;
      // One garbage collection inside a short batch looks like a blow-up: only a repeated one stops the shape early.
      if (suspect()) perCall = Math.min(perCall, cpuPerCall(run, batch));
      best[k] = Math.min(best[k]!, perCall);
      if (perCall > GIVE_UP_MS || suspect()) {
        return { exponent: slope(SIZES.slice(0, k + 1), best.slice(0, k + 1)), perCall: best, gaveUp: true };
      }
    }
  }
  return { exponent: slope(SIZES, best), perCall: best, gaveUp: false };
}

/** CPU ms per call, over batches repeated until they have used MIN_MEASURE_MS (results kept alive meanwhile). */
function cpuPerCall(run: () => unknown, batch: number): number {
  let done = 0;
  let elapsed = 0;
  const t0 = cpuMs();
  do {
    const kept: unknown[] = new Array(batch);
    for (let b = 0; b < batch; b++) kept[b] = run();
    done += batch;
    elapsed = cpuMs() - t0;
  } while (elapsed < MIN_MEASURE_MS);
  return elapsed / done;
}

/** Least-squares slope of log(y) over log(x); y values under the timer's resolution are raised to it. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map((y) => Math.log(Math.max(y, 0.001)));
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  for (let k = 0; k < lx.length; k++) {
    num += (lx[k]! - mx) * (ly[k]! - my);
    den += (lx[k]! - mx) ** 2;
  }
  return num / den;
}

describe(`linear time on adversarial shapes (CPU time against input size, ${MIN_SIZE / 1024} KB → ${MAX_SIZE / 1024} KB)`, () => {
  for (const shape of SHAPES.filter((s) => s.name.includes(FILTER))) {
    it(shape.name, () => {
      let m = measure(shape);
      for (let retry = 0; retry < 2 && m.exponent > MAX_EXPONENT; retry++) {
        const again = measure(shape);
        if (again.exponent < m.exponent) m = again;
      }
      perHundredKb.push([shape.name, (m.perCall[SIZES.length - 1]! * 100 * 1024) / SIZES[SIZES.length - 1]!]);
      const detail = SIZES.map((s, k) => `${s / 1024} KB: ${m.perCall[k]!.toFixed(2)} ms`).join(', ');
      expect(m.exponent, `growth exponent ${m.exponent.toFixed(2)} (${detail})`).toBeLessThanOrEqual(MAX_EXPONENT);
    }, 120_000);
  }
});

afterAll(() => {
  if (!REPORT) return;
  const rows = perHundredKb.sort((a, b) => b[1] - a[1]).map(([name, ms]) => `${ms.toFixed(1).padStart(7)} ms per 100 KB  ${name}`);
  console.log(`CPU time per 100 KB at ${MAX_SIZE / 1024} KB:\n${rows.join('\n')}`);
});
