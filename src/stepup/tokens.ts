/**
 * Signed, stateless challenge and grant tokens:
 *
 *   base64url(JSON payload) "." base64url(HMAC-SHA256(key, "sg1." + payloadPart))
 *
 * The payload is readable by the client (it is only encoded), so it never carries a raw session credential: `sid`
 * is a `bindingHash` of it. Times are epoch SECONDS (like JWT `exp`/`auth_time`). Verification never throws on
 * input: anything that isn't exactly a token we issued is `malformed` or `signature`.
 */
import crypto from 'node:crypto';

export interface ChallengeClaims {
  typ: 'challenge';
  sub: string;
  sid: string;
  rule: string;
  acr: string[];
  max_age: number;
  exp: number;
  jti: string;
}

export interface GrantClaims {
  typ: 'grant';
  sub: string;
  sid: string;
  scope: string;
  acr: string;
  amr: string[];
  auth_time: number;
  exp: number;
  jti: string;
}

export type TokenType = 'challenge' | 'grant';
export type TokenFailure = 'malformed' | 'signature' | 'expired' | 'type';
export type VerifyResult<T extends TokenType> =
  | { ok: true; claims: T extends 'grant' ? GrantClaims : ChallengeClaims }
  | { ok: false; reason: TokenFailure };

const SIGNING_INPUT_PREFIX = 'sg1.';
const HKDF_SALT = 'stepguard';
const SIGNING_INFO = 'stepguard grant signing';
const BINDING_INFO = 'stepguard session binding';
const MIN_KEY_BYTES = 32;
const MAC_BYTES = 32;
/** Longer strings are refused before any decoding or HMAC work. */
export const MAX_TOKEN_LENGTH = 8192;
const B64URL = /^[A-Za-z0-9_-]+$/;

export class TokenSigner {
  readonly #key: Buffer;
  readonly #bindingKey: Buffer;

  /** `key`: at least 32 bytes, used as the HMAC key. */
  constructor(key: Buffer) {
    if (!Buffer.isBuffer(key) || key.length < MIN_KEY_BYTES) {
      throw new RangeError(`stepguard: the token signing key must be at least ${MIN_KEY_BYTES} bytes`);
    }
    this.#key = Buffer.from(key);
    this.#bindingKey = bindingKeyFrom(this.#key);
  }

  /**
   * Key = HKDF-SHA256(STEPGUARD_SECRET, info "stepguard grant signing"). Without a secret: 32 random bytes and
   * `generated: true` — tokens then die with the process and are not accepted by other instances; the caller warns.
   */
  static fromSecret(secret: string | undefined): { signer: TokenSigner; generated: boolean } {
    if (secret === undefined || secret === '') return { signer: new TokenSigner(crypto.randomBytes(32)), generated: true };
    const key = Buffer.from(crypto.hkdfSync('sha256', Buffer.from(secret, 'utf8'), HKDF_SALT, SIGNING_INFO, 32));
    return { signer: new TokenSigner(key), generated: false };
  }

  sign(claims: ChallengeClaims | GrantClaims): string {
    const clean = claims.typ === 'grant' ? pickGrant(claims) : claims.typ === 'challenge' ? pickChallenge(claims) : undefined;
    if (clean === undefined) throw new TypeError('stepguard: sign() needs complete challenge or grant claims');
    const payloadPart = Buffer.from(JSON.stringify(clean), 'utf8').toString('base64url');
    return `${payloadPart}.${this.#mac(payloadPart).toString('base64url')}`;
  }

