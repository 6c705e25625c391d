// bench/app.cjs under a Valgrind tool, for bench/instructions.mjs (cachegrind) and bench/attribute.mjs (callgrind).

import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = dirname(fileURLToPath(import.meta.url));

/** Stops with a message when valgrind is missing; creates and fills the app's table (PostgreSQL must be up). */
export function prepare(node, fail) {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    fail('valgrind is not installed (apt-get install -y valgrind)');
  }
  execFileSync(node, [join(BENCH, 'app.cjs'), '--setup'], { stdio: 'ignore' });
}

/**
 * The agent's metric export runs once a minute by the clock (OTEL_METRIC_EXPORT_INTERVAL, 60 s by default), not once
 * per some number of requests. Under Valgrind the app serves 30-50 times fewer requests a minute, so a count per
 * request would charge each minute's export to 30-50 times fewer requests than it is shared by in a real process;
 * and on a route without findings the first export also starts the export thread (a Node isolate loading the OTLP
 * exporter: about 194 M instructions on Node 24, once per process), which fell inside or outside a counted window
 * depending on how fast the first requests went (Node 24 `/param`, per function: 265.6 k and 282.4 k for one build,
 * 238.4 k with the export left out). An hour keeps both out of every window; bench/export-cost.mjs counts the export
 * apart. Set OTEL_METRIC_EXPORT_INTERVAL to count it in anyway.
 */
export const METRIC_EXPORT_INTERVAL_UNDER_VALGRIND_MS = 3_600_000;

/**
 * Starts `valgrind TOOL_ARGS NODE NODE_ARGS bench/app.cjs` on a free loopback port and waits until it listens.
 * `extraEnv` is added to the app's environment last. Returns the child, its port, and its stderr so far (a function: it
 * keeps growing).
 */
export async function startUnderValgrind(toolArgs, node, nodeArgs, label, extraEnv = {}) {
  const port = await freePort();
  const child = spawn('valgrind', [...toolArgs, node, ...nodeArgs, join(BENCH, 'app.cjs')], {
    env: {
      ...process.env,
      PORT: String(port),
      BENCH_SKIP_SETUP: '1',
      BENCH_KEEP_ALIVE_MS: '600000',
      STEPGUARD_MODE: process.env.STEPGUARD_MODE ?? 'block',
      OTEL_METRIC_EXPORT_INTERVAL: process.env.OTEL_METRIC_EXPORT_INTERVAL ?? String(METRIC_EXPORT_INTERVAL_UNDER_VALGRIND_MS),
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise((r) => child.on('exit', r));
  for (let waited = 0; !out.includes('LISTENING'); waited += 200) {
    if (waited > 120_000 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`${label}: the app did not start under valgrind:\n${err.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, port, exited, stderr: () => err };
}

/**
 * Why the agent's start-up line does not show rules, or undefined when it does: a build run from outside its checkout
 * (a copy of dist/ without rules/ beside it) starts with none, and its count would measure a different agent.
 */
export function agentStartProblem(stderr, register) {
  const error = /^\[stepguard\] error: .*$/m.exec(stderr)?.[0];
  const rules = Number(/\[stepguard\] active: [^\n]*?(\d+) rules/.exec(stderr)?.[1] ?? NaN);
  if (!error && rules > 0) return undefined;
  return `the agent (${register}) did not start with its rules — ${error ?? 'no "[stepguard] active: … N rules" line'}. A build copied elsewhere needs its rules/ directory beside dist/ (and package.json).`;
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}
