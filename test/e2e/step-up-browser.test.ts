/**
 * Passkeys, the verification page and recovery codes in a real browser: headless Chromium (Debian's `chromium`,
 * driven by playwright-core, no browser download) with the DevTools virtual authenticator (CTAP2, internal
 * transport, user verification on). The fixture app (test/fixtures/apps/passkey-app.cjs) runs under the agent with
 * a rule asking for the phishing-resistant tier (wires) and one asking for the OTP tier (notes); every executed
 * operation is a row in PostgreSQL. Also checks the page's CSP, CSRF and return_to refusals over plain HTTP, the code
 * form without JavaScript, and saves docs/step-up-page.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { generateSync } from 'otplib';
import { chromium, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { REPO, fixture, startApp, type RunningApp } from '../helpers/app.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';
import { TokenSigner } from '../../src/stepup/tokens.js';

const CHROMIUM = '/usr/bin/chromium';
const VERIFY = '/.well-known/stepguard/step-up';
const SECRET = 'browser-test-secret-with-at-least-32-chars';
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
// Chromium tries localhost on ::1 only; the app listens on 127.0.0.1.
const ARGS = ['--host-resolver-rules=MAP localhost 127.0.0.1', '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let app: RunningApp;
let origin: string;
let browser: BrowserContext;
let noScript: BrowserContext;
const totpSecrets = new Map<string, string>();
let aliceCodes: string[] = [];
/** alice's tab: the virtual authenticator belongs to this page's DevTools target. */
let alicePage: Page;
let aliceCdp: CDPSession;
let authenticatorId: string;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function count(table: 'pk_wires' | 'pk_notes', who: string): Promise<number> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE who = $1`, [who])).rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** A TOTP code for `user`, `offset` steps ahead (each use needs a new time step: codes are single use). */
function totp(user: string, offset = 0): string {
  return generateSync({ secret: totpSecrets.get(user)!, epoch: Math.floor(Date.now() / 1000) + offset * 30 });
}

async function signIn(context: BrowserContext, user: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${origin}/login?user=${user}`);
  await page.waitForSelector('#done');
  return page;
}

async function enrollTotp(context: BrowserContext, user: string): Promise<string[]> {
  const reply = await context.request.post(`${origin}/mfa/enroll`);
  expect(reply.status()).toBe(200);
  const body = (await reply.json()) as { otpauth_uri: string; recovery_codes: string[] };
  totpSecrets.set(user, new URL(body.otpauth_uri).searchParams.get('secret')!);
  return body.recovery_codes;
}

interface Challenge {
  challenge_id: string;
  acr_values: string;
  methods: string[];
  verify_page: string;
}

async function challengeFor(context: BrowserContext, path: '/wire' | '/note', body: unknown): Promise<Challenge> {
  const reply = await context.request.post(`${origin}${path}`, { data: body });
  expect(reply.status()).toBe(401);
  return (await reply.json()) as Challenge;
}

async function sessionCookie(context: BrowserContext): Promise<string> {
  return (await context.cookies(origin)).find((c) => c.name === 'sid')!.value;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium) to run the browser test`);
  await requirePostgres();
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query('DROP TABLE IF EXISTS pk_wires, pk_notes').finally(() => client.end());
  const port = await freePort();
  // WebAuthn needs a secure context: http://localhost is one.
  origin = `http://localhost:${port}`;
  app = await startApp(fixture('passkey-app.cjs'), {
    env: {
      PORT: String(port),
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: fixture('passkey-rules.yaml'),
      STEPGUARD_STORE_DIR: mkdtempSync(join(tmpdir(), 'sg-passkey-store-')),
      STEPGUARD_SECRET: SECRET,
      STEPGUARD_WEBAUTHN_RP_ID: 'localhost',
      STEPGUARD_WEBAUTHN_ORIGINS: origin,
    },
  });
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sg-chromium-')), { executablePath: CHROMIUM, headless: true, args: ARGS });
  noScript = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sg-chromium-nojs-')), { executablePath: CHROMIUM, headless: true, args: ARGS, javaScriptEnabled: false });
  // A step that hangs fails with Playwright's message (what it waited for) before the test's own timeout.
  browser.setDefaultTimeout(20_000);
  noScript.setDefaultTimeout(20_000);
});

