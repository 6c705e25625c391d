import type { AttemptCounter, AttemptReservation, StepUpStore } from './store.js';

/**
 * Attempt limits for verification, per user and per client address, shared by every instance through the store.
 *
 * An attempt is reserved (counted and compared atomically) BEFORE its code is checked, so however many requests
 * arrive at once, at most `limit` codes are ever checked per window; past the limit the answer is 429 without
 * looking at the code. A wrong code keeps its attempt counted; the failure that fills a counter starts a lockout
 * that lasts the whole configured window from that moment. A success gives back only its own attempt (never a
 * reset), so failures that parallel requests recorded meanwhile stay counted.
 *
 * What the per-address limit protects: one client guessing codes across many accounts (each account's own limit
 * is not reached, the address's is). Only real code checks count against it — a replayed challenge without its
 * session (a session mismatch) is refused before any counter is touched, so nobody can spend the address's budget
 * and lock out the other users behind the same address without guessing codes. The address is the client address
 * through trusted proxies only (context/client-address.ts), so a shared load balancer address is not one bucket
 * when STEPGUARD_TRUSTED_PROXIES is set.
 */
export interface LockoutLimits {
  readonly maxAttemptsPerUser: number;
  readonly maxAttemptsPerClient: number;
  readonly lockoutSeconds: number;
}

export interface LockoutKeys {
  readonly user: string;
  readonly client: string;
}

/** Counter keys double as Redis Cluster hash tags (`u:…`, `a:…`): each counter and its lock stay on one slot. */
export function lockoutKeys(userId: string, clientAddress: string | undefined): LockoutKeys {
  return { user: `u:${userId}`, client: `a:${clientAddress ?? 'unknown'}` };
}

export class Lockout {
  constructor(
    private readonly store: () => StepUpStore,
    private readonly limits: LockoutLimits,
  ) {}

  /** Counts one attempt for the user and the address, unless either is locked or full (then: seconds to wait). */
  reserve(keys: LockoutKeys): Promise<AttemptReservation> {
    return this.store().reserveAttempt(this.counters(keys), this.limits.lockoutSeconds);
  }

  /** The code was wrong: the attempt stays counted. Returns the lockout's seconds left when this failure started one (or one runs). */
  async failed(keys: LockoutKeys): Promise<number | undefined> {
    return (await this.store().settleAttempt(this.counters(keys), this.limits.lockoutSeconds, 'failed')).lockedForSeconds;
  }

  /** Success, or nothing was checked (not enrolled, unreadable secret): give this attempt back. */
  async release(keys: LockoutKeys): Promise<void> {
    await this.store().settleAttempt(this.counters(keys), this.limits.lockoutSeconds, 'released');
  }

  private counters(keys: LockoutKeys): AttemptCounter[] {
    return [
      { key: keys.user, limit: this.limits.maxAttemptsPerUser },
      { key: keys.client, limit: this.limits.maxAttemptsPerClient },
    ];
  }
}
