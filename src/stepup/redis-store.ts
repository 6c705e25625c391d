/**
 * The shared store for several processes/instances, on Redis (ioredis 6).
 *
 * Failure semantics: the request path must never hang on Redis. Commands are never queued while disconnected
 * (`enableOfflineQueue: false`), a command waits at most `commandTimeoutMs`, a command caught by a dropped connection
 * is retried at most once, and every failure surfaces as `StoreUnavailableError` (callers fail closed). Meanwhile the
 * client keeps reconnecting by itself with capped exponential backoff, so the store recovers without being recreated
 * once Redis is back. Right after construction (and during a reconnect attempt) a call waits up to `readyWaitMs` for
 * the connection instead of failing at once.
 *
 * Atomicity: check-and-set operations are single Lua scripts or single commands, so they are atomic across every
 * client of the same Redis.
 *
 * Keys (prefix default `stepguard:`): `factor:<user>` (JSON), `step:<user>` (last accepted time step, expires after
 * `timeStepTtlSeconds`), `fail:<key>` (counter with the window as TTL), `addr:<user>` (SET), `once:<key>`.
 * Per-user keys with a Redis Cluster hash tag (prefix default `sg:`, so all of one user's keys share a slot):
 * `sg:{u:<user>}:webauthn` (HASH credential id → JSON record), `sg:{u:<user>}:webauthn-counter` (HASH id → counter), `sg:{u:<user>}:recovery` (SET of code hashes).
 */
import { Redis } from 'ioredis';
import { errorMessage, log, warnOnce } from '../log.js';
import {
  assertPositiveSeconds,
  isEnrolledFactor,
  isValidTimeStep,
  isStoredCredential,
  cleanCredential,
  StoreUnavailableError,
  type EnrolledFactor,
  type StoredCredential,
  type StepUpStore,
} from './store.js';

export interface RedisStoreOptions {
  /** Prepended to every key. Default `stepguard:` (and `sg:` for the per-user keys with a hash tag). */
  keyPrefix?: string;
  /** TCP connect timeout. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** Longest wait for one command's reply. Default 1500 ms. */
  commandTimeoutMs?: number;
  /** Longest wait for a connection attempt in progress before failing a call. Default 1000 ms. */
  readyWaitMs?: number;
  /** Reconnect backoff cap. Default 2000 ms. */
  maxReconnectDelayMs?: number;
  /** How long the last accepted time step is kept; must exceed how long a step can still validate (±1 step ≈ 90 s). Default 600 s. */
  timeStepTtlSeconds?: number;
}

// KEYS[1] = step key; ARGV[1] = time step; ARGV[2] = TTL ms. 1 = accepted, 0 = not greater than the last one.
const ACCEPT_STEP_LUA = `
local last = redis.call('GET', KEYS[1])
local step = tonumber(ARGV[1])
if last and tonumber(last) >= step then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

// KEYS[1] = failure key; ARGV[1] = window ms. INCR, then set the expiry only if the key has none (EXPIRE NX
// semantics, also on Redis < 7): the window starts at the first failure. Returns { count, pttl }.
const RECORD_FAILURE_LUA = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }
`;

// KEYS[1] = failure key. Returns { count, pttl } read atomically.
const FAILURES_LUA = `
local count = redis.call('GET', KEYS[1])
if not count then return { 0, 0 } end
return { tonumber(count), redis.call('PTTL', KEYS[1]) }
`;

// KEYS[1] = credential records (HASH), KEYS[2] = their counters (HASH); ARGV[1] = credential id; ARGV[2] = new
// counter. The counter lives apart from the JSON record so the script never re-encodes it (cjson would turn an
// empty list into an object). 1 = stored, 0 = unknown credential or a counter that did not move forward.
const ADVANCE_COUNTER_LUA = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local current = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or cjson.decode(raw).counter)
local counter = tonumber(ARGV[2])
if not (counter > current or (counter == 0 and current == 0)) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

interface ScriptCommands {
  sgAdvanceCounter(records: string, counters: string, id: string, counter: string): Promise<number>;
  sgAcceptStep(key: string, step: string, ttlMs: string): Promise<number>;
  sgRecordFailure(key: string, windowMs: string): Promise<[number, number]>;
  sgFailures(key: string): Promise<[number, number]>;
}

export class RedisStore implements StepUpStore {
  private readonly client: Redis & ScriptCommands;
  private readonly prefix: string;
  private readonly userPrefix: string;
  private readonly readyWaitMs: number;
  private readonly timeStepTtlMs: number;
  private readonly where: string;
  private closed = false;
  private readyWait: Promise<void> | undefined;

