/**
 * Encryption at rest for TOTP secrets (RFC 6238 §5.1: the verifier's key store MUST be protected).
 *
 * AES-256-GCM, a random 12-byte IV per seal, output `sb2.<key id>.` + base64url(iv ‖ tag ‖ ciphertext) (`sb1.` values,
 * written before key ids, still open). The key id is a public fingerprint of the key (12 hex digits of a SHA-256 over
 * it), so an instance that holds another key can say which key a secret needs without revealing either. The key is
 * HKDF-SHA256(STEPGUARD_SECRET, info "stepguard secret encryption"), or — when STEPGUARD_SECRET is unset — derived
 * the same way from 32 random bytes generated once and kept in a key file (mode 0600), so the embedded store
 * survives restarts. The caller warns that STEPGUARD_SECRET should be set (a shared store needs the same key on
 * every instance).
 *
 * An optional `context` is bound as GCM additional data: a ciphertext sealed for one context (e.g. one user) does not
 * open under another, so copying one user's record over another's in the store does not work.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const PREFIX_V1 = 'sb1.';
const PREFIX = 'sb2.';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const HKDF_SALT = 'stepguard';
const HKDF_INFO = 'stepguard secret encryption';

export type SecretBoxSource = 'env' | 'keyfile-created' | 'keyfile';

export class SecretBoxError extends Error {
  readonly code = 'ERR_STEPGUARD_SECRET_BOX';
  /** The key id the value was sealed with, when it names one and it is not this box's key. */
  readonly sealedKeyId: string | undefined;
  constructor(message: string, options?: { cause?: unknown; sealedKeyId?: string }) {
    super(message, options);
    this.name = 'SecretBoxError';
    this.sealedKeyId = options?.sealedKeyId;
  }
}

export class SecretBox {
  readonly #key: Buffer;
  /** Public fingerprint of the key (logged to tell instances' keys apart). */
  readonly keyId: string;
  #macKey: Buffer | undefined;

  /** `key`: 32 bytes used as the AES-256 key as is. Prefer `fromSecret`. */
  constructor(key: Buffer) {
    if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) throw new RangeError('stepguard: SecretBox needs a 32-byte key');
    this.#key = Buffer.from(key);
    this.keyId = crypto.createHash('sha256').update('stepguard key id\0').update(this.#key).digest('hex').slice(0, 12);
  }

  static fromSecret(secret: string | undefined, keyFile: string): { box: SecretBox; source: SecretBoxSource } {
    if (secret !== undefined && secret !== '') {
      return { box: new SecretBox(derive(Buffer.from(secret, 'utf8'))), source: 'env' };
    }
    const { material, created } = loadOrCreateKeyFile(keyFile);
    return { box: new SecretBox(derive(material)), source: created ? 'keyfile-created' : 'keyfile' };
  }

  seal(plain: string, context = ''): string {
    const iv = crypto.randomBytes(IV_BYTES);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(context));
    const ciphertext = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${this.keyId}.` + Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64url');
  }

  /**
   * HMAC-SHA256 of `material` under a key derived from the box key (HKDF, info "stepguard secret-box mac"), hex.
   * For values kept only as a keyed hash (recovery codes): a copy of the store alone does not allow guessing them offline.
   */
  mac(material: string): string {
    this.#macKey ??= Buffer.from(crypto.hkdfSync('sha256', this.#key, HKDF_SALT, 'stepguard secret-box mac', KEY_BYTES));
    return crypto.createHmac('sha256', this.#macKey).update(material, 'utf8').digest('hex');
  }

  /** Throws `SecretBoxError` when the value is not ours, was altered, or was sealed with another key/context. */
  open(sealed: string, context = ''): string {
    let body: string;
    let sealedKeyId: string | undefined;
    if (typeof sealed === 'string' && sealed.startsWith(PREFIX)) {
      const dot = sealed.indexOf('.', PREFIX.length);
      if (dot === -1) throw new SecretBoxError('stepguard: sealed secret is truncated or malformed');
      sealedKeyId = sealed.slice(PREFIX.length, dot);
      body = sealed.slice(dot + 1);
      if (sealedKeyId !== this.keyId && /^[0-9a-f]{12}$/.test(sealedKeyId)) {
        throw new SecretBoxError(
          `stepguard: cannot decrypt a stored secret: it was sealed with key ${sealedKeyId}, this instance has key ${this.keyId} ` +
            '(give every instance the same STEPGUARD_SECRET)',
          { sealedKeyId },
        );
      }
    } else if (typeof sealed === 'string' && sealed.startsWith(PREFIX_V1)) {
      body = sealed.slice(PREFIX_V1.length);
    } else {
      throw new SecretBoxError('stepguard: sealed secret has an unknown format');
    }
    const raw = /^[A-Za-z0-9_-]+$/.test(body) ? Buffer.from(body, 'base64url') : Buffer.alloc(0);
    if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError('stepguard: sealed secret is truncated or malformed');
    const iv = raw.subarray(0, IV_BYTES);
    const tag = raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
    const ciphertext = raw.subarray(IV_BYTES + TAG_BYTES);
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(context));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new SecretBoxError(
        `stepguard: cannot decrypt a stored secret: it was altered, or sealed with another key than this instance's ${this.keyId} ` +
          '(STEPGUARD_SECRET changed, or a different key file)',
        { cause: error, ...(sealedKeyId === undefined ? {} : { sealedKeyId }) },
      );
    }
  }
}

function derive(material: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', material, HKDF_SALT, HKDF_INFO, KEY_BYTES));
}

function aad(context: string): Buffer {
  return Buffer.from(`stepguard/secret-box/v1\0${context}`, 'utf8');
}

/**
 * Reads the key file, or creates it with 32 random bytes. Creation is race-free between processes: the key is
 * written to a temp file (0600) which is then hard-linked to the final name (fails if it already exists), so a reader
 * never sees a half-written key and two processes never end up with different keys.
 */
function loadOrCreateKeyFile(keyFile: string): { material: Buffer; created: boolean } {
  const existing = readKeyFile(keyFile);
  if (existing !== undefined) return { material: existing, created: false };
  const dir = path.dirname(keyFile);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const material = crypto.randomBytes(KEY_BYTES);
  const tmp = `${keyFile}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeFileSync(fd, material.toString('base64') + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, keyFile);
    return { material, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const other = readKeyFile(keyFile); // another process won the race: use its key
    if (other === undefined) throw error;
    return { material: other, created: false };
  } finally {
    fs.unlinkSync(tmp);
  }
}

function readKeyFile(keyFile: string): Buffer | undefined {
  let text: string;
  try {
    text = fs.readFileSync(keyFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SecretBoxError(`stepguard: cannot read the key file ${keyFile}: ${(error as Error).message}`, { cause: error });
  }
  const trimmed = text.trim();
  const material = /^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : Buffer.alloc(0);
  if (material.length !== KEY_BYTES) {
    // Never replace it: the secrets already sealed with it would become unreadable.
    throw new SecretBoxError(`stepguard: the key file ${keyFile} is corrupt (expected 32 base64-encoded bytes); restore it or set STEPGUARD_SECRET`);
  }
  return material;
}