afterAll(async () => {
  await browser?.close();
  await noScript?.close();
  await app?.stop();
});

describe('step-up in a browser: passkeys, the verification page, recovery codes', { timeout: 90_000 }, () => {
  it('registers a passkey on the page after a fresh step-up (alice already has TOTP)', async () => {
    const page = await signIn(browser, 'alice');
    alicePage = page;
    const cdp = await browser.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    aliceCdp = cdp;
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    }));
    aliceCodes = await enrollTotp(browser, 'alice');
    expect(aliceCodes).toHaveLength(10);

    // Enrolled: adding a passkey first goes through the verification page (scope stepguard.enroll).
    await page.goto(`${origin}/passkeys/add`);
    expect(new URL(page.url()).pathname).toBe(VERIFY);
    expect(new URL(page.url()).searchParams.get('return_to')).toBe('/passkeys/add');
    await page.fill('#sg-code', totp('alice'));
    await page.click('form.sg-code-form button[type=submit]');
    // Back at /passkeys/add with the grant, which now sends the browser to the registration page.
    await page.waitForSelector('#sg-register-button');
    expect(new URL(page.url()).searchParams.get('register')).toBeTruthy();
    await page.click('#sg-register-button');
    await page.waitForSelector('#sg-done:not([hidden])');
    // alice already had recovery codes: none are shown again.
    expect(await page.isHidden('#sg-codes')).toBe(true);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
  });

  it('a high-risk operation needs the passkey: an OTP cannot answer it, the passkey can, and the operation runs exactly once', async () => {
    const page = alicePage;
    expect(await count('pk_wires', 'alice')).toBe(0);

    const challenge = await challengeFor(browser, '/wire', { amount: 250 });
    expect(challenge.acr_values).toBe('urn:stepguard:acr:phr');
    expect(challenge.methods).toEqual(['webauthn']);
    expect(await count('pk_wires', 'alice')).toBe(0);

    // A one-time code (or a recovery code) cannot answer a passkey challenge.
    const otp = await browser.request.post(`${origin}${VERIFY}`, { data: { challenge_id: challenge.challenge_id, code: totp('alice', 1) } });
    expect(otp.status()).toBe(403);
    expect(((await otp.json()) as { type: string }).type).toBe('urn:stepguard:problem:method-not-allowed');
    const recovery = await browser.request.post(`${origin}${VERIFY}/recovery`, { data: { challenge_id: challenge.challenge_id, recovery_code: aliceCodes[9] } });
    expect(recovery.status()).toBe(403);

    // A grant of the OTP tier for this very scope, user and session (signed with the real key) is not enough.
    const signer = TokenSigner.fromSecret(SECRET).signer;
    const now = Math.floor(Date.now() / 1000);
    const otpGrant = signer.sign({
      typ: 'grant',
      sub: 'alice',
      sid: signer.bindingHash(`cookie:sid=${await sessionCookie(browser)}`),
      scope: 'wire-phr',
      acr: 'urn:stepguard:acr:otp',
      amr: ['otp', 'mfa'],
      auth_time: now,
      exp: now + 300,
      jti: 'otp-grant',
    });
    const withOtpGrant = await browser.request.post(`${origin}/wire`, { data: { amount: 250 }, headers: { 'stepguard-grant': otpGrant } });
    expect(withOtpGrant.status()).toBe(401);
    expect(await count('pk_wires', 'alice')).toBe(0);

    // The page offers only the passkey; using it returns to the app with a grant.
    await page.goto(`${origin}${challenge.verify_page}&return_to=/done`);
    expect(await page.isVisible('#sg-passkey-button')).toBe(true);
    expect(await page.$('#sg-code')).toBeNull();
    await page.click('#sg-passkey-button');
    await page.waitForURL(`${origin}/done`);
    const grantCookie = (await browser.cookies(origin)).find((c) => c.name === 'sg_grant.wire-phr')!;
    const claims = JSON.parse(Buffer.from(grantCookie.value.split('.')[0]!, 'base64url').toString()) as { acr: string; amr: string[] };
    expect(claims.acr).toBe('urn:stepguard:acr:phr');
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);
    expect(grantCookie.httpOnly).toBe(true);

    const retried = await browser.request.post(`${origin}/wire`, { data: { amount: 250 } });
    expect(retried.status()).toBe(200);
    expect(await count('pk_wires', 'alice')).toBe(1);

    // The answered challenge cannot be answered again.
    const again = await page.goto(`${origin}${challenge.verify_page}&return_to=/done`);
    expect(again!.status()).toBe(200);
    await page.click('#sg-passkey-button');
    await page.waitForSelector('#sg-error:not([hidden])');
    expect(await page.textContent('#sg-error')).toContain('already answered');
    expect(await count('pk_wires', 'alice')).toBe(1);
  });

  it('a cloned authenticator (signature counter going back) is refused and logged', async () => {
    const page = alicePage;
    const { credentials } = await aliceCdp.send('WebAuthn.getCredentials', { authenticatorId });
    const original = credentials[0]!;
    expect(original.signCount).toBeGreaterThan(0);
    // The same key with its counter reset: what a copy of the key made earlier would present.
    await aliceCdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: original.credentialId });
    await aliceCdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...original, signCount: 0 } });
    await browser.clearCookies({ name: 'sg_grant.wire-phr' });
    const challenge = await challengeFor(browser, '/wire', { amount: 999 });
    await page.goto(`${origin}${challenge.verify_page}&return_to=/done`);
    await page.click('#sg-passkey-button');
    await page.waitForSelector('#sg-error:not([hidden])');
    expect(await page.textContent('#sg-error')).toContain('could not be verified');
    expect(new URL(page.url()).pathname).toBe(VERIFY);
    expect(app.stderr() + app.stdout()).toContain('signature counter that did not increase');
    expect((await browser.request.post(`${origin}/wire`, { data: { amount: 999 } })).status()).toBe(401);
    expect(await count('pk_wires', 'alice')).toBe(1);
    // Put the real key back (its counter ahead of the stored one) for the tests that follow.
    await aliceCdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: original.credentialId });
    await aliceCdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...original, signCount: original.signCount + 10 } });
  });

  it('a recovery code answers an OTP-tier challenge on the page, once', async () => {
    const page = await browser.newPage();
    const first = await challengeFor(browser, '/note', { text: 'one' });
    expect(first.methods).toEqual(['webauthn', 'totp', 'recovery_code']);
    await page.goto(`${origin}${first.verify_page}&return_to=/done`);
    await page.setViewportSize({ width: 560, height: 640 });
    await page.screenshot({ path: join(REPO, 'docs/step-up-page.png') });
    expect(readFileSync(join(REPO, 'docs/step-up-page.png')).subarray(1, 4).toString()).toBe('PNG');
    await page.fill('#sg-code', aliceCodes[0]!.toLowerCase());
    await page.click('form.sg-code-form button[type=submit]');
    await page.waitForURL(`${origin}/done`);
    const grant = (await browser.cookies(origin)).find((c) => c.name === 'sg_grant.note-otp')!;
    expect(JSON.parse(Buffer.from(grant.value.split('.')[0]!, 'base64url').toString())).toMatchObject({ acr: 'urn:stepguard:acr:otp', amr: ['rcode'] });
    expect((await browser.request.post(`${origin}/note`, { data: { text: 'one' } })).status()).toBe(200);
    expect(await count('pk_notes', 'alice')).toBe(1);

    // The same code again, on a new challenge (after the grant is dropped): refused on the page.
    await browser.clearCookies({ name: 'sg_grant.note-otp' });
    const second = await challengeFor(browser, '/note', { text: 'two' });
    await page.goto(`${origin}${second.verify_page}&return_to=/done`);
    await page.fill('#sg-code', aliceCodes[0]!);
    await page.click('form.sg-code-form button[type=submit]');
    await page.waitForSelector('#sg-error:not([hidden])');
    expect(await page.textContent('#sg-error')).toContain('not valid or was already used');
    expect(new URL(page.url()).pathname).toBe(VERIFY);
    expect(await count('pk_notes', 'alice')).toBe(1);
    await page.close();
  });

  it('the code form works without JavaScript', async () => {
    const page = await signIn(noScript, 'bob');
    await enrollTotp(noScript, 'bob');
    const challenge = await challengeFor(noScript, '/note', { text: 'no-js' });
    await page.goto(`${origin}${challenge.verify_page}&return_to=/done`);
    // No passkey button without JavaScript (bob has none anyway); the form is there and labelled.
    expect(await page.isVisible('#sg-passkey-button')).toBe(false);
    expect(await page.textContent('label[for=sg-code]')).toContain('authenticator app');
    await page.fill('#sg-code', totp('bob'));
    await page.press('#sg-code', 'Enter');
    await page.waitForURL(`${origin}/done`);
    expect((await noScript.request.post(`${origin}/note`, { data: { text: 'no-js' } })).status()).toBe(200);
    expect(await count('pk_notes', 'bob')).toBe(1);
    await page.close();
  });
});

