import { describe, expect, it } from 'vitest';
import { insecureConfig } from '../../../src/detectors/insecure-config.js';
import type { ConfigEvent, UserInput } from '../../../src/events.js';

const response = (text: string, extra: Partial<ConfigEvent> = {}): string[] =>
  insecureConfig.detect({ kind: 'config', op: 'res.writeHead', check: 'response', text, ...extra }, []).map((f) => f.reason);
const hash = (data: string, inputs: UserInput[]): string[] =>
  insecureConfig.detect({ kind: 'config', op: 'crypto.createHash', check: 'hash', text: 'md5', data }, inputs).map((f) => `${f.reason}:${f.input?.path}`);

describe('insecure-config detector', () => {
  it('session cookies need HttpOnly and SameSite, and Secure over HTTPS', () => {
    expect(response('set-cookie: connect.sid=…; Path=/')).toEqual(['cookie-without-httponly', 'cookie-without-samesite']);
    expect(response('set-cookie: session=…; Path=/; HttpOnly; SameSite=Lax')).toEqual([]);
    expect(response('set-cookie: session=…; Path=/; HttpOnly; SameSite=Lax', { https: true })).toEqual(['cookie-without-secure']);
    expect(response('set-cookie: session=…; HttpOnly; SameSite=Lax; Secure', { https: true })).toEqual([]);
    expect(response('set-cookie: theme=…; Path=/')).toEqual([]); // not a session cookie
    expect(response('set-cookie: sid=…; Path=/; Max-Age=0')).toEqual([]); // a cookie being cleared
  });

  it('a cookie holding a recent Math.random() output', () => {
    expect(response('set-cookie: sid=…; HttpOnly; SameSite=Lax', { randomCookies: ['sid'] })).toEqual(['predictable-token']);
  });

  it('HTML needs CSP and nosniff, and HSTS over HTTPS; other types need nothing', () => {
    expect(response('content-type: text/html; charset=utf-8')).toEqual(['missing-csp', 'missing-nosniff']);
    const safe = "content-type: text/html\ncontent-security-policy: default-src 'self'\nx-content-type-options: nosniff";
    expect(response(safe)).toEqual([]);
    expect(response(safe, { https: true })).toEqual(['missing-hsts']);
    expect(response(`${safe}\nstrict-transport-security: max-age=31536000`, { https: true })).toEqual([]);
    expect(response('content-type: application/json')).toEqual([]);
  });

  it('md5/sha1 over a password-like input, and nothing else', () => {
    const pw: UserInput = { source: 'body', path: 'body.password', value: 'hunter22' };
    expect(hash('hunter22', [pw])).toEqual(['weak-password-hash:body.password']);
    expect(hash('salt$hunter22', [{ ...pw, path: 'body.user.newPass' }])).toEqual(['weak-password-hash:body.user.newPass']);
    expect(hash('hunter22', [{ ...pw, path: 'body.name' }])).toEqual([]); // not a password field
    expect(hash('hunter22', [{ ...pw, path: 'key:body.password', isKey: true }])).toEqual([]);
    expect(hash('abc', [{ ...pw, value: 'abc' }])).toEqual([]); // too short to tell
    expect(hash('<html>etag body</html>', [pw])).toEqual([]);
  });
});