  constructor(url: string, options: RedisStoreOptions = {}) {
    this.prefix = options.keyPrefix ?? 'stepguard:';
    this.userPrefix = options.keyPrefix ?? 'sg:';
    this.readyWaitMs = options.readyWaitMs ?? 1000;
    this.timeStepTtlMs = Math.ceil((options.timeStepTtlSeconds ?? 600) * 1000);
    this.where = describe(url);
    const maxDelay = options.maxReconnectDelayMs ?? 2000;
    const client = new Redis(url, {
      enableOfflineQueue: false,
      connectTimeout: options.connectTimeoutMs ?? 1000,
      commandTimeout: options.commandTimeoutMs ?? 1500,
      maxRetriesPerRequest: 1,
      // Never give up: back off 100, 200, 400… ms up to the cap, so the store comes back by itself.
      retryStrategy: (times: number) => Math.min(maxDelay, 50 * 2 ** Math.min(times, 10)),
      connectionName: 'stepguard',
      disableClientInfo: true,
    });
    client.defineCommand('sgAcceptStep', { numberOfKeys: 1, lua: ACCEPT_STEP_LUA });
    client.defineCommand('sgRecordFailure', { numberOfKeys: 1, lua: RECORD_FAILURE_LUA });
    client.defineCommand('sgAdvanceCounter', { numberOfKeys: 2, lua: ADVANCE_COUNTER_LUA });
    client.defineCommand('sgFailures', { numberOfKeys: 1, lua: FAILURES_LUA, readOnly: true });
    // Without a listener ioredis prints every connection error itself; one line per outage is enough.
    let down = false;
    client.on('error', (error: Error) => {
      if (this.closed) return;
      warnOnce(`redis-store:${this.where}`, `step-up store: Redis at ${this.where} is unavailable (${errorMessage(error)}); step-up checks fail closed until it is back`);
      down = true;
    });
    client.on('ready', () => {
      if (down) log.info(`step-up store: Redis at ${this.where} is reachable again`);
      down = false;
    });
    this.client = client as Redis & ScriptCommands;
  }

  async getFactor(userId: string): Promise<EnrolledFactor | undefined> {
    const raw = await this.run(() => this.client.get(this.key('factor', userId)));
    if (raw === null) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    // Never report "not enrolled" for a record we can't read: that could let someone enroll over it.
    if (!isEnrolledFactor(parsed)) throw new StoreUnavailableError(`stepguard: the stored factor record for a user is corrupt (${this.where})`);
    return { method: parsed.method, secretCiphertext: parsed.secretCiphertext, createdAt: parsed.createdAt };
  }

  async setFactor(userId: string, factor: EnrolledFactor): Promise<void> {
    if (!isEnrolledFactor(factor)) throw new TypeError('stepguard: setFactor needs a valid EnrolledFactor');
    const value = JSON.stringify({ method: factor.method, secretCiphertext: factor.secretCiphertext, createdAt: factor.createdAt });
    await this.run(() => this.client.set(this.key('factor', userId), value));
  }

  async deleteFactor(userId: string): Promise<void> {
    await this.run(() => this.client.del(this.key('factor', userId)));
  }

  async acceptTimeStep(userId: string, timeStep: number): Promise<boolean> {
    if (!isValidTimeStep(timeStep)) return false;
    const accepted = await this.run(() => this.client.sgAcceptStep(this.key('step', userId), String(timeStep), String(this.timeStepTtlMs)));
    return Number(accepted) === 1;
  }

  async recordFailure(key: string, windowSeconds: number): Promise<{ count: number; retryAfterSeconds: number }> {
    assertPositiveSeconds('windowSeconds', windowSeconds);
    const windowMs = Math.ceil(windowSeconds * 1000);
    const [count, ttl] = await this.run(() => this.client.sgRecordFailure(this.key('fail', key), String(windowMs)));
    return { count: Number(count), retryAfterSeconds: secondsLeft(Number(ttl)) };
  }

  async failures(key: string): Promise<{ count: number; retryAfterSeconds: number }> {
    const [count, ttl] = await this.run(() => this.client.sgFailures(this.key('fail', key)));
    const n = Number(count);
    if (n <= 0) return { count: 0, retryAfterSeconds: 0 };
    return { count: n, retryAfterSeconds: secondsLeft(Number(ttl)) };
  }

  async resetFailures(key: string): Promise<void> {
    await this.run(() => this.client.del(this.key('fail', key)));
  }

  async addKnownAddress(userId: string, address: string): Promise<void> {
    await this.run(() => this.client.sadd(this.key('addr', userId), address));
  }

  async knownAddresses(userId: string): Promise<readonly string[]> {
    return this.run(() => this.client.smembers(this.key('addr', userId)));
  }

  async consumeOnce(key: string, ttlSeconds: number): Promise<boolean> {
    assertPositiveSeconds('ttlSeconds', ttlSeconds);
    const ttlMs = Math.ceil(ttlSeconds * 1000);
    const reply = await this.run(() => this.client.set(this.key('once', key), '1', 'PX', ttlMs, 'NX'));
    return reply === 'OK';
  }