describe('the verification page over plain HTTP', () => {
  let sid: string;
  let challenge: Challenge;
  let csrf: string;
  let carolCodes: string[];

  beforeAll(async () => {
    const login = await fetch(`${origin}/login?user=carol`, { redirect: 'manual' });
    sid = /sid=([^;]+)/.exec(login.headers.get('set-cookie')!)![1]!;
    const enroll = await fetch(`${origin}/mfa/enroll`, { method: 'POST', headers: { cookie: `sid=${sid}` } });
    expect(enroll.status).toBe(200);
    const enrolled = (await enroll.json()) as { otpauth_uri: string; recovery_codes: string[] };
    totpSecrets.set('carol', new URL(enrolled.otpauth_uri).searchParams.get('secret')!);
    carolCodes = enrolled.recovery_codes;
    const refused = await fetch(`${origin}/note`, { method: 'POST', headers: { cookie: `sid=${sid}`, 'content-type': 'application/json' }, body: '{"text":"x"}' });
    challenge = (await refused.json()) as Challenge;
    const page = await fetch(`${origin}${challenge.verify_page}&return_to=/done`, { headers: { cookie: `sid=${sid}`, accept: 'text/html' } });
    csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  });

  const form = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${origin}${VERIFY}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `sid=${sid}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...headers },
      body: new URLSearchParams(fields).toString(),
    });

  it('serves the page with a strict CSP, no inline script, and its one script from the agent', async () => {
    const res = await fetch(`${origin}${challenge.verify_page}&return_to=/done`, { headers: { cookie: `sid=${sid}`, accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(CSP);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)/);
    expect(html).not.toMatch(/\son[a-z]+=/);
    expect(html).not.toContain('style=');
    const script = await fetch(`${origin}${VERIFY}/assets/verify.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await script.text()).toContain('navigator.credentials.get');
    // JSON clients keep the JSON endpoint: GET without Accept: text/html is still a 405 problem.
    expect((await fetch(`${origin}${VERIFY}`)).status).toBe(405);
  });

  it('refuses a form without the CSRF token, with another session, or from another site', async () => {
    const base = { challenge_id: challenge.challenge_id, return_to: '/done', code: '000000' };
    expect((await form(base)).status).toBe(403);
    expect((await form({ ...base, csrf: 'x'.repeat(43) })).status).toBe(403);
    expect((await form({ ...base, csrf }, { cookie: 'sid=someone-else' })).status).toBe(403);
    const crossSite = await form({ ...base, csrf }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    expect(await crossSite.text()).toContain('from another site');
    expect((await form({ ...base, csrf }, { 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await form({ ...base, csrf }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await form({ ...base, csrf }, { origin: 'null' })).status).toBe(403);
    // The same form from this site is checked for real (a wrong code: 401, the page again).
    const wrong = await form({ ...base, csrf }, { origin, 'sec-fetch-site': 'same-origin' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('The code is not valid');
  });

  it('refuses a return_to that is not a same-origin path', async () => {
    for (const bad of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)', '/ok\r\nx: y']) {
      const page = await fetch(`${origin}${challenge.verify_page}&return_to=${encodeURIComponent(bad)}`, { headers: { cookie: `sid=${sid}`, accept: 'text/html' } });
      expect(page.status, bad).toBe(400);
      const post = await form({ challenge_id: challenge.challenge_id, return_to: bad, code: '000000', csrf }, { origin });
      expect(post.status, bad).toBe(400);
      expect(post.headers.get('location')).toBeNull();
    }
  });

  it('regenerating recovery codes needs a fresh step-up, and the old codes stop working', async () => {
    const headers = { cookie: `sid=${sid}`, 'content-type': 'application/json' };
    const refused = await fetch(`${origin}/recovery-codes`, { method: 'POST', headers });
    expect(refused.status).toBe(401);
    const enrollChallenge = (await refused.json()) as Challenge;
    expect(enrollChallenge.methods).toEqual(['webauthn', 'totp', 'recovery_code']);
    const verified = await fetch(`${origin}${VERIFY}`, { method: 'POST', headers, body: JSON.stringify({ challenge_id: enrollChallenge.challenge_id, code: totp('carol', 1) }) });
    expect(verified.status).toBe(200);
    const { grant } = (await verified.json()) as { grant: string };
    const issued = await fetch(`${origin}/recovery-codes`, { method: 'POST', headers: { ...headers, 'stepguard-grant': grant } });
    expect(issued.status).toBe(200);
    const fresh = ((await issued.json()) as { recovery_codes: string[] }).recovery_codes;
    expect(fresh).toHaveLength(10);
    expect(fresh).not.toContain(carolCodes[0]);
    const old = await fetch(`${origin}${VERIFY}/recovery`, { method: 'POST', headers, body: JSON.stringify({ challenge_id: challenge.challenge_id, recovery_code: carolCodes[0] }) });
    expect(old.status).toBe(401);
    const ok = await fetch(`${origin}${VERIFY}/recovery`, { method: 'POST', headers, body: JSON.stringify({ challenge_id: challenge.challenge_id, recovery_code: fresh[0] }) });
    expect(ok.status).toBe(200);
  });

  it('refuses cross-site and non-JSON requests to the passkey routes', async () => {
    const url = `${origin}${VERIFY}/webauthn/authenticate/options`;
    const body = JSON.stringify({ challenge_id: challenge.challenge_id });
    expect((await fetch(url, { method: 'POST', headers: { cookie: `sid=${sid}`, 'content-type': 'text/plain' }, body })).status).toBe(415);
    expect((await fetch(url, { method: 'POST', headers: { cookie: `sid=${sid}`, 'content-type': 'application/json', origin: 'https://evil.example' }, body })).status).toBe(403);
    // carol has no passkey: the options say enrollment is needed.
    expect((await fetch(url, { method: 'POST', headers: { cookie: `sid=${sid}`, 'content-type': 'application/json' }, body })).status).toBe(403);
  });
});
