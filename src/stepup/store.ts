/**
 * The step-up state shared by every instance of an application: enrolled factors (encrypted secrets), the last
 * accepted TOTP time step per user (single use, RFC 6238 §5.2), failure counters for rate limiting, known client
 * addresses and single-use markers. Two implementations: `EmbeddedStore` (one process, a JSON file) and
 * `RedisStore` (shared by many processes, on one Redis or a Redis Cluster); store-factory.ts picks one (this file imports neither).
 */
import path from 'node:path';

export interface EnrolledFactor {
  readonly method: 'totp';
  /** `SecretBox.seal` output; never the plain base32 secret. */
  readonly secretCiphertext: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

/**
 * One attempt counter. `key` names who is limited and doubles as the Redis Cluster hash tag, so a counter and its
 * lock always share a slot: `u:<user>`, `a:<client address>`.
 */
export interface AttemptCounter {
  readonly key: string;
  readonly limit: number;
}

export type AttemptReservation = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

/** A registered passkey (WebAuthn credential). Public data only: nothing here is secret. */
export interface StoredCredential {
  /** Credential id, base64url. */
  readonly id: string;
  /** COSE public key, base64url. */
  readonly publicKey: string;
  /** Signature counter last seen (0 for authenticators that do not count). */
  readonly counter: number;
  readonly transports: readonly string[];
  /** The authenticator verified the user (PIN/biometric) at registration. */
  readonly userVerified: boolean;
  /** Synced passkey (`multiDevice`) or bound to one device. */
  readonly deviceType: 'singleDevice' | 'multiDevice';
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

/** Thrown by every store method when the backend can't be reached (or can't persist). Callers fail closed. */
export class StoreUnavailableError extends Error {
  readonly code = 'ERR_STEPGUARD_STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export interface StepUpStore {
  getFactor(userId: string): Promise<EnrolledFactor | undefined>;
  /** Also forgets the last accepted time step: a new secret's codes are a new sequence. */
  setFactor(userId: string, factor: EnrolledFactor): Promise<void>;
  deleteFactor(userId: string): Promise<void>;
  /** Atomic: accepts `timeStep` only if it is greater than the last accepted step for this user (RFC 6238 §5.2 single use). Exactly one of N concurrent calls with the same step returns true, across processes for Redis. */
  acceptTimeStep(userId: string, timeStep: number): Promise<boolean>;
  /** Adds one failure to `key` within a window of `windowSeconds` (window starts at first failure); returns { count, retryAfterSeconds } where retryAfterSeconds is the time left in the window. */
  recordFailure(key: string, windowSeconds: number): Promise<{ count: number; retryAfterSeconds: number }>;
  /** Current failures in the window (0 when none/expired) and time left. */
  failures(key: string): Promise<{ count: number; retryAfterSeconds: number }>;
  resetFailures(key: string): Promise<void>;
  /**
   * Verification attempt limits (lockout.ts), atomic per counter across every instance: refuses when a counter is
   * locked or already holds `limit` attempts in its window; otherwise counts one attempt on every counter (the
   * window starts at the first) and allows it. Called BEFORE a code is checked, so N parallel requests can never
   * check more than `limit` codes.
   */
  reserveAttempt(counters: readonly AttemptCounter[], windowSeconds: number): Promise<AttemptReservation>;
  /**
   * Ends a reserved attempt. `failed`: it stays counted as a failure, and a counter whose failures in the window reach
   * `limit` is locked for `windowSeconds` from now (a lockout lasts the whole window from the moment it starts; attempts
   * still in flight do not lock, so a success racing failures cannot lock its user out); returns the lockout's
   * seconds left when one is in force. `released` (a success, or nothing was checked): the attempt is given back —
   * one decrement, never a reset, so failures recorded meanwhile by parallel requests stay counted.
   */
  settleAttempt(counters: readonly AttemptCounter[], windowSeconds: number, outcome: 'failed' | 'released'): Promise<{ lockedForSeconds: number | undefined }>;
  addKnownAddress(userId: string, address: string): Promise<void>;
  knownAddresses(userId: string): Promise<readonly string[]>;
  /** Single-use marker (e.g. a challenge id): true the first time within ttl, false afterwards. Atomic. */
  consumeOnce(key: string, ttlSeconds: number): Promise<boolean>;
  /** The user's passkeys (empty when none). */
  credentials(userId: string): Promise<StoredCredential[]>;
  /** Adds (or replaces, same id) a passkey. */
  addCredential(userId: string, credential: StoredCredential): Promise<void>;
  /**
   * Atomic: stores `counter` for the credential only if it moved forward (greater than the stored one), or if
   * both are 0 (an authenticator without a counter). false: unknown credential or a counter that did not move
   * forward — a cloned authenticator, refused by the caller.
   */
  advanceCounter(userId: string, credentialId: string, counter: number): Promise<boolean>;
  /** Replaces the user's recovery codes with these hashes (an empty list removes them). */
  setRecoveryCodes(userId: string, hashes: readonly string[]): Promise<void>;
  /** Atomic: removes `hash` if present; true exactly once per stored hash, across processes for Redis. */
  consumeRecoveryCode(userId: string, hash: string): Promise<boolean>;
  /** How many unused recovery codes the user has. */
  recoveryCodesLeft(userId: string): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Checks the shape of a credential record read back from storage. */
export function isStoredCredential(value: unknown): value is StoredCredential {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.id === 'string' &&
    v.id.length > 0 &&
    typeof v.publicKey === 'string' &&
    v.publicKey.length > 0 &&
    typeof v.counter === 'number' &&
    Number.isSafeInteger(v.counter) &&
    v.counter >= 0 &&
    Array.isArray(v.transports) &&
    v.transports.every((t) => typeof t === 'string') &&
    typeof v.userVerified === 'boolean' &&
    (v.deviceType === 'singleDevice' || v.deviceType === 'multiDevice') &&
    typeof v.createdAt === 'number'
  );
}

/** A copy with exactly the credential fields. */
export function cleanCredential(c: StoredCredential): StoredCredential {
  return {
    id: c.id,
    publicKey: c.publicKey,
    counter: c.counter,
    transports: [...c.transports],
    userVerified: c.userVerified,
    deviceType: c.deviceType,
    createdAt: c.createdAt,
  };
}

/** Throws a RangeError unless `seconds` is a finite number > 0 (a programming error, not an outage). */
export function assertPositiveSeconds(name: string, seconds: number): void {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new RangeError(`stepguard: ${name} must be a positive number of seconds, got ${String(seconds)}`);
  }
}

/** A time step the stores accept at all: a non-negative safe integer. Anything else is refused (returns false). */
export function isValidTimeStep(timeStep: number): boolean {
  return typeof timeStep === 'number' && Number.isSafeInteger(timeStep) && timeStep >= 0;
}

/** Checks the shape of a factor record read back from storage. */
export function isEnrolledFactor(value: unknown): value is EnrolledFactor {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    v.method === 'totp' &&
    typeof v.secretCiphertext === 'string' &&
    v.secretCiphertext.length > 0 &&
    typeof v.createdAt === 'number' &&
    Number.isFinite(v.createdAt)
  );
}

