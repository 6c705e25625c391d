/**
 * Method tiers: what a rule's `acr_values` ask for, which verification methods can answer, and what a grant
 * records. Two tiers, ordered; a higher tier satisfies a lower one, never the reverse:
 *
 *   urn:stepguard:acr:otp  (short name `otp`)  one-time password (TOTP) or a recovery code
 *   urn:stepguard:acr:phr  (short name `phr`)  phishing-resistant: a passkey (WebAuthn) with user verification
 *
 * `amr` values (RFC 8176): `otp`, `hwk` (device-bound passkey / security key), `swk` (synced passkey),
 * `user` (the authenticator verified the user: PIN or biometric), `mfa`, and `rcode` for a recovery code
 * (stepguard's own value: RFC 8176 registers none for it).
 */

export const ACR = Object.freeze({
  otp: 'urn:stepguard:acr:otp',
  phr: 'urn:stepguard:acr:phr',
});

export type TierName = keyof typeof ACR;
export type Method = 'totp' | 'webauthn' | 'recovery_code';

const RANK: ReadonlyMap<string, number> = new Map([
  [ACR.otp, 1],
  [ACR.phr, 2],
]);

/** The tier each method reaches at most. A recovery code is a fallback: the OTP tier only (README "Recovery codes"). */
export const METHOD_TIER: Readonly<Record<Method, string>> = Object.freeze({
  totp: ACR.otp,
  webauthn: ACR.phr,
  recovery_code: ACR.otp,
});

export const AMR_RECOVERY_CODE = 'rcode';

/** `otp` → its URN; URNs and anything else unchanged (rules may name ACR values of their own). */
export function expandAcr(value: string): string {
  return Object.hasOwn(ACR, value) ? ACR[value as TierName] : value;
}

/** 1, 2… for the tiers above; undefined for an ACR value stepguard does not rank. */
export function tierRank(acr: string): number | undefined {
  return RANK.get(acr);
}

/**
 * Does a grant (or a method) at `grantAcr` satisfy a request for any of `requested`? A ranked value is met by
 * the same or a higher tier; a value stepguard does not know is met only by exactly that value.
 */
export function tierSatisfies(grantAcr: string, requested: readonly string[]): boolean {
  const have = RANK.get(grantAcr);
  for (const want of requested) {
    if (want === grantAcr) return true;
    const need = RANK.get(want);
    if (have !== undefined && need !== undefined && have >= need) return true;
  }
  return false;
}

/** The methods that can answer a challenge for `requested`, best first. */
export function methodsFor(requested: readonly string[]): Method[] {
  return (['webauthn', 'totp', 'recovery_code'] as const).filter((m) => tierSatisfies(METHOD_TIER[m], requested));
}

/** The lowest ranked tier among `requested`, to decide whether user verification is mandatory. */
export function needsPhishingResistance(requested: readonly string[]): boolean {
  return !tierSatisfies(ACR.otp, requested);
}

/**
 * What a passkey assertion earns. With user verification: the phishing-resistant tier and `mfa` (possession +
 * PIN/biometric). Without: possession only, so the OTP tier. A synced (multi-device) passkey is `swk`.
 */
export function passkeyResult(userVerified: boolean, multiDevice: boolean): { acr: string; amr: string[] } {
  const key = multiDevice ? 'swk' : 'hwk';
  return userVerified ? { acr: ACR.phr, amr: [key, 'user', 'mfa'] } : { acr: ACR.otp, amr: [key] };
}
