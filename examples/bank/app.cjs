// A small bank: sign in, see your balance, search payees, transfer money, change your e-mail.
// Run it under the agent:  node --require stepguard/register examples/bank/app.cjs
// The app has no step-up code at all; examples/bank/rules.yaml makes transfers and e-mail changes
// ask for a one-time password. Its payee search is deliberately injectable, to show a blocked attack.
const crypto = require('node:crypto');
const express = require('express');
const { Pool } = require('pg');

const pool = new Pool({ connectionString: process.env.BANK_DB_URL || process.env.SG_PG_URL, max: 5 });
// Sessions are signed cookies (`sid=<user>.<nonce>.<mac>`), so several instances of the app share them.
const SESSION_KEY = process.env.BANK_SESSION_SECRET || crypto.randomBytes(32).toString('hex');
const mac = (text) => crypto.createHmac('sha256', SESSION_KEY).update(text).digest('base64url');
function newSession(user) {
  const body = `${user}.${crypto.randomBytes(12).toString('base64url')}`;
  return `${body}.${mac(body)}`;
}
function userOfSession(cookieValue) {
  const dot = cookieValue.lastIndexOf('.');
  if (dot === -1) return undefined;
  const body = cookieValue.slice(0, dot);
  const expected = Buffer.from(mac(body));
  const given = Buffer.from(cookieValue.slice(dot + 1));
  return given.length === expected.length && crypto.timingSafeEqual(given, expected) ? body.split('.')[0] : undefined;
}
const USERS = Object.fromEntries(['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'].map((u) => [u, `${u}-password`]));

async function setup() {
  await pool.query(`CREATE TABLE IF NOT EXISTS accounts (id text PRIMARY KEY, email text NOT NULL, balance integer NOT NULL CHECK (balance >= 0))`);
  for (const id of Object.keys(USERS)) {
    const balance = 1000;
    await pool.query('INSERT INTO accounts (id, email, balance) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [id, `${id}@bank.example`, balance]);
  }
}

const app = express();
app.use(express.json());

// Authentication: a session cookie set at login. Sets req.user the way passport does, which is one of the
// conventions stepguard reads to know who is asking.
app.use((req, res, next) => {
  const sid = /(?:^|;\s*)sid=([A-Za-z0-9_.-]{1,200})/.exec(req.headers.cookie || '')?.[1];
  const user = sid && userOfSession(sid);
  if (user && USERS[user]) req.user = { id: user };
  next();
});
const signedIn = (req, res, next) => (req.user ? next() : res.status(401).json({ error: 'sign in first' }));

app.post('/login', (req, res) => {
  const { username, password } = req.body || {};
  const expected = USERS[username];
  const ok = expected && crypto.timingSafeEqual(Buffer.from(String(password).padEnd(64)), Buffer.from(expected.padEnd(64)));
  if (!ok) return res.status(401).json({ error: 'wrong username or password' });
  res.setHeader('set-cookie', `sid=${newSession(username)}; Path=/; HttpOnly; SameSite=Lax`);
  res.json({ user: username });
});

app.get('/balance', signedIn, async (req, res, next) => {
  try {
    const { rows } = await pool.query('SELECT id, email, balance FROM accounts WHERE id = $1', [req.user.id]);
    res.json(rows[0]);
  } catch (e) {
    next(e);
  }
});

// Deliberately vulnerable: the search term is concatenated into the statement.
app.get('/payees', signedIn, async (req, res, next) => {
  try {
    const { rows } = await pool.query(`SELECT id FROM accounts WHERE id LIKE '%${req.query.q || ''}%' AND id <> '${req.user.id}'`);
    res.json(rows.map((r) => r.id));
  } catch (e) {
    next(e);
  }
});

app.post('/transfer', signedIn, async (req, res, next) => {
  const { to, amount } = req.body || {};
  if (!USERS[to] || !Number.isInteger(amount) || amount <= 0) return res.status(400).json({ error: 'to and a positive integer amount are required' });
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, req.user.id]);
    await client.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [amount, to]);
    await client.query('COMMIT');
    res.json({ ok: true, from: req.user.id, to, amount });
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    next(e);
  } finally {
    client.release();
  }
});

app.post('/email', signedIn, async (req, res, next) => {
  try {
    await pool.query('UPDATE accounts SET email = $1 WHERE id = $2', [String(req.body.email), req.user.id]);
    res.json({ ok: true });
  } catch (e) {
    next(e);
  }
});

// Enrollment in the app's own UI, through stepguard's API: returns the otpauth:// URI to show once.
app.post('/mfa/enroll', signedIn, async (req, res, next) => {
  try {
    const { stepUp } = require('stepguard');
    const { uri } = await stepUp.enroll(req.user.id, { replace: req.query.replace === '1' });
    res.json({ otpauth_uri: uri });
  } catch (e) {
    if (e && e.code === 'ERR_STEPGUARD_ALREADY_ENROLLED') return res.status(409).json({ error: 'already enrolled' });
    next(e);
  }
});

// A support form that forgot its authentication middleware: the agent still refuses the e-mail change,
// because nobody can prove who they are.
app.post('/support/email', async (req, res, next) => {
  try {
    await pool.query('UPDATE accounts SET email = $1 WHERE id = $2', [String(req.body.email), String(req.body.user)]);
    res.json({ ok: true });
  } catch (e) {
    next(e);
  }
});

app.use((err, req, res, next) => {
  res.status(500).json({ error: 'internal error' });
});

setup().then(() => {
  const server = app.listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => pool.end().finally(() => process.exit(0))));
});