  /** `now`: epoch seconds (default: the current time). A token is expired once `now >= exp`. */
  verify<T extends TokenType>(token: string, typ: T, now?: number): VerifyResult<T> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return fail('malformed');
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) return fail('malformed');
    const payloadPart = token.slice(0, dot);
    const macPart = token.slice(dot + 1);
    if (!B64URL.test(payloadPart) || !B64URL.test(macPart)) return fail('malformed');
    const given = Buffer.from(macPart, 'base64url');
    // Canonical encoding only, so one token has exactly one string form.
    if (given.length !== MAC_BYTES || given.toString('base64url') !== macPart) return fail('malformed');
    if (!crypto.timingSafeEqual(given, this.#mac(payloadPart))) return fail('signature');

    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
    } catch {
      return fail('malformed');
    }
    const claims = isRecord(payload) ? (payload.typ === 'grant' ? pickGrant(payload) : pickChallenge(payload)) : undefined;
    if (claims === undefined) return fail('malformed');
    if (claims.typ !== typ) return fail('type');
    if (nowSeconds(now) >= claims.exp) return fail('expired');
    return { ok: true, claims: claims as T extends 'grant' ? GrantClaims : ChallengeClaims };
  }

  /** HMAC-SHA256 of a session credential under a key separate from the signing key, base64url. */
  bindingHash(material: string): string {
    return crypto.createHmac('sha256', this.#bindingKey).update(material, 'utf8').digest('base64url');
  }

  #mac(payloadPart: string): Buffer {
    return crypto.createHmac('sha256', this.#key).update(SIGNING_INPUT_PREFIX + payloadPart, 'ascii').digest();
  }
}

/**
 * Binds a token to a session without carrying the credential: HMAC-SHA256 of `material` (cookie value, Authorization
 * header…), base64url. The HMAC key is derived from the signing key (HKDF, info "stepguard session binding"), never
 * the signing key itself — otherwise a client choosing its own cookie could obtain a valid token signature.
 * `bindingHash(key, m) === bindingHash(new TokenSigner(key), m)`.
 */
export function bindingHash(key: Buffer | TokenSigner, material: string): string {
  if (key instanceof TokenSigner) return key.bindingHash(material);
  if (!Buffer.isBuffer(key) || key.length < MIN_KEY_BYTES) {
    throw new RangeError(`stepguard: the binding key must be at least ${MIN_KEY_BYTES} bytes`);
  }
  return crypto.createHmac('sha256', bindingKeyFrom(key)).update(material, 'utf8').digest('base64url');
}

/** A random token id (`jti`): 128 bits, base64url. */
export function newTokenId(): string {
  return crypto.randomBytes(16).toString('base64url');
}

/** The current time in whole epoch seconds. */
export function epochSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function bindingKeyFrom(key: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', key, HKDF_SALT, BINDING_INFO, 32));
}

function nowSeconds(now: number | undefined): number {
  if (now === undefined) return Date.now() / 1000;
  if (!Number.isFinite(now) || now > 1e11) {
    // 1e11 s is the year 5138: a value this large is milliseconds passed by mistake.
    throw new RangeError(`stepguard: 'now' must be epoch seconds, got ${now}`);
  }
  return now;
}

function fail(reason: TokenFailure): { ok: false; reason: TokenFailure } {
  return { ok: false, reason };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Validates and copies exactly the challenge members (unknown members are dropped); undefined when invalid. */
function pickChallenge(v: Record<string, unknown> | ChallengeClaims): ChallengeClaims | undefined {
  const r = v as Record<string, unknown>;
  if (r.typ !== 'challenge') return undefined;
  if (!isStr(r.sub) || !isStr(r.sid) || !isStr(r.rule) || !isStrList(r.acr) || !isTime(r.max_age) || !isTime(r.exp) || !isStr(r.jti)) {
    return undefined;
  }
  return { typ: 'challenge', sub: r.sub, sid: r.sid, rule: r.rule, acr: [...r.acr], max_age: r.max_age, exp: r.exp, jti: r.jti };
}

function pickGrant(v: Record<string, unknown> | GrantClaims): GrantClaims | undefined {
  const r = v as Record<string, unknown>;
  if (r.typ !== 'grant') return undefined;
  if (
    !isStr(r.sub) ||
    !isStr(r.sid) ||
    !isStr(r.scope) ||
    !isStr(r.acr) ||
    !isStrList(r.amr) ||
    !isTime(r.auth_time) ||
    !isTime(r.exp) ||
    !isStr(r.jti)
  ) {
    return undefined;
  }
  return {
    typ: 'grant',
    sub: r.sub,
    sid: r.sid,
    scope: r.scope,
    acr: r.acr,
    amr: [...r.amr],
    auth_time: r.auth_time,
    exp: r.exp,
    jti: r.jti,
  };
}
