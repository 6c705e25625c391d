import crypto from 'node:crypto';
import { describe, it, expect } from 'vitest';
import {
  bindingHash,
  newTokenId,
  TokenSigner,
  type ChallengeClaims,
  type GrantClaims,
} from '../../../src/stepup/tokens.js';

const NOW = 1_800_000_000;
const key = crypto.randomBytes(32);
const signer = new TokenSigner(key);

function grant(overrides: Partial<GrantClaims> = {}): GrantClaims {
  return {
    typ: 'grant',
    sub: 'alice',
    sid: bindingHash(signer, 'session=abc'),
    scope: 'rule:transfer',
    acr: 'urn:stepguard:acr:otp',
    amr: ['pwd', 'otp', 'mfa'],
    auth_time: NOW,
    exp: NOW + 300,
    jti: newTokenId(),
    ...overrides,
  };
}

function challenge(overrides: Partial<ChallengeClaims> = {}): ChallengeClaims {
  return {
    typ: 'challenge',
    sub: 'alice',
    sid: bindingHash(signer, 'session=abc'),
    rule: 'transfer',
    acr: ['urn:stepguard:acr:otp'],
    max_age: 300,
    exp: NOW + 120,
    jti: newTokenId(),
    ...overrides,
  };
}

/** Re-signs an arbitrary payload part with the real key (to test claim validation behind a valid MAC). */
function forge(payload: unknown, withKey = key): string {
  const part = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${part}.${crypto.createHmac('sha256', withKey).update('sg1.' + part).digest('base64url')}`;
}

describe('TokenSigner round trip', () => {
  it('signs and verifies a grant', () => {
    const claims = grant();
    const token = signer.sign(claims);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(signer.verify(token, 'grant', NOW)).toEqual({ ok: true, claims });
  });

  it('signs and verifies a challenge', () => {
    const claims = challenge();
    expect(signer.verify(signer.sign(claims), 'challenge', NOW)).toEqual({ ok: true, claims });
  });

  it('uses the documented format: base64url(JSON) "." base64url(HMAC-SHA256(key, "sg1." + payloadPart))', () => {
    const claims = grant();
    const token = signer.sign(claims);
    const [part, mac] = token.split('.') as [string, string];
    expect(JSON.parse(Buffer.from(part, 'base64url').toString())).toEqual(claims);
    expect(mac).toBe(crypto.createHmac('sha256', key).update('sg1.' + part).digest('base64url'));
  });

  it('drops unknown members when signing', () => {
    const token = signer.sign({ ...grant(), extra: 'x' } as GrantClaims);
    const result = signer.verify(token, 'grant', NOW);
    expect(result.ok && 'extra' in result.claims).toBe(false);
  });

  it('defaults now to the current time', () => {
    const now = Math.floor(Date.now() / 1000);
    expect(signer.verify(signer.sign(grant({ exp: now + 60 })), 'grant').ok).toBe(true);
    expect(signer.verify(signer.sign(grant({ exp: now - 1 })), 'grant')).toEqual({ ok: false, reason: 'expired' });
  });
});

describe('TokenSigner rejections', () => {
  it('tampered payload → signature', () => {
    const token = signer.sign(grant());
    const [part, mac] = token.split('.') as [string, string];
    const altered = Buffer.from(JSON.stringify({ ...grant(), sub: 'mallory' })).toString('base64url');
    expect(signer.verify(`${altered}.${mac}`, 'grant', NOW)).toEqual({ ok: false, reason: 'signature' });
    // one character flipped in the payload part
    const flipped = (part[0] === 'e' ? 'f' : 'e') + part.slice(1);
    expect(signer.verify(`${flipped}.${mac}`, 'grant', NOW)).toEqual({ ok: false, reason: 'signature' });
  });

  it('tampered signature → signature', () => {
    const token = signer.sign(grant());
    const [part, mac] = token.split('.') as [string, string];
    const bytes = Buffer.from(mac, 'base64url');
    bytes[0] = (bytes[0] as number) ^ 1;
    expect(signer.verify(`${part}.${bytes.toString('base64url')}`, 'grant', NOW)).toEqual({ ok: false, reason: 'signature' });
  });

  it('wrong type → type (both directions)', () => {
    expect(signer.verify(signer.sign(challenge()), 'grant', NOW)).toEqual({ ok: false, reason: 'type' });
    expect(signer.verify(signer.sign(grant()), 'challenge', NOW)).toEqual({ ok: false, reason: 'type' });
  });

  it('expired → expired (exp is exclusive)', () => {
    const token = signer.sign(grant({ exp: NOW }));
    expect(signer.verify(token, 'grant', NOW - 1).ok).toBe(true);
    expect(signer.verify(token, 'grant', NOW)).toEqual({ ok: false, reason: 'expired' });
    expect(signer.verify(token, 'grant', NOW + 1000)).toEqual({ ok: false, reason: 'expired' });
  });

  it('a token from another key → signature', () => {
    const other = new TokenSigner(crypto.randomBytes(32));
    expect(signer.verify(other.sign(grant()), 'grant', NOW)).toEqual({ ok: false, reason: 'signature' });
  });

  it('a validly signed payload with invalid claims → malformed', () => {
    expect(signer.verify(forge({ typ: 'grant', sub: 'alice' }), 'grant', NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(signer.verify(forge({ ...grant(), amr: 'otp' }), 'grant', NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(signer.verify(forge({ ...grant(), exp: '9999999999' }), 'grant', NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(signer.verify(forge({ ...grant(), typ: 'admin' }), 'grant', NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(signer.verify(forge([1, 2]), 'grant', NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(signer.verify(forge('x'), 'grant', NOW)).toEqual({ ok: false, reason: 'malformed' });
    const notJson = Buffer.from('{not json').toString('base64url');
    const macd = `${notJson}.${crypto.createHmac('sha256', key).update('sg1.' + notJson).digest('base64url')}`;
    expect(signer.verify(macd, 'grant', NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('a MAC over the payload without the "sg1." prefix is not accepted', () => {
    const part = Buffer.from(JSON.stringify(grant())).toString('base64url');
    const mac = crypto.createHmac('sha256', key).update(part).digest('base64url');
    expect(signer.verify(`${part}.${mac}`, 'grant', NOW)).toEqual({ ok: false, reason: 'signature' });
  });

  const valid = signer.sign(grant());
  const [vPart, vMac] = valid.split('.') as [string, string];
  const malformed: Array<[string, unknown]> = [
    ['empty', ''],
    ['no dot', vPart + vMac],
    ['three parts', `${valid}.x`],
    ['empty payload', `.${vMac}`],
    ['empty signature', `${vPart}.`],
    ['standard base64 chars', `${vPart}+/.${vMac}`],
    ['padding', `${vPart}.${vMac}=`],
    ['short signature', `${vPart}.${vMac.slice(0, 20)}`],
    ['long signature', `${vPart}.${vMac}AAAA`],
    ['non-canonical signature encoding', `${vPart}.${vMac.slice(0, -1)}${vMac.endsWith('A') ? 'B' : 'A'}`],
    ['whitespace', ` ${valid}`],
    ['oversized', 'a'.repeat(10_000) + '.' + vMac],
    ['jwt-like', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.'],
    ['number', 42],
    ['undefined', undefined],
    ['null', null],
    ['object', { token: valid }],
  ];
  it.each(malformed)('malformed input (%s) → malformed/signature, never throws', (_label, input) => {
    let result: ReturnType<typeof signer.verify> | undefined;
    expect(() => {
      result = signer.verify(input as string, 'grant', NOW);
    }).not.toThrow();
    expect(result?.ok).toBe(false);
    if (result && !result.ok) expect(['malformed', 'signature']).toContain(result.reason);
  });

  it('a non-canonical encoding of the right MAC bytes → malformed (one token, one string)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(vMac.slice(-1));
    const sibling = vMac.slice(0, -1) + alphabet[last + 1]; // differs only in the unused low bits
    expect(Buffer.from(sibling, 'base64url').equals(Buffer.from(vMac, 'base64url'))).toBe(true);
    expect(signer.verify(`${vPart}.${sibling}`, 'grant', NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses a millisecond timestamp passed as now', () => {
    expect(() => signer.verify(valid, 'grant', Date.now())).toThrow(RangeError);
  });
});

describe('keys', () => {
  it('refuses keys shorter than 32 bytes', () => {
    expect(() => new TokenSigner(Buffer.alloc(31))).toThrow(RangeError);
    expect(() => new TokenSigner(Buffer.alloc(32))).not.toThrow();
  });

  it('fromSecret derives the same key from the same secret', () => {
    const a = TokenSigner.fromSecret('correct horse battery staple');
    const b = TokenSigner.fromSecret('correct horse battery staple');
    const c = TokenSigner.fromSecret('another secret');
    expect(a.generated).toBe(false);
    const token = a.signer.sign(grant());
    expect(b.signer.verify(token, 'grant', NOW).ok).toBe(true);
    expect(c.signer.verify(token, 'grant', NOW)).toEqual({ ok: false, reason: 'signature' });
  });

  it('fromSecret derives with HKDF-SHA256, info "stepguard grant signing"', () => {
    const expectedKey = Buffer.from(crypto.hkdfSync('sha256', 's3cret', 'stepguard', 'stepguard grant signing', 32));
    const token = new TokenSigner(expectedKey).sign(grant());
    expect(TokenSigner.fromSecret('s3cret').signer.verify(token, 'grant', NOW).ok).toBe(true);
  });

  it('fromSecret without a secret generates a random key', () => {
    const a = TokenSigner.fromSecret(undefined);
    const b = TokenSigner.fromSecret('');
    expect(a.generated).toBe(true);
    expect(b.generated).toBe(true);
    expect(b.signer.verify(a.signer.sign(grant()), 'grant', NOW)).toEqual({ ok: false, reason: 'signature' });
  });
});

describe('bindingHash', () => {
  it('is deterministic, key-dependent, base64url, and never contains the material', () => {
    // The session value is long enough that a random key's hash cannot hold it by chance (three characters did, once
    // in a few thousand runs).
    const session = 'sessionValue7f3c9a1b';
    const h = bindingHash(key, `session=${session}`);
    expect(h).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(bindingHash(signer, `session=${session}`)).toBe(h);
    expect(bindingHash(key, `session=${session}x`)).not.toBe(h);
    expect(bindingHash(crypto.randomBytes(32), `session=${session}`)).not.toBe(h);
    expect(h).not.toContain(session);
  });

  it('cannot be used to obtain a token signature (separate key)', () => {
    const part = Buffer.from(JSON.stringify(grant({ sub: 'mallory' }))).toString('base64url');
    // A client that controls its session cookie picks material = "sg1." + payloadPart …
    const hash = bindingHash(signer, 'sg1.' + part);
    // … but the hash is not the MAC of that payload.
    expect(signer.verify(`${part}.${hash}`, 'grant', NOW)).toEqual({ ok: false, reason: 'signature' });
  });
});
