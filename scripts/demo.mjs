// Walkthrough of stepguard on the bank example (examples/bank): everything real — HTTP on loopback,
// PostgreSQL, the agent loaded with --require, findings exported over OTLP to a receiver printed here.
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSync } from 'otplib';
import pg from 'pg';

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const pgUrl = process.env.SG_PG_URL ?? 'postgres://postgres@127.0.0.1:54329/stepguard';
const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (n, s) => console.log(`\n${bold(`${n}. ${s}`)}`);

// Every run starts with fresh balances (the bank app creates and fills the table).
const db = new pg.Client({ connectionString: pgUrl });
await db.connect();
await db.query('DROP TABLE IF EXISTS accounts');
await db.end();

// A loopback OTLP/HTTP (JSON) receiver standing in for Jaeger/Tempo/Honeycomb: prints each span it gets.
const spans = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    for (const rs of JSON.parse(body).resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const span of ss.spans ?? []) {
          const attrs = Object.fromEntries(span.attributes.map((a) => [a.key, a.value.arrayValue ? (a.value.arrayValue.values ?? []).map((v) => Object.values(v)[0]) : Object.values(a.value)[0]]));
          spans.push({ name: span.name, attrs });
        }
    res.end('{}');
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));

// The local findings log (fresh on every run): the data behind `stepguard findings` and the dashboard.
const findingsFile = join(tmpdir(), 'stepguard-demo-findings.jsonl');
for (const f of [findingsFile, `${findingsFile}.1`, `${findingsFile}.2`, `${findingsFile}.3`]) rmSync(f, { force: true });