  async credentials(userId: string): Promise<StoredCredential[]> {
    const [records, counters] = await this.run(() =>
      Promise.all([this.client.hgetall(this.userKey(userId, 'webauthn')), this.client.hgetall(this.userKey(userId, 'webauthn-counter'))]),
    );
    return Object.entries(records).map(([id, raw]) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = undefined;
      }
      if (!isStoredCredential(parsed)) throw new StoreUnavailableError(`stepguard: a stored passkey record for a user is corrupt (${this.where})`);
      const counter = counters[id] === undefined ? parsed.counter : Number(counters[id]);
      return cleanCredential({ ...parsed, counter });
    });
  }

  async addCredential(userId: string, credential: StoredCredential): Promise<void> {
    if (!isStoredCredential(credential)) throw new TypeError('stepguard: addCredential needs a valid StoredCredential');
    const record = JSON.stringify(cleanCredential(credential));
    await this.run(async () => {
      const replies = await this.client
        .multi()
        .hset(this.userKey(userId, 'webauthn'), credential.id, record)
        .hset(this.userKey(userId, 'webauthn-counter'), credential.id, String(credential.counter))
        .exec();
      const failed = replies?.find(([error]) => error);
      if (!replies || failed) throw failed?.[0] ?? new Error('transaction aborted');
    });
  }

  async advanceCounter(userId: string, credentialId: string, counter: number): Promise<boolean> {
    if (!Number.isSafeInteger(counter) || counter < 0) return false;
    const stored = await this.run(() => this.client.sgAdvanceCounter(this.userKey(userId, 'webauthn'), this.userKey(userId, 'webauthn-counter'), credentialId, String(counter)));
    return Number(stored) === 1;
  }

  async setRecoveryCodes(userId: string, hashes: readonly string[]): Promise<void> {
    const key = this.userKey(userId, 'recovery');
    // One MULTI: readers never see the old and new codes mixed, nor an empty set in between.
    await this.run(async () => {
      const tx = this.client.multi().del(key);
      if (hashes.length > 0) tx.sadd(key, ...hashes);
      const replies = await tx.exec();
      const failed = replies?.find(([error]) => error);
      if (!replies || failed) throw failed?.[0] ?? new Error('transaction aborted');
    });
  }

  async consumeRecoveryCode(userId: string, hash: string): Promise<boolean> {
    // SREM is atomic: of N concurrent calls with the same hash, one gets 1. The member is an HMAC of the code,
    // so the lookup's timing reveals nothing an attacker could steer towards a valid code.
    const removed = await this.run(() => this.client.srem(this.userKey(userId, 'recovery'), hash));
    return Number(removed) === 1;
  }

  async recoveryCodesLeft(userId: string): Promise<number> {
    return Number(await this.run(() => this.client.scard(this.userKey(userId, 'recovery'))));
  }

  async ping(): Promise<void> {
    await this.run(() => this.client.ping());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
        return;
      } catch {
        // fall through to a hard disconnect
      }
    }
    this.client.disconnect();
  }

  /** The client's connection state (`ready` when usable). */
  get status(): string {
    return this.client.status;
  }

  // ---------------------------------------------------------------------------------------------------------------

  private key(kind: string, id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  /** `sg:{u:<user>}:<kind>`: the hash tag keeps one user's keys in one Redis Cluster slot. */
  private userKey(userId: string, kind: string): string {
    return `${this.userPrefix}{u:${userId}}:${kind}`;
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('stepguard: the step-up store is closed');
    await this.whenReady();
    try {
      return await command();
    } catch (error) {
      throw new StoreUnavailableError(`stepguard: Redis at ${this.where} failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  /**
   * Ready: go. A connection attempt in flight (first connect, or a reconnect dialling now): wait for it, briefly.
   * Waiting for the next reconnect timer, or closed: fail now rather than hold the request.
   */
  private async whenReady(): Promise<void> {
    const status = this.client.status;
    if (status === 'ready') return;
    if (status !== 'wait' && status !== 'connecting' && status !== 'connect') {
      throw new StoreUnavailableError(`stepguard: Redis at ${this.where} is unavailable (${status})`);
    }
    if (status === 'wait') this.client.connect().catch(() => undefined);
    // One set of listeners per connection attempt, shared by every call waiting on it.
    this.readyWait ??= new Promise<void>((resolve, reject) => {
      const done = (error?: StoreUnavailableError) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('close', onClose);
        this.readyWait = undefined;
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => done();
      const onClose = () => done(new StoreUnavailableError(`stepguard: Redis at ${this.where} is unavailable (connection failed)`));
      const timer = setTimeout(
        () => done(new StoreUnavailableError(`stepguard: Redis at ${this.where} is unavailable (no connection within ${this.readyWaitMs} ms)`)),
        this.readyWaitMs,
      );
      this.client.on('ready', onReady);
      this.client.on('close', onClose);
    });
    return this.readyWait;
  }
}

function secondsLeft(pttlMs: number): number {
  return pttlMs > 0 ? Math.max(1, Math.ceil(pttlMs / 1000)) : 1;
}

/** host:port/db of a Redis URL, without credentials, for messages. */
function describe(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}${u.pathname && u.pathname !== '/' ? u.pathname : ''}`;
  } catch {
    return 'redis';
  }
}
