/**
 * TOTP (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps, one step of drift either way (RFC 6238 §5.2), via
 * otplib 13's synchronous functional API (pure-JS noble crypto plugin).
 *
 * Constant time: otplib compares each candidate code with the submitted one through its crypto plugin's
 * `constantTimeEqual` (an XOR-accumulate over the whole byte strings, @otplib/core), after checking the token's
 * length and digits — both public properties of the input, not of the secret. The only data-dependent exit is on a
 * match (which step matched), which tells a caller who already holds a valid code nothing new.
 *
 * Single use is NOT handled here (otplib stores nothing): the caller passes the returned `timeStep` to
 * `StepUpStore.acceptTimeStep`, which accepts each step at most once per user.
 *
 * `now` is epoch SECONDS everywhere in this module (the unit of RFC 6238's T and of otplib's `epoch`).
 */
import type * as Otplib from 'otplib';

/** otplib is loaded when first used (a verification or an enrollment), keeping it off the app's start-up. */
let otplib: typeof Otplib | undefined;
function lib(): typeof Otplib {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred load, see above
  return (otplib ??= require('otplib') as typeof Otplib);
}

export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** Seconds of tolerance = one step before and after the current one. */
export const TOTP_TOLERANCE_SECONDS = 30;

const CODE_PATTERN = /^[0-9]{6}$/;

export type CodeCheck = { ok: true; timeStep: number } | { ok: false; reason: 'malformed' | 'invalid' };

/** A new random secret: 20 bytes (160 bits, RFC 4226 R6), base32 without padding. */
export function newTotpSecret(): string {
  return lib().generateSecret();
}

/**
 * Google Authenticator key URI: `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
 * Issuer and account are percent-encoded (a `:` inside either becomes `%3A`, keeping the label unambiguous).
 */
export function otpauthUri(secret: string, account: string, issuer: string): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const params = [
    `secret=${encodeURIComponent(secret)}`,
    `issuer=${encodeURIComponent(issuer)}`,
    'algorithm=SHA1',
    `digits=${TOTP_DIGITS}`,
    `period=${TOTP_PERIOD_SECONDS}`,
  ];
  return `otpauth://totp/${label}?${params.join('&')}`;
}

/**
 * Checks a submitted code. Never throws on the code: anything but exactly six ASCII digits is `malformed`; a
 * well-formed code that matches no step within ±1 is `invalid`. Throws only for a bad `secret`/`now` (server-side
 * errors, not user input).
 */
export function checkTotp(secret: string, code: string, now?: number): CodeCheck {
  if (typeof code !== 'string' || !CODE_PATTERN.test(code)) return { ok: false, reason: 'malformed' };
  let result: ReturnType<typeof Otplib.verifySync>;
  try {
    result = lib().verifySync({
      secret,
      token: code,
      epoch: epochSeconds(now),
      period: TOTP_PERIOD_SECONDS,
      digits: TOTP_DIGITS,
      algorithm: 'sha1',
      epochTolerance: TOTP_TOLERANCE_SECONDS,
    });
  } catch (error) {
    // The code was checked above, so a token error cannot happen here; anything else is a server-side problem.
    if (isTokenError(error)) return { ok: false, reason: 'malformed' };
    throw error;
  }
  if (result.valid && 'timeStep' in result) return { ok: true, timeStep: result.timeStep };
  return { ok: false, reason: 'invalid' };
}

/** The code for `now` (epoch seconds, default the current time). For tests and the demo. */
export function currentCode(secret: string, now?: number): string {
  return lib().generateSync({
    secret,
    epoch: epochSeconds(now),
    period: TOTP_PERIOD_SECONDS,
    digits: TOTP_DIGITS,
    algorithm: 'sha1',
  });
}

/** The RFC 6238 time step T for `now` (epoch seconds). */
export function timeStepAt(now?: number): number {
  return Math.floor(epochSeconds(now) / TOTP_PERIOD_SECONDS);
}

function epochSeconds(now: number | undefined): number {
  if (now === undefined) return Math.floor(Date.now() / 1000);
  if (!Number.isFinite(now) || now < 0 || now > 1e11) {
    // 1e11 s is the year 5138: a value this large is milliseconds passed by mistake.
    throw new RangeError(`stepguard: 'now' must be epoch seconds, got ${now}`);
  }
  return Math.floor(now);
}

function isTokenError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'TokenFormatError' || name === 'TokenLengthError' || name === 'TokenError';
}