/** Seed nodes of a Redis Cluster (STEPGUARD_REDIS_CLUSTER) and the credentials every node takes. */
export interface RedisClusterSettings {
  readonly nodes: ReadonlyArray<{ host: string; port: number }>;
  readonly username?: string;
  readonly password?: string;
}

/**
 * `127.0.0.1:7001,127.0.0.1:7002` or `redis://[user:password@]host:port,host:port` (IPv6 in brackets); credentials
 * from the first entry that names them. Returns a problem sentence for a bad value.
 */
export function parseRedisCluster(value: unknown): { ok: true; value: RedisClusterSettings } | { ok: false; problem: string } {
  const expected = 'a comma-separated list of cluster nodes host:port (e.g. 10.0.0.1:7000,10.0.0.2:7000, or redis://:password@10.0.0.1:7000,10.0.0.2:7000)';
  if (typeof value !== 'string' || value.trim() === '') return { ok: false, problem: expected };
  const nodes: Array<{ host: string; port: number }> = [];
  let username: string | undefined;
  let password: string | undefined;
  for (const raw of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(/^rediss?:\/\//.test(raw) ? raw : `redis://${raw}`);
    } catch {
      return { ok: false, problem: `${expected}; "${raw}" is not host:port` };
    }
    const port = Number(url.port);
    if (!url.hostname || !Number.isInteger(port) || port < 1 || (url.pathname !== '' && url.pathname !== '/')) {
      return { ok: false, problem: `${expected}; "${raw}" is not host:port` };
    }
    if (password === undefined && url.password) password = decodeURIComponent(url.password);
    if (username === undefined && url.username) username = decodeURIComponent(url.username);
    nodes.push({ host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname, port });
  }
  if (nodes.length === 0) return { ok: false, problem: expected };
  return { ok: true, value: { nodes, ...(username ? { username } : {}), ...(password ? { password } : {}) } };
}

export interface StoreSettings {
  /** Set: a `RedisStore` on this URL. */
  readonly redisUrl?: string;
  /** Set (and no URL): a `RedisStore` on this Redis Cluster. */
  readonly redisCluster?: RedisClusterSettings;
  /** Directory of the embedded store, and of the generated key file when STEPGUARD_SECRET is unset. */
  readonly storeDir: string;
}

/**
 * Which store the agent and the CLI use: `STEPGUARD_REDIS_URL` → Redis, else the embedded store in
 * `STEPGUARD_STORE_DIR` or `.stepguard` under `cwd`. Explicit overrides (CLI flags) win over the environment.
 */
export function resolveStoreSettings(
  env: NodeJS.ProcessEnv,
  cwd: string,
  overrides: { redisUrl?: string | undefined; storeDir?: string | undefined } = {},
): StoreSettings {
  const redisUrl = nonEmpty(overrides.redisUrl) ?? nonEmpty(env.STEPGUARD_REDIS_URL);
  const storeDir = path.resolve(cwd, nonEmpty(overrides.storeDir) ?? nonEmpty(env.STEPGUARD_STORE_DIR) ?? '.stepguard');
  if (redisUrl !== undefined) return { redisUrl, storeDir };
  const cluster = nonEmpty(env.STEPGUARD_REDIS_CLUSTER);
  if (cluster !== undefined) {
    const parsed = parseRedisCluster(cluster);
    if (!parsed.ok) throw new RangeError(`stepguard: STEPGUARD_REDIS_CLUSTER: expected ${parsed.problem}`);
    return { redisCluster: parsed.value, storeDir };
  }
  return { storeDir };
}

/** Where `SecretBox` keeps its generated key when STEPGUARD_SECRET is unset. */
export function secretKeyFile(storeDir: string): string {
  return path.join(storeDir, 'secret.key');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
