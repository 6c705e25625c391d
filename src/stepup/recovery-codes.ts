/**
 * Recovery codes: ten single-use codes for a user who lost their authenticator. Shown once at issue, stored only
 * as HMAC-SHA256 under a key derived from the secret-box key (STEPGUARD_SECRET or the key file), bound to the
 * user id, and consumed atomically by the store. A code is `XXXXX-XXXXX` in Crockford's base32 (50 random bits);
 * input is read case-insensitively, with or without the dash or spaces, O read as 0 and I/L as 1.
 */
import crypto from 'node:crypto';
import type { SecretBox } from './secret-box.js';
import type { StepUpStore } from './store.js';

export const RECOVERY_CODE_COUNT = 10;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODE_CHARS = 10;
/** What a typed recovery code may look like before normalising (bounded, so no work on junk). */
export const RECOVERY_CODE_INPUT = /^[0-9A-Za-z][0-9A-Za-z -]{8,14}[0-9A-Za-z]$/;

/** Ten fresh codes, formatted for display. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  const codes = new Set<string>();
  while (codes.size < count) {
    let raw = '';
    for (const byte of crypto.randomBytes(CODE_CHARS)) raw += CROCKFORD[byte & 31];
    codes.add(`${raw.slice(0, 5)}-${raw.slice(5)}`);
  }
  return [...codes];
}

/** The canonical form (10 Crockford characters) or undefined when `input` cannot be a recovery code. */
export function normalizeRecoveryCode(input: string): string | undefined {
  if (typeof input !== 'string' || !RECOVERY_CODE_INPUT.test(input)) return undefined;
  const raw = input.toUpperCase().replace(/[ -]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (raw.length !== CODE_CHARS) return undefined;
  for (const ch of raw) if (!CROCKFORD.includes(ch)) return undefined;
  return raw;
}

export function hashRecoveryCode(box: SecretBox, userId: string, normalized: string): string {
  return box.mac(`recovery-code\0${userId}\0${normalized}`);
}

/** Issues (or replaces) the user's codes; returns them for showing once. */
export async function issueRecoveryCodes(store: StepUpStore, box: SecretBox, userId: string): Promise<string[]> {
  if (typeof userId !== 'string' || userId === '') throw new TypeError('stepguard: recovery codes need a non-empty user id');
  const codes = newRecoveryCodes();
  await store.setRecoveryCodes(
    userId,
    codes.map((c) => hashRecoveryCode(box, userId, normalizeRecoveryCode(c)!)),
  );
  return codes;
}

/** true exactly once per issued code (atomic in the store); false for anything else. */
export async function consumeRecoveryCode(store: StepUpStore, box: SecretBox, userId: string, input: string): Promise<boolean> {
  const normalized = normalizeRecoveryCode(input);
  if (normalized === undefined) return false;
  return store.consumeRecoveryCode(userId, hashRecoveryCode(box, userId, normalized));
}