const storeDir = mkdtempSync(join(tmpdir(), 'stepguard-demo-'));
async function startBank(rulesFile) {
const app = spawn(process.execPath, ['--require', join(repo, 'dist/src/register.js'), join(repo, 'examples/bank/app.cjs')], {
  cwd: repo,
  stdio: ['ignore', 'pipe', 'pipe'],
  env: {
    ...process.env,
    PORT: '0',
    BANK_DB_URL: pgUrl,
    STEPGUARD_MODE: 'block',
    STEPGUARD_RULES: join(repo, 'examples/bank', rulesFile),
    STEPGUARD_STORE_DIR: storeDir,
    STEPGUARD_SECRET: process.env.STEPGUARD_SECRET ?? 'demo-only-secret-change-me-in-production!!',
    STEPGUARD_FINDINGS_FILE: findingsFile,
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_SERVICE_NAME: 'bank-demo',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.address().port}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  },
});
app.stderr.on('data', (c) => process.stdout.write(`   ${String(c).trimEnd().split('\n').join('\n   ')}\n`));
const port = await new Promise((resolvePort, reject) => {
  let out = '';
  app.stdout.on('data', (c) => {
    out += c;
    const m = /LISTENING (\d+)/.exec(out);
    if (m) resolvePort(Number(m[1]));
  });
  app.on('exit', (code) => reject(new Error(`the bank app exited (${code})`)));
});
return { app, port };
}
let { app, port } = await startBank('rules.yaml');
let base = `http://127.0.0.1:${port}`;
let cookie = '';
async function http(method, path, body, headers = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(cookie ? { cookie } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  for (const c of res.headers.getSetCookie()) cookie = [cookie, c.split(';')[0]].filter(Boolean).join('; ');
  const text = await res.text();
  console.log(`   → ${method} ${path}  ${res.status}${res.headers.get('www-authenticate') ? `\n     WWW-Authenticate: ${res.headers.get('www-authenticate')}` : ''}`);
  console.log(`     ${text.length > 400 ? text.slice(0, 400) + '…' : text}`);
  return { status: res.status, json: () => JSON.parse(text) };
}
const waitForSpan = async (pred) => {
  for (let i = 0; i < 50; i++) {
    const s = spans.find(pred);
    if (s) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
};

try {
  console.log(bold(`stepguard demo — the bank example under node --require stepguard/register (block mode), ${base}`));
  step(1, 'Alice signs in and searches her payees (the search concatenates input into SQL)');
  await http('POST', '/login', { username: 'alice', password: 'alice-password' });
  await http('GET', '/payees?q=b');

  step(2, "An attacker's search: a UNION injection that would dump every e-mail — refused before PostgreSQL sees it");
  await http('GET', `/payees?q=${encodeURIComponent("x' UNION SELECT email FROM accounts --")}`);
  const finding = await waitForSpan((s) => s.name === 'stepguard.finding' && s.attrs['stepguard.kind'] === 'attack');
  if (finding) {
    console.log('   The finding, as an OpenTelemetry span received over OTLP:');
    for (const k of ['security_rule.name', 'security_rule.category', 'stepguard.outcome', 'stepguard.source', 'stepguard.payload', 'db.system.name', 'db.query.text', 'http.route', 'client.address'])
      console.log(`     ${k.padEnd(24)} ${finding.attrs[k]}`);
  }

  step(3, 'Alice enrolls an authenticator app (through the app\'s own UI, using stepguard\'s API)');
  const { otpauth_uri } = (await http('POST', '/mfa/enroll')).json();
  const secret = new URL(otpauth_uri).searchParams.get('secret');

  step(4, 'Alice transfers 100 to Bob: the rule in examples/bank/rules.yaml asks for a step-up; the UPDATE does not run');
  const challenge = (await http('POST', '/transfer', { to: 'bob', amount: 100 })).json().challenge_id;

  step(5, 'She types the code from her authenticator app (computed here with otplib) and gets a short-lived grant');
  const code = generateSync({ secret });
  await http('POST', '/.well-known/stepguard/step-up', { challenge_id: challenge, code });

  step(6, 'She retries: the grant (cookie) satisfies the rule, the transfer runs');
  await http('POST', '/transfer', { to: 'bob', amount: 100 });
  await http('GET', '/balance');

  step(7, 'The same code again (a replay, e.g. by someone watching over her shoulder): refused');
  cookie = cookie.split('; ').filter((c) => !c.startsWith('sg_grant.')).join('; ');
  const again = (await http('POST', '/transfer', { to: 'bob', amount: 100 })).json().challenge_id;
  await http('POST', '/.well-known/stepguard/step-up', { challenge_id: again, code });
  await new Promise((r) => setTimeout(r, 300));

  step(8, 'Adaptive step-up: the same bank restarted with examples/bank/adaptive-rules.yaml — a step-up only when the risk calls for it');
  app.kill('SIGTERM');
  await new Promise((r) => app.once('exit', r));
  ({ app, port } = await startBank('adaptive-rules.yaml'));
  base = `http://127.0.0.1:${port}`;
  cookie = '';
  await http('POST', '/login', { username: 'bob', password: 'bob-password' });
  await http('GET', '/balance');
  const bobSecret = new URL((await http('POST', '/mfa/enroll')).json().otpauth_uri).searchParams.get('secret');
  console.log('   Bob transfers from a browser he never verified on: the new_device signal fires (level medium → otp)');
  const newDevice = (await http('POST', '/transfer', { to: 'alice', amount: 5 })).json().challenge_id;
  await http('POST', '/.well-known/stepguard/step-up', { challenge_id: newDevice, code: generateSync({ secret: bobSecret }) });
  const deviceCookie = cookie.split('; ').find((c) => c.startsWith('sg_device='));
  console.log('   Verified: the agent set a signed, HttpOnly device cookie (sg_device). Bob signs in again later (a new session, no grant):');
  cookie = deviceCookie;
  await http('POST', '/login', { username: 'bob', password: 'bob-password' });
  await http('GET', '/balance');
  console.log('   From his trusted device the transfer runs without a challenge:');
  await http('POST', '/transfer', { to: 'alice', amount: 5 });
  console.log('   The same account from another browser (no device cookie) is challenged:');
  cookie = '';
  await http('POST', '/login', { username: 'bob', password: 'bob-password' });
  await http('GET', '/balance');
  await http('POST', '/transfer', { to: 'alice', amount: 5 });
  const adaptive = await waitForSpan((s) => s.name === 'stepguard.finding' && s.attrs['stepguard.risk.level'] && s.attrs['stepguard.outcome'] === 'challenged');
  if (adaptive) {
    console.log('   The decision span names the level and the signals that fired:');
    for (const k of ['security_rule.name', 'stepguard.outcome', 'stepguard.risk.level', 'stepguard.risk.signals', 'stepguard.risk.acr_values', 'user.id'])
      console.log(`     ${k.padEnd(24)} ${JSON.stringify(adaptive.attrs[k])}`);
  }
  console.log(`\n${bold('Spans exported')}: ${spans.map((s) => s.attrs['stepguard.step_up.event'] ?? s.attrs['stepguard.kind'] ?? s.name).join(', ')}`);
  await new Promise((r) => setTimeout(r, 200)); // the findings log is written in small batches
  const cli = `node ${join('dist', 'src', 'cli', 'main.js')}`;
  console.log(`\n${bold('Trends')}: every finding and step-up event is also in the local findings log ${findingsFile}`);
  console.log(execFileSync(process.execPath, [join(repo, 'dist/src/cli/main.js'), 'findings', 'summary', '--file', findingsFile], { encoding: 'utf8' }).replace(/^/gm, '   '));
  console.log('See it yourself:');
  console.log(`   ${cli} findings summary --file ${findingsFile}    # per rule/route counts, vulnerable routes, step-up rates`);
  console.log(`   ${cli} findings --file ${findingsFile} --follow   # a table of findings as they happen`);
  console.log(`   ${cli} dashboard --file ${findingsFile}           # a local page on http://127.0.0.1:7420 (open the URL with the token it prints)`);
  console.log('\nDone. Services keep running for the next command (stop them with: bash scripts/services.sh stop).');
} finally {
  app.kill('SIGTERM');
  receiver.close();
}
