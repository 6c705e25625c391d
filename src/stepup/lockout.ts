import type { StepUpStore } from './store.js';

/**
 * Attempt limits for verification: failures are counted per user and per client address in a window;
 * past the limit, verification is refused until the window ends. Counters live in the store, so every
 * instance of the app sees the same ones.
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

export function lockoutKeys(userId: string, clientAddress: string | undefined): LockoutKeys {
  return { user: `fail:user:${userId}`, client: `fail:client:${clientAddress ?? 'unknown'}` };
}

export class Lockout {
  constructor(
    private readonly store: () => StepUpStore,
    private readonly limits: LockoutLimits,
  ) {}

  /** `undefined` when neither the user nor the client address is locked; else seconds until it unlocks. */
  async retryAfter(keys: LockoutKeys): Promise<number | undefined> {
    const store = this.store();
    const [user, client] = await Promise.all([store.failures(keys.user), store.failures(keys.client)]);
    const waits: number[] = [];
    if (user.count >= this.limits.maxAttemptsPerUser) waits.push(user.retryAfterSeconds);
    if (client.count >= this.limits.maxAttemptsPerClient) waits.push(client.retryAfterSeconds);
    return waits.length > 0 ? Math.max(1, ...waits) : undefined;
  }

  /** One failure against each key (a session mismatch counts against the client only). */
  async fail(...keys: string[]): Promise<void> {
    const store = this.store();
    await Promise.all(keys.map((key) => store.recordFailure(key, this.limits.lockoutSeconds)));
  }

  /** A successful verification clears the user's failures (the client's stay: they may be someone else's). */
  async succeeded(keys: LockoutKeys): Promise<void> {
    await this.store().resetFailures(keys.user);
  }
}
