import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it, expect } from 'vitest';
import { EmbeddedStore } from '../../../src/stepup/embedded-store.js';
import { enrollUser, ERR_ALREADY_ENROLLED, isEnrolled, secretFor } from '../../../src/stepup/enrollment.js';
import { SecretBox } from '../../../src/stepup/secret-box.js';
import { checkTotp, currentCode } from '../../../src/stepup/totp.js';
import { enrollCommand } from '../../../src/cli/enroll.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-enroll-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function setup() {
  const dir = tempDir();
  const store = new EmbeddedStore(dir);
  const { box } = SecretBox.fromSecret('enrollment test secret', path.join(dir, 'secret.key'));
  return { dir, store, box };
}

describe('enrollUser', () => {
  it('enrolls: returns the secret and otpauth URI, stores only the sealed secret', async () => {
    const { store, box, dir } = setup();
    expect(await isEnrolled(store, 'alice')).toBe(false);
    const { secret, uri } = await enrollUser(store, box, 'alice', 'ACME');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(uri).toBe(`otpauth://totp/ACME:alice?secret=${secret}&issuer=ACME&algorithm=SHA1&digits=6&period=30`);
    expect(await isEnrolled(store, 'alice')).toBe(true);

    const factor = await store.getFactor('alice');
    expect(factor?.method).toBe('totp');
    expect(factor?.secretCiphertext).not.toContain(secret);
    expect(fs.readFileSync(path.join(dir, 'stepup-store.json'), 'utf8')).not.toContain(secret);
    expect(Math.abs((factor?.createdAt ?? 0) - Date.now())).toBeLessThan(5000);

    const opened = await secretFor(store, box, 'alice');
    expect(opened).toBe(secret);
    const now = 1_800_000_000;
    expect(checkTotp(opened as string, currentCode(secret, now), now).ok).toBe(true);
  });

  it('refuses to replace an existing factor without replace: true', async () => {
    const { store, box } = setup();
    const first = await enrollUser(store, box, 'alice', 'ACME');
    await expect(enrollUser(store, box, 'alice', 'ACME')).rejects.toMatchObject({ code: ERR_ALREADY_ENROLLED });
    await expect(enrollUser(store, box, 'alice', 'ACME', { replace: false })).rejects.toMatchObject({ code: 'ERR_STEPGUARD_ALREADY_ENROLLED' });
    expect(await secretFor(store, box, 'alice')).toBe(first.secret);

    const second = await enrollUser(store, box, 'alice', 'ACME', { replace: true });
    expect(second.secret).not.toBe(first.secret);
    expect(await secretFor(store, box, 'alice')).toBe(second.secret);
  });

  it('secretFor is undefined for a user who is not enrolled', async () => {
    const { store, box } = setup();
    expect(await secretFor(store, box, 'nobody')).toBeUndefined();
  });

  it('a factor record copied onto another user does not decrypt', async () => {
    const { store, box } = setup();
    await enrollUser(store, box, 'mallory', 'ACME');
    const malloryFactor = await store.getFactor('mallory');
    await store.setFactor('alice', malloryFactor!);
    await expect(secretFor(store, box, 'alice')).rejects.toThrow(/cannot decrypt/);
  });

  it('survives a restart with the generated key file', async () => {
    const dir = tempDir();
    const keyFile = path.join(dir, 'secret.key');
    const { secret } = await enrollUser(new EmbeddedStore(dir), SecretBox.fromSecret(undefined, keyFile).box, 'alice', 'ACME');
    expect(await secretFor(new EmbeddedStore(dir), SecretBox.fromSecret(undefined, keyFile).box, 'alice')).toBe(secret);
  });
});

class Sink {
  text = '';
  write(chunk: string | Uint8Array): boolean {
    this.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }
}
const sink = () => new Sink() as Sink & NodeJS.WritableStream;

describe('enrollCommand (embedded store)', () => {
  it('enrolls and prints the URI, a terminal QR code and the secret', async () => {
    const dir = tempDir();
    const out = sink();
    const code = await enrollCommand(['alice', '--store-dir', dir, '--issuer', 'ACME'], { STEPGUARD_SECRET: 'cli secret' }, out);
    expect(code).toBe(0);
    const uri = /otpauth URI: (\S+)/.exec(out.text)?.[1];
    const secret = /Secret \(manual entry, base32\): ([A-Z2-7]+)/.exec(out.text)?.[1];
    expect(uri).toBe(`otpauth://totp/ACME:alice?secret=${secret}&issuer=ACME&algorithm=SHA1&digits=6&period=30`);
    expect(out.text).toMatch(/[▀▄█]/); // small terminal QR code uses half blocks
    expect(out.text).not.toMatch(/warning/);
    const { box } = SecretBox.fromSecret('cli secret', path.join(dir, 'secret.key'));
    expect(await secretFor(new EmbeddedStore(dir), box, 'alice')).toBe(secret);
  });

  it('exit 1 with a hint when already enrolled, 0 with --replace', async () => {
    const dir = tempDir();
    const env = { STEPGUARD_STORE_DIR: dir };
    expect(await enrollCommand(['bob'], env, sink())).toBe(0);
    const out = sink();
    expect(await enrollCommand(['bob'], env, out)).toBe(1);
    expect(out.text).toMatch(/already enrolled.*--replace/);
    expect(await enrollCommand(['bob', '--replace'], env, sink())).toBe(0);
  });

  it('warns when STEPGUARD_SECRET is unset and keeps the key in the store directory', async () => {
    const dir = tempDir();
    const out = sink();
    expect(await enrollCommand(['carol', `--store-dir=${dir}`], {}, out)).toBe(0);
    expect(out.text).toMatch(/warning: STEPGUARD_SECRET is not set/);
    expect(fs.existsSync(path.join(dir, 'secret.key'))).toBe(true);
  });

  it('tolerates a leading "enroll" word', async () => {
    const dir = tempDir();
    expect(await enrollCommand(['enroll', 'dave', '--store-dir', dir], { STEPGUARD_SECRET: 'x' }, sink())).toBe(0);
    expect(await isEnrolled(new EmbeddedStore(dir), 'dave')).toBe(true);
  });

  it.each([
    [[]],
    [['--replace']],
    [['a', 'b']],
    [['a', '--store-dir']],
    [['a', '--bogus']],
    [['a', '--redis', '--replace']],
  ])('usage error %j → 2', async (argv) => {
    const out = sink();
    expect(await enrollCommand(argv, {}, out)).toBe(2);
    expect(out.text).toMatch(/Usage: stepguard enroll <user>/);
  });

  it('--help → 0', async () => {
    const out = sink();
    expect(await enrollCommand(['--help'], {}, out)).toBe(0);
    expect(out.text).toMatch(/Usage/);
  });
});
