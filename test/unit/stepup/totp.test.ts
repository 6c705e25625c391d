import { describe, it, expect } from 'vitest';
import { generateSync, stringToBytes } from 'otplib';
import { checkTotp, currentCode, newTotpSecret, otpauthUri, timeStepAt } from '../../../src/stepup/totp.js';

// RFC 6238 Appendix B: seed "12345678901234567890" (ASCII, 20 bytes) for HMAC-SHA1, 8-digit values.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'; // base32 of the ASCII seed
const RFC_SHA1_VECTORS: Array<[number, string]> = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('RFC 6238 test vectors (SHA-1)', () => {
  it('the base32 seed is the RFC seed', () => {
    for (const [time, expected] of RFC_SHA1_VECTORS) {
      expect(generateSync({ secret: stringToBytes('12345678901234567890'), epoch: time, digits: 8 })).toBe(expected);
      expect(generateSync({ secret: RFC_SECRET, epoch: time, digits: 8 })).toBe(expected);
    }
  });

  it.each(RFC_SHA1_VECTORS)('T=%i: 6-digit code is the last six digits of %s', (time, expected8) => {
    // Dynamic truncation mod 10^6 of the same 31-bit value = the 8-digit value's last six digits.
    const expected6 = expected8.slice(-6);
    expect(currentCode(RFC_SECRET, time)).toBe(expected6);
    expect(checkTotp(RFC_SECRET, expected6, time)).toEqual({ ok: true, timeStep: Math.floor(time / 30) });
  });

  it('handles time steps beyond 32 bits (T for 20000000000 s)', () => {
    expect(timeStepAt(20000000000)).toBe(666666666);
    expect(checkTotp(RFC_SECRET, '353130', 20000000000)).toEqual({ ok: true, timeStep: 666666666 });
  });
});

describe('checkTotp window', () => {
  const secret = newTotpSecret();
  const step = 57_000_000;
  const now = step * 30 + 15; // middle of a step, so ±30 s covers exactly one step either way

  it('accepts the current step and reports it', () => {
    expect(checkTotp(secret, currentCode(secret, now), now)).toEqual({ ok: true, timeStep: step });
  });

  it('accepts one step before and after (±30 s) and reports the matching step', () => {
    expect(checkTotp(secret, currentCode(secret, now - 30), now)).toEqual({ ok: true, timeStep: step - 1 });
    expect(checkTotp(secret, currentCode(secret, now + 30), now)).toEqual({ ok: true, timeStep: step + 1 });
  });

  it('rejects two steps away as invalid', () => {
    for (const offset of [-60, 60, -90, 90]) {
      const code = currentCode(secret, now + offset);
      if ([-30, 0, 30].some((d) => currentCode(secret, now + d) === code)) continue; // 1-in-10^6 collision
      expect(checkTotp(secret, code, now)).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('rejects a well-formed wrong code as invalid', () => {
    const right = new Set([-30, 0, 30].map((d) => currentCode(secret, now + d)));
    const wrong = ['000000', '123456', '999999'].find((c) => !right.has(c)) as string;
    expect(checkTotp(secret, wrong, now)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('rejects a code for another secret', () => {
    const other = newTotpSecret();
    const code = currentCode(other, now);
    const right = new Set([-30, 0, 30].map((d) => currentCode(secret, now + d)));
    if (!right.has(code)) expect(checkTotp(secret, code, now)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('uses the current time by default', () => {
    const result = checkTotp(secret, currentCode(secret));
    expect(result.ok).toBe(true);
    if (result.ok) expect(Math.abs(result.timeStep - timeStepAt())).toBeLessThanOrEqual(1);
  });

  it('refuses a millisecond timestamp passed as now', () => {
    expect(() => checkTotp(secret, '123456', Date.now())).toThrow(RangeError);
  });
});

describe('malformed codes are rejected without throwing', () => {
  const secret = newTotpSecret();
  const now = 1_800_000_000;
  const code = currentCode(secret, now);
  const cases: unknown[] = [
    '',
    '12345',
    '1234567',
    '12345678',
    'abcdef',
    '12a456',
    ` ${code}`,
    `${code} `,
    `${code}\n`,
    `${code.slice(0, 3)} ${code.slice(3)}`,
    '１２３４５６', // full-width digits
    '١٢٣٤٥٦', // Arabic-Indic digits
    '-12345',
    '+12345',
    '1e5000',
    undefined,
    null,
    123456,
    ['123456'],
  ];
  it.each(cases.map((c) => [JSON.stringify(c) ?? String(c), c]))('%s', (_label, input) => {
    expect(() => checkTotp(secret, input as string, now)).not.toThrow();
    expect(checkTotp(secret, input as string, now)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('secrets and URIs', () => {
  it('newTotpSecret: 20 random bytes as 32 base32 characters', () => {
    const a = newTotpSecret();
    const b = newTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(a).not.toBe(b);
  });

  it('otpauthUri has the Key URI format with explicit defaults', () => {
    const uri = otpauthUri('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'alice@example.com', 'ACME Co');
    expect(uri).toBe(
      'otpauth://totp/ACME%20Co:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30',
    );
    const parsed = new URL(uri);
    expect(parsed.protocol).toBe('otpauth:');
    expect(parsed.searchParams.get('issuer')).toBe('ACME Co');
  });

  it('otpauthUri keeps a colon inside issuer or account unambiguous', () => {
    const uri = otpauthUri('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'a:b', 'x:y');
    expect(uri.startsWith('otpauth://totp/x%3Ay:a%3Ab?')).toBe(true);
  });
});
