// Summarises a V8 .cpuprofile (from `node bench/run.mjs --cpu-prof block`, in bench/results/cpuprof/):
// where the process spent its time, by area (stepguard, express, pg, node internals, GC, idle), the
// functions with the most self time, and the stepguard functions with the most total (inclusive) time.
//
//   node bench/profile-summary.mjs bench/results/cpuprof/block-*.cpuprofile [--top 25]

import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const topIndex = args.indexOf('--top');
const TOP = topIndex >= 0 ? Number(args.splice(topIndex, 2)[1]) : 25;
if (args.length === 0) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile>... [--top N]');
  process.exit(1);
}

function area(frame) {
  const url = frame.url || '';
  if (frame.functionName === '(garbage collector)') return 'GC';
  if (frame.functionName === '(idle)') return 'idle';
  if (frame.functionName === '(program)') return 'program (native, unattributed)';
  if (/stepguard-bench-[^/]+\/dist\/|\/dist\/(src|hooks)\//.test(url)) return 'stepguard';
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/bench/')) return 'bench app';
  if (url === '') return 'native/builtin';
  return 'other';
}

for (const file of args) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample counts weighted by the time delta to the next sample.
  const selfUs = new Map();
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;

  const byArea = new Map();
  const byFunction = new Map();
  const inclusive = new Map(); // stepguard function key → µs (counted once per sample)
  let underStepguard = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    const f = node.callFrame;
    const a = area(f);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
    const key = `${f.functionName || '(anonymous)'}  ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${f.lineNumber + 1}`;
    byFunction.set(key, { us: (byFunction.get(key)?.us ?? 0) + us, area: a });
    const seen = new Set();
    let sawStepguard = false;
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      if (area(cf) !== 'stepguard') continue;
      sawStepguard = true;
      const k = `${cf.functionName || '(anonymous)'}  ${cf.url.replace(/^.*\/dist\//, 'dist/')}:${cf.lineNumber + 1}`;
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
    if (sawStepguard) underStepguard += us;
  }

  const pct = (us, of = busy) => `${((us / of) * 100).toFixed(1).padStart(5)}%`;
  const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  console.log(`\n${file}\n  sampled ${ms(total)}, busy ${ms(busy)} (idle ${pct(idle, total)} of wall); % below are of busy time`);
  console.log(`  time with a stepguard frame on the stack (inclusive): ${ms(underStepguard)} ${pct(underStepguard)}`);
  console.log('\n  self time by area');
  for (const [a, us] of [...byArea].filter(([a]) => a !== 'idle').sort((x, y) => y[1] - x[1]).slice(0, 15)) {
    console.log(`  ${ms(us)} ${pct(us)}  ${a}`);
  }
  console.log(`\n  top ${TOP} functions by self time`);
  for (const [k, v] of [...byFunction].filter(([, v]) => v.area !== 'idle').sort((x, y) => y[1].us - x[1].us).slice(0, TOP)) {
    console.log(`  ${ms(v.us)} ${pct(v.us)}  [${v.area}] ${k}`);
  }
  console.log(`\n  top ${TOP} stepguard functions by inclusive time`);
  for (const [k, us] of [...inclusive].sort((x, y) => y[1] - x[1]).slice(0, TOP)) {
    console.log(`  ${ms(us)} ${pct(us)}  ${k}`);
  }
}
