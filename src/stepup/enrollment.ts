/**
 * Enrolling a user's TOTP factor: a fresh secret, sealed with the `SecretBox` (bound to the user id, so a record
 * copied onto another user does not decrypt) and stored. The plain secret is returned once, for the QR code.
 */
import type { SecretBox } from './secret-box.js';
import type { StepUpStore } from './store.js';
import { newTotpSecret, otpauthUri } from './totp.js';
import type { Method } from './tiers.js';

export const ERR_ALREADY_ENROLLED = 'ERR_STEPGUARD_ALREADY_ENROLLED';

export class AlreadyEnrolledError extends Error {
  readonly code = ERR_ALREADY_ENROLLED;
  constructor(readonly userId: string) {
    super(`stepguard: user ${JSON.stringify(userId)} already has a TOTP factor; pass replace to enroll a new one`);
    this.name = 'AlreadyEnrolledError';
  }
}

/** The `SecretBox` context a user's TOTP secret is sealed under. */
export function factorContext(userId: string): string {
  return `totp:${userId}`;
}

export async function enrollUser(
  store: StepUpStore,
  box: SecretBox,
  userId: string,
  issuer: string,
  options: { replace?: boolean } = {},
): Promise<{ secret: string; uri: string }> {
  if (typeof userId !== 'string' || userId === '') throw new TypeError('stepguard: enrollUser needs a non-empty user id');
  if (options.replace !== true && (await store.getFactor(userId)) !== undefined) throw new AlreadyEnrolledError(userId);
  const secret = newTotpSecret();
  await store.setFactor(userId, { method: 'totp', secretCiphertext: box.seal(secret, factorContext(userId)), createdAt: Date.now() });
  return { secret, uri: otpauthUri(secret, userId, issuer) };
}

/** Enrolled in anything: a TOTP factor or a passkey (recovery codes alone do not count). */
export async function isEnrolled(store: StepUpStore, userId: string): Promise<boolean> {
  return (await store.getFactor(userId)) !== undefined || (await store.credentials(userId)).length > 0;
}

/** Which methods the user can answer a challenge with. */
export async function enrolledMethods(store: StepUpStore, userId: string): Promise<Set<Method>> {
  const [factor, credentials, codes] = await Promise.all([store.getFactor(userId), store.credentials(userId), store.recoveryCodesLeft(userId)]);
  const out = new Set<Method>();
  if (factor !== undefined) out.add('totp');
  if (credentials.length > 0) out.add('webauthn');
  if (codes > 0 && out.size > 0) out.add('recovery_code');
  return out;
}

/** The user's plain base32 secret, or undefined when not enrolled. Throws `SecretBoxError` if it can't be decrypted. */
export async function secretFor(store: StepUpStore, box: SecretBox, userId: string): Promise<string | undefined> {
  const factor = await store.getFactor(userId);
  if (factor === undefined) return undefined;
  return box.open(factor.secretCiphertext, factorContext(userId));
}
