/** The page's pure checks (return_to, same-origin) and the WebAuthn settings, without a server. */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadConfig } from '../../../src/config.js';
import { RequestContext } from '../../../src/context/request-context.js';
import { csrfToken, escapeHtml, safeReturnTo, sameOriginRequest } from '../../../src/stepup/page.js';
import { StepUpState } from '../../../src/stepup/state.js';
import { TokenSigner } from '../../../src/stepup/tokens.js';
import { openBlob, relyingParty, sealBlob } from '../../../src/stepup/verify-support.js';

const ctxWith = (headers: Record<string, string>): RequestContext =>
  new RequestContext({ method: 'POST', url: '/.well-known/stepguard/step-up', headers, socket: {} } as unknown as IncomingMessage, undefined, DEFAULT_CONFIG);

function stateWith(stepUp: Partial<typeof DEFAULT_CONFIG.stepUp> = {}): StepUpState {
  const config = { ...DEFAULT_CONFIG, stepUp: { ...DEFAULT_CONFIG.stepUp, ...stepUp } };
  return new StepUpState({ config, signer: new TokenSigner(Buffer.alloc(32, 7)), telemetry: {} as never, open: () => { throw new Error('no store in this test'); } });
}

describe('return_to', () => {
  it('accepts same-site paths only', () => {
    expect(safeReturnTo(undefined)).toBe('/');
    expect(safeReturnTo('')).toBe('/');
    expect(safeReturnTo('/transfers/new?x=1#top')).toBe('/transfers/new?x=1#top');
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', 'evil', '/a\nb', '/a\u0000', `/${'a'.repeat(3000)}`, ['/']]) {
      expect(safeReturnTo(bad), String(bad)).toBeUndefined();
    }
  });
});

describe('same-origin requests', () => {
  it('trusts Sec-Fetch-Site when sent, else compares Origin with Host', () => {
    expect(sameOriginRequest(ctxWith({ host: 'app.example', 'sec-fetch-site': 'same-origin', origin: 'null' }))).toBe(true);
    expect(sameOriginRequest(ctxWith({ host: 'app.example', 'sec-fetch-site': 'same-site', origin: 'https://app.example' }))).toBe(false);
    expect(sameOriginRequest(ctxWith({ host: 'app.example', 'sec-fetch-site': 'cross-site' }))).toBe(false);
    expect(sameOriginRequest(ctxWith({ host: 'app.example:8443', origin: 'https://app.example:8443' }))).toBe(true);
    expect(sameOriginRequest(ctxWith({ host: 'app.example', origin: 'https://evil.example' }))).toBe(false);
    expect(sameOriginRequest(ctxWith({ host: 'app.example', origin: 'null' }))).toBe(false);
    expect(sameOriginRequest(ctxWith({ host: 'app.example' }))).toBe(true);
  });
});

describe('tokens of the page', () => {
  it('the CSRF token depends on the challenge and the session, and blobs on their purpose', () => {
    const state = stateWith();
    expect(csrfToken(state, 'c1', 's1')).toBe(csrfToken(state, 'c1', 's1'));
    expect(csrfToken(state, 'c1', 's2')).not.toBe(csrfToken(state, 'c1', 's1'));
    expect(csrfToken(state, 'c2', 's1')).not.toBe(csrfToken(state, 'c1', 's1'));
    const blob = sealBlob(state, 'register-ticket', { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 });
    expect(openBlob(state, 'register-ticket', blob)).toMatchObject({ sub: 'alice' });
    expect(openBlob(state, 'register-challenge', blob)).toBeUndefined();
    const [body, mac] = blob.split('.');
    const forged = Buffer.from(JSON.stringify({ sub: 'mallory', exp: 9e9 })).toString('base64url');
    expect(openBlob(state, 'register-ticket', `${forged}.${mac}`)).toBeUndefined();
    expect(openBlob(state, 'register-ticket', `${body}.${mac}x`)).toBeUndefined();
    expect(openBlob(state, 'register-ticket', sealBlob(state, 'register-ticket', { sub: 'alice', exp: 1 }))).toBeUndefined();
    expect(escapeHtml(`"><script>'&`)).toBe('&#34;&#62;&#60;script&#62;&#39;&#38;');
  });
});

describe('WebAuthn settings', () => {
  it('are read and cross-checked at start, naming the variable and the fix', () => {
    const ok = loadConfig({ STEPGUARD_WEBAUTHN_RP_ID: 'Bank.Example', STEPGUARD_WEBAUTHN_ORIGINS: 'https://bank.example, https://www.bank.example' }, '/srv');
    expect(ok.problems).toEqual([]);
    expect(ok.config.stepUp).toMatchObject({ webauthnRpId: 'bank.example', webauthnOrigins: ['https://bank.example', 'https://www.bank.example'], webauthnAllowRequestOrigin: false });

    const outside = loadConfig({ STEPGUARD_WEBAUTHN_RP_ID: 'bank.example', STEPGUARD_WEBAUTHN_ORIGINS: 'https://evilbank.example' }, '/srv');
    expect(outside.problems).toEqual([{ where: 'env STEPGUARD_WEBAUTHN_ORIGINS', message: expect.stringContaining('is not on the relying party id bank.example') }]);
    expect(loadConfig({ STEPGUARD_WEBAUTHN_ORIGINS: 'https://bank.example' }, '/srv').problems[0]).toMatchObject({ where: 'env STEPGUARD_WEBAUTHN_RP_ID', message: expect.stringContaining('bank.example') });
    expect(loadConfig({ STEPGUARD_WEBAUTHN_RP_ID: 'bank.example' }, '/srv').problems[0]).toMatchObject({ where: 'env STEPGUARD_WEBAUTHN_ORIGINS' });
    expect(loadConfig({ STEPGUARD_WEBAUTHN_RP_ID: 'https://bank.example' }, '/srv').problems[0]).toMatchObject({ where: 'env STEPGUARD_WEBAUTHN_RP_ID', message: expect.stringContaining('host name without scheme') });
    expect(loadConfig({ STEPGUARD_WEBAUTHN_RP_ID: 'bank.example', STEPGUARD_WEBAUTHN_ORIGINS: 'http://bank.example' }, '/srv').problems[0]).toMatchObject({ where: 'env STEPGUARD_WEBAUTHN_ORIGINS', message: expect.stringContaining('http:// only for localhost') });
    expect(loadConfig({ STEPGUARD_WEBAUTHN_RP_ID: 'localhost', STEPGUARD_WEBAUTHN_ORIGINS: 'http://localhost:3000' }, '/srv').problems).toEqual([]);
  });

  it('takes the relying party from the request only when explicitly allowed', () => {
    const request = ctxWith({ host: 'dev.localhost:3000' });
    expect(relyingParty(stateWith(), request)).toBeUndefined();
    expect(relyingParty(stateWith({ webauthnAllowRequestOrigin: true }), request)).toMatchObject({ id: 'dev.localhost', origins: ['http://dev.localhost:3000'] });
    expect(relyingParty(stateWith({ webauthnAllowRequestOrigin: true }), ctxWith({ host: 'bad host' }))).toBeUndefined();
    expect(relyingParty(stateWith({ webauthnRpId: 'bank.example', webauthnOrigins: ['https://bank.example'], webauthnAllowRequestOrigin: true }), request)).toMatchObject({ id: 'bank.example', origins: ['https://bank.example'] });
  });
});
