import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it, expect } from 'vitest';
import { SecretBox, SecretBoxError } from '../../../src/stepup/secret-box.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-box-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

describe('SecretBox with STEPGUARD_SECRET', () => {
  it('round-trips, with a fresh IV each time, and never writes a key file', () => {
    const keyFile = path.join(tempDir(), 'sub', 'secret.key');
    const { box, source } = SecretBox.fromSecret('a long deployment secret', keyFile);
    expect(source).toBe('env');
    const a = box.seal(SECRET);
    const b = box.seal(SECRET);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^sb2\.[0-9a-f]{12}\.[A-Za-z0-9_-]+$/);
    expect(a).not.toContain(SECRET);
    expect(box.open(a)).toBe(SECRET);
    expect(box.open(b)).toBe(SECRET);
    expect(fs.existsSync(keyFile)).toBe(false);
  });

  it('names the key a secret was sealed with when this instance holds another one', () => {
    const keyFile = path.join(tempDir(), 'secret.key');
    const one = SecretBox.fromSecret('s1', keyFile).box;
    const two = SecretBox.fromSecret('s2', keyFile).box;
    expect(one.keyId).toMatch(/^[0-9a-f]{12}$/);
    expect(one.keyId).not.toBe(two.keyId);
    expect(SecretBox.fromSecret('s1', keyFile).box.keyId).toBe(one.keyId);
    let error: SecretBoxError | undefined;
    try {
      two.open(one.seal(SECRET));
    } catch (e) {
      error = e as SecretBoxError;
    }
    expect(error).toBeInstanceOf(SecretBoxError);
    expect(error!.sealedKeyId).toBe(one.keyId);
    expect(error!.message).toContain(`sealed with key ${one.keyId}, this instance has key ${two.keyId}`);
  });

  it('still opens values sealed before key ids (sb1.)', () => {
    const box = SecretBox.fromSecret('s1', path.join(tempDir(), 'k')).box;
    const sealed = box.seal(SECRET);
    expect(box.open('sb1.' + sealed.slice(sealed.lastIndexOf('.') + 1))).toBe(SECRET);
  });

  it('the same secret opens what another instance sealed; another secret does not', () => {
    const keyFile = path.join(tempDir(), 'secret.key');
    const sealed = SecretBox.fromSecret('s1', keyFile).box.seal(SECRET);
    expect(SecretBox.fromSecret('s1', keyFile).box.open(sealed)).toBe(SECRET);
    expect(() => SecretBox.fromSecret('s2', keyFile).box.open(sealed)).toThrow(SecretBoxError);
  });

  it('is AES-256-GCM with key = HKDF-SHA256(secret, info "stepguard secret encryption")', () => {
    const key = Buffer.from(crypto.hkdfSync('sha256', 'k', 'stepguard', 'stepguard secret encryption', 32));
    const sealed = new SecretBox(key).seal(SECRET);
    expect(SecretBox.fromSecret('k', path.join(tempDir(), 'x')).box.open(sealed)).toBe(SECRET);
    const raw = Buffer.from(sealed.slice(sealed.lastIndexOf('.') + 1), 'base64url');
    expect(raw.length).toBe(12 + 16 + Buffer.byteLength(SECRET));
  });
});

describe('SecretBox tampering', () => {
  const { box } = SecretBox.fromSecret('tamper test', '/nonexistent/never-used');
  const sealed = box.seal(SECRET);
  const raw = Buffer.from(sealed.slice(sealed.lastIndexOf('.') + 1), 'base64url');

  it.each([
    ['iv', 0],
    ['tag', 12],
    ['ciphertext', 28],
    ['last byte', raw.length - 1],
  ])('a flipped bit in the %s → clear error', (_part, index) => {
    const altered = Buffer.from(raw);
    altered[index] = (altered[index] as number) ^ 0x01;
    expect(() => box.open('sb1.' + altered.toString('base64url'))).toThrow(/altered, or sealed with another key/);
  });

  it.each([
    ['truncated', 'sb1.' + raw.subarray(0, 20).toString('base64url')],
    ['no prefix', raw.toString('base64url')],
    ['other version', 'sb3.' + raw.toString('base64url')],
    ['key id missing', 'sb2.' + raw.toString('base64url')],
    ['bad characters', 'sb1.' + raw.toString('base64url') + '!'],
    ['empty', ''],
  ])('%s → SecretBoxError', (_label, value) => {
    expect(() => box.open(value)).toThrow(SecretBoxError);
  });

  it('a context (e.g. a user id) must match', () => {
    const forAlice = box.seal(SECRET, 'totp:alice');
    expect(box.open(forAlice, 'totp:alice')).toBe(SECRET);
    expect(() => box.open(forAlice, 'totp:bob')).toThrow(SecretBoxError);
    expect(() => box.open(forAlice)).toThrow(SecretBoxError);
  });
});

describe('SecretBox key file (no STEPGUARD_SECRET)', () => {
  it('creates the key file once (0600, directory 0700) and reuses it after a restart', () => {
    const dir = path.join(tempDir(), 'store');
    const keyFile = path.join(dir, 'secret.key');
    const first = SecretBox.fromSecret(undefined, keyFile);
    expect(first.source).toBe('keyfile-created');
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(Buffer.from(fs.readFileSync(keyFile, 'utf8').trim(), 'base64').length).toBe(32);
    const sealed = first.box.seal(SECRET);

    const second = SecretBox.fromSecret(undefined, keyFile);
    expect(second.source).toBe('keyfile');
    expect(second.box.open(sealed)).toBe(SECRET);
    expect(fs.readdirSync(dir)).toEqual(['secret.key']); // no temp files left behind
  });

  it('an empty STEPGUARD_SECRET counts as unset', () => {
    const keyFile = path.join(tempDir(), 'secret.key');
    expect(SecretBox.fromSecret('', keyFile).source).toBe('keyfile-created');
  });

  it('refuses a corrupt key file instead of replacing it', () => {
    const keyFile = path.join(tempDir(), 'secret.key');
    fs.writeFileSync(keyFile, 'not a key\n');
    expect(() => SecretBox.fromSecret(undefined, keyFile)).toThrow(/corrupt/);
    expect(fs.readFileSync(keyFile, 'utf8')).toBe('not a key\n');
  });

  it('a different key file cannot open the secrets', () => {
    const sealed = SecretBox.fromSecret(undefined, path.join(tempDir(), 'a.key')).box.seal(SECRET);
    expect(() => SecretBox.fromSecret(undefined, path.join(tempDir(), 'b.key')).box.open(sealed)).toThrow(SecretBoxError);
  });
});
