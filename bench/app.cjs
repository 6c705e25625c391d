'use strict';
// Benchmark target: a small Express 4 app with one route that touches nothing, one parameterized
// PostgreSQL query and one query built by string concatenation (fed benign input by the benchmark, so an
// agent sees user input inside the statement but must not block it).
//
//   PORT=3000 node bench/app.cjs                 # creates the users table if missing, then listens
//   node bench/app.cjs --setup                   # only create/fill the table, print SETUP OK, exit
//   BENCH_SKIP_SETUP=1 PORT=3000 node bench/app.cjs   # listen at once (bench/run.mjs sets up beforehand)
//   BENCH_ZEN=1 AIKIDO_BLOCK=true node bench/app.cjs  # Zen loaded the way its Express docs say: first require
//
// Env: PORT (default 3000), SG_PG_URL (default postgres://postgres@127.0.0.1:54329/stepguard),
// BENCH_PG_SCHEMA (default stepguard_bench): the users table lives in this schema (first on the connections'
// search_path, so the statements still say plain "users"), apart from public.users, which the test suites
// drop and recreate — a test run during the benchmark would otherwise fail requests and take table locks.
// BENCH_PG_LOG=1 keeps the server's statement log on for the app's connections (scripts/services.sh starts
// PostgreSQL with log_statement=all; by default the app's connections turn it off so the log neither grows
// by millions of lines nor costs the database time during the measurement).
// BENCH_KEEP_ALIVE_MS: the server's keep-alive timeout (Node's default, 5 s, unless set; bench/instructions.mjs sets it).

if (process.env.BENCH_ZEN === '1') {
  // Zen's docs (docs/express.md): "require('@aikidosec/firewall')" before any other code or imports.
  require('@aikidosec/firewall');
}

const express = require('express');
const { Pool } = require('pg');

const PG_URL = process.env.SG_PG_URL || 'postgres://postgres@127.0.0.1:54329/stepguard';
const PORT = Number(process.env.PORT || 3000);
const SCHEMA = process.env.BENCH_PG_SCHEMA || 'stepguard_bench';
if (!/^[a-z_][a-z0-9_]*$/.test(SCHEMA)) throw new Error(`BENCH_PG_SCHEMA must be a plain identifier, not ${SCHEMA}`);

const pool = new Pool({
  connectionString: PG_URL,
  max: Number(process.env.BENCH_PG_POOL || 10),
  // Sent in the startup packet, so no extra statement per connection (the postgres superuser may set
  // log_statement).
  options: `-c search_path=${SCHEMA}` + (process.env.BENCH_PG_LOG === '1' ? '' : ' -c log_statement=none'),
});
pool.on('error', (err) => console.error('pg pool error:', err.message));

const USERS = [
  [1, 'alice', 'alice@example.com', 'TOPSECRET-alice'],
  [2, 'bob', 'bob@example.com', 'TOPSECRET-bob'],
  [3, 'carol', 'carol@example.com', 'TOPSECRET-carol'],
];

async function setup() {
  const client = await pool.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    await client.query('CREATE TABLE IF NOT EXISTS users (id int primary key, name text, email text, secret text)');
    for (const u of USERS) {
      await client.query('INSERT INTO users VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING', u);
    }
  } finally {
    client.release();
  }
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.get('/hello', (req, res) => {
  res.send('hello');
});

app.get('/param', async (req, res, next) => {
  try {
    const name = String(req.query.name ?? '');
    const { rows } = await pool.query('SELECT id, name FROM users WHERE name = $1', [name]);
    res.json(rows);
  } catch (err) {
    next(err);
  }
});

app.get('/concat', async (req, res, next) => {
  try {
    const name = String(req.query.name ?? '');
    const { rows } = await pool.query("SELECT id, name FROM users WHERE name = '" + name + "'");
    res.json(rows);
  } catch (err) {
    next(err);
  }
});

// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  if (!res.headersSent) res.status(500).type('text').send(`error: ${err && err.message}`);
});

async function main() {
  if (process.argv.includes('--setup')) {
    await setup();
    await pool.end();
    console.log('SETUP OK');
    return;
  }
  if (process.env.BENCH_SKIP_SETUP !== '1') await setup();
  const server = app.listen(PORT, '127.0.0.1', () => {
    console.log(`LISTENING ${server.address().port}`);
  });
  // bench/instructions.mjs: under Valgrind a process runs ~30x slower, and a stall of a few seconds early in the run
  // outlasted Node's 5 s keep-alive timeout; the server then closed a connection whose next request was already on
  // its way, and the client saw ECONNRESET (gone with a longer timeout). The timer's per-request work stays the same.
  if (process.env.BENCH_KEEP_ALIVE_MS) server.keepAliveTimeout = Number(process.env.BENCH_KEEP_ALIVE_MS);
  const stop = () => {
    server.close();
    pool.end().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(`bench app failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
