// Outgoing-request overhead: one `http.get` to a loopback server (keep-alive agent, response read to the end),
// made inside a request context whose input is benign (`?q=hello`, not in the URL), with and without the agent.
// Each variant is its own child process; the server runs in this process, so its cost is the same for both.
// Rounds alternate the variants and the table shows medians, so drift of a shared machine cancels out.
//
//   node bench/http-out.mjs                       # 5 rounds x 3000 requests per variant
//   node bench/http-out.mjs --rounds 3 --ops 1000
//
// Prints wall-clock and client-CPU ns/op per variant and the ratio agent/none; writes bench/results/http-out.json.

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
// This script is an ES module: the agent is loaded the way ESM apps load it.
const REGISTER = join(ROOT, 'dist', 'src', 'register-esm.mjs');
const INDEX = join(ROOT, 'dist', 'src', 'index.js');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};

if (process.argv[2] === '--child') {
  // Child: N sequential http.get calls inside runWithContext, after a warm-up of N/5.
  const [, , , port, ops] = process.argv;
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const http = require('node:http');
  const { runWithContext } = require(INDEX);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = `http://127.0.0.1:${port}/item?id=42`;
  const once = () =>
    new Promise((resolve, reject) => {
      http
        .get(url, { agent }, (res) => {
          res.on('data', () => {});
          res.on('end', resolve);
        })
        .on('error', reject);
    });
  const input = { method: 'GET', url: '/search?q=hello', query: { q: 'hello' }, headers: { 'user-agent': 'bench' } };
  const run = async (n) => {
    for (let i = 0; i < n; i++) await runWithContext(input, once);
  };
  const n = Number(ops);
  await run(Math.ceil(n / 5));
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await run(n);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  const c = process.cpuUsage(c0);
  process.stdout.write(JSON.stringify({ ns, cpuNs: ((c.user + c.system) * 1000) / n }) + '\n');
  agent.destroy();
  process.exit(0);
}

const rounds = arg('rounds', 5);
const ops = arg('ops', 3000);
const server = createServer((_req, res) => res.end('{"id":42,"name":"item"}'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;

const variants = {
  none: [],
  agent: ['--import', REGISTER],
};
const env = { ...process.env, STEPGUARD_MODE: 'block', STEPGUARD_TELEMETRY: 'false', STEPGUARD_LOG_FINDINGS: 'false', STEPGUARD_LOG_LEVEL: 'error', OTEL_TRACES_EXPORTER: 'none' };

function measure(flags) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, fileURLToPath(import.meta.url), '--child', String(port), String(ops)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}`))));
  });
}

const samples = { none: [], agent: [] };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ['none', 'agent'] : ['agent', 'none'];
  for (const name of order) samples[name].push(await measure(variants[name]));
}
server.close();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stat = (name, key) => median(samples[name].map((x) => x[key]));
const result = { ops, rounds };
for (const key of ['ns', 'cpuNs']) {
  result[key] = { none: stat('none', key), agent: stat('agent', key) };
  result[key].ratio = result[key].agent / result[key].none;
}
console.log(`http.get to loopback inside a request context (benign input), ${ops} ops x ${rounds} rounds, medians:`);
console.log(`              wall ns/op   client CPU ns/op`);
for (const name of ['none', 'agent']) console.log(`  ${name.padEnd(6)} ${result.ns[name].toFixed(0).padStart(14)} ${result.cpuNs[name].toFixed(0).padStart(18)}`);
console.log(`  ratio  ${result.ns.ratio.toFixed(3).padStart(14)} ${result.cpuNs.ratio.toFixed(3).padStart(18)}`);
console.log(`  (client CPU time is the steadier figure on a shared machine)`);
mkdirSync(join(BENCH, 'results'), { recursive: true });
writeFileSync(join(BENCH, 'results', 'http-out.json'), JSON.stringify({ ...result, samples }, null, 2) + '\n');
