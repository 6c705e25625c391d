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
 * `timeStepTtlSeconds`), `fail:<key>` (counter with the window as TTL), `addr:<user>` (SET), `once:<key>`, and the
 * verification attempt counters `{u:<user>}:att|fail|lock` and `{a:<address>}:att|fail|lock`.
 *
 * Redis Cluster (`STEPGUARD_REDIS_CLUSTER`): every script touches the keys of one hash slot only. A counter and its
 * lock share a hash tag (`{u:alice}`, `{a:10.0.0.1}`); a user's factor, step and address set are named
 * `{u:<user>}:factor` etc. so they live on the user's slot too. The user and the address counters are on different
 * slots, so on a cluster they are reserved one script each (see `reserveAttempt`): each counter's check-and-count
 * stays atomic, so each bound stays exact.
 * Per-user passkey and recovery-code keys carry the user's hash tag on every deployment:
 * `{u:<user>}:webauthn` (HASH credential id → JSON record), `{u:<user>}:webauthn-counter` (HASH id → counter), `{u:<user>}:recovery` (SET of code hashes).
 */
import { Cluster, Redis } from 'ioredis';
import { errorMessage, log, warnOnce } from '../log.js';
import {
  assertPositiveSeconds,
  isEnrolledFactor,
  isValidTimeStep,
  isStoredCredential,
  cleanCredential,
  StoreUnavailableError,
  type AttemptCounter,
  type AttemptReservation,
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

// Attempt limits. KEYS = att1, fail1, lock1, att2, … — per counter: attempts reserved in the window (in flight or
// failed), confirmed failures, the lockout; the three share a hash tag, so one slot. ARGV[1] = window ms,
// ARGV[1 + i] = limit of counter i. Refuses ({ 0, ms left }) when a counter is locked or full; else INCR every
// counter (window from the first attempt) and allow ({ 1, 0 }). Check and count are one step.
const RESERVE_ATTEMPT_LUA = `
local n = #KEYS / 3
local wait = 0
for i = 1, n do
  local t = redis.call('PTTL', KEYS[3 * i])
  if t > wait then wait = t end
end
if wait == 0 then
  for i = 1, n do
    local c = tonumber(redis.call('GET', KEYS[3 * i - 2]) or '0')
    if c >= tonumber(ARGV[i + 1]) then
      local t = redis.call('PTTL', KEYS[3 * i - 2])
      if t < 1 then t = 1 end
      if t > wait then wait = t end
    end
  end
end
if wait > 0 then return { 0, wait } end
for i = 1, n do
  local att = KEYS[3 * i - 2]
  if redis.call('INCR', att) == 1 or redis.call('PTTL', att) < 0 then redis.call('PEXPIRE', att, ARGV[1]) end
end
return { 1, 0 }
`;

// Same KEYS; ARGV[1] = window ms, ARGV[2] = 'failed' | 'released', ARGV[2 + i] = limit of counter i.
// released: one DECR of the reservations (never a reset: parallel failures stay counted). failed: the reservation
// stays, one more confirmed failure (same window as the reservations); when the failures reach the limit, a lock
// lasting the whole window from now (unless one runs). Returns the longest lock's ms left (0: none).
const SETTLE_ATTEMPT_LUA = `
local n = #KEYS / 3
local wait = 0
for i = 1, n do
  local att = KEYS[3 * i - 2]
  local fail = KEYS[3 * i - 1]
  local lock = KEYS[3 * i]
  if ARGV[2] == 'released' then
    if tonumber(redis.call('GET', att) or '0') > 0 then redis.call('DECR', att) end
  else
    local f = redis.call('INCR', fail)
    if f == 1 or redis.call('PTTL', fail) < 0 then
      local t = redis.call('PTTL', att)
      if t < 1 then t = tonumber(ARGV[1]) end
      redis.call('PEXPIRE', fail, t)
    end
    local t = redis.call('PTTL', lock)
    if t > 0 then
      if t > wait then wait = t end
    elseif f >= tonumber(ARGV[2 + i]) then
      redis.call('SET', lock, '1', 'PX', ARGV[1])
      if tonumber(ARGV[1]) > wait then wait = tonumber(ARGV[1]) end
    end
  end
end
return wait
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
  sgReserveAttempt(...args: string[]): Promise<[number, number]>;
  sgSettleAttempt(...args: string[]): Promise<number>;
  sgAdvanceCounter(records: string, counters: string, id: string, counter: string): Promise<number>;
  sgAcceptStep(key: string, step: string, ttlMs: string): Promise<number>;
  sgRecordFailure(key: string, windowMs: string): Promise<[number, number]>;
  sgFailures(key: string): Promise<[number, number]>;
}

/** A Redis Cluster to connect to: seed nodes (any reachable node of the cluster is enough to discover the rest). */
export interface RedisClusterTarget {
  readonly cluster: ReadonlyArray<{ host: string; port: number }>;
  readonly username?: string;
  readonly password?: string;
}

export class RedisStore implements StepUpStore {
  private readonly client: (Redis | Cluster) & ScriptCommands;
  private readonly prefix: string;
  private readonly readyWaitMs: number;
  private readonly timeStepTtlMs: number;
  private readonly where: string;
  /** On a cluster every attempt counter lives in its own slot, so multi-counter scripts run per counter. */
  readonly isCluster: boolean;
  private closed = false;
  private readyWait: Promise<void> | undefined;

  /** `target`: a `redis://` URL, or a cluster (see `parseClusterNodes`). */
  constructor(target: string | RedisClusterTarget, options: RedisStoreOptions = {}) {
    this.prefix = options.keyPrefix ?? 'stepguard:';
    this.readyWaitMs = options.readyWaitMs ?? 1000;
    this.timeStepTtlMs = Math.ceil((options.timeStepTtlSeconds ?? 600) * 1000);
    this.isCluster = typeof target !== 'string';
    this.where = typeof target === 'string' ? describe(target) : `cluster ${target.cluster.map((n) => `${n.host}:${n.port}`).join(',')}`;
    const maxDelay = options.maxReconnectDelayMs ?? 2000;
    // Never give up: back off 100, 200, 400… ms up to the cap, so the store comes back by itself.
    const retry = (times: number) => Math.min(maxDelay, 50 * 2 ** Math.min(times, 10));
    const common = {
      connectTimeout: options.connectTimeoutMs ?? 1000,
      commandTimeout: options.commandTimeoutMs ?? 1500,
      maxRetriesPerRequest: 1,
      connectionName: 'stepguard',
      disableClientInfo: true,
    };
    const client =
      typeof target === 'string'
        ? new Redis(target, { ...common, enableOfflineQueue: false, retryStrategy: retry })
        : new Cluster(
            target.cluster.map((n) => ({ host: n.host, port: n.port })),
            {
              enableOfflineQueue: false,
              clusterRetryStrategy: retry,
              // A failover moves slots: follow MOVED at once and refresh the slot map often, so the store recovers
              // as soon as a replica is promoted; commands to a master that is down fail (the caller fails closed).
              retryDelayOnFailover: 100,
              retryDelayOnClusterDown: 100,
              slotsRefreshInterval: 1000,
              slotsRefreshTimeout: options.connectTimeoutMs ?? 1000,
              redisOptions: { ...common, ...(target.username ? { username: target.username } : {}), ...(target.password ? { password: target.password } : {}) },
            },
          );
    client.defineCommand('sgAcceptStep', { numberOfKeys: 1, lua: ACCEPT_STEP_LUA });
    client.defineCommand('sgRecordFailure', { numberOfKeys: 1, lua: RECORD_FAILURE_LUA });
    client.defineCommand('sgAdvanceCounter', { numberOfKeys: 2, lua: ADVANCE_COUNTER_LUA });
    client.defineCommand('sgFailures', { numberOfKeys: 1, lua: FAILURES_LUA, readOnly: true });
    // Variable key count: the first argument is the number of keys.
    client.defineCommand('sgReserveAttempt', { lua: RESERVE_ATTEMPT_LUA });
    client.defineCommand('sgSettleAttempt', { lua: SETTLE_ATTEMPT_LUA });
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
    this.client = client as (Redis | Cluster) & ScriptCommands;
  }

  async getFactor(userId: string): Promise<EnrolledFactor | undefined> {
    const raw = await this.run(() => this.client.get(this.userKey('factor', userId)));
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
    // A new secret starts a new code sequence: the last accepted time step belonged to the old one (both keys are
    // on the user's slot on a cluster, so one MULTI).
    await this.run(async () => {
      const results = await this.client.multi().set(this.userKey('factor', userId), value).del(this.userKey('step', userId)).exec();
      const failed = results?.find(([error]) => error);
      if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted');
    });
  }

  async deleteFactor(userId: string): Promise<void> {
    await this.run(() => this.client.del(this.userKey('factor', userId)));
  }

  async acceptTimeStep(userId: string, timeStep: number): Promise<boolean> {
    if (!isValidTimeStep(timeStep)) return false;
    const accepted = await this.run(() => this.client.sgAcceptStep(this.userKey('step', userId), String(timeStep), String(this.timeStepTtlMs)));
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

  async reserveAttempt(counters: readonly AttemptCounter[], windowSeconds: number): Promise<AttemptReservation> {
    assertPositiveSeconds('windowSeconds', windowSeconds);
    const windowMs = String(Math.ceil(windowSeconds * 1000));
    if (!this.isCluster || counters.length <= 1) {
      const [allowed, wait] = await this.run(() => this.client.sgReserveAttempt(...this.attemptArgs(counters, [windowMs])));
      return Number(allowed) === 1 ? { allowed: true } : { allowed: false, retryAfterSeconds: secondsLeft(Number(wait)) };
    }
    // Cluster: one slot per counter, one atomic script per counter, in order. Each counter's bound stays exact (its
    // check-and-count is atomic); a code is checked only when every counter allowed it; a refusal gives back what the
    // earlier counters took, which can only make parallel requests see a higher count meanwhile, never a lower one.
    const taken: AttemptCounter[] = [];
    for (const counter of counters) {
      let reply: [number, number];
      try {
        reply = await this.run(() => this.client.sgReserveAttempt(...this.attemptArgs([counter], [windowMs])));
      } catch (error) {
        await this.settleAttempt(taken, windowSeconds, 'released').catch(() => undefined);
        throw error;
      }
      if (Number(reply[0]) !== 1) {
        await this.settleAttempt(taken, windowSeconds, 'released').catch(() => undefined);
        return { allowed: false, retryAfterSeconds: secondsLeft(Number(reply[1])) };
      }
      taken.push(counter);
    }
    return { allowed: true };
  }

  async settleAttempt(counters: readonly AttemptCounter[], windowSeconds: number, outcome: 'failed' | 'released'): Promise<{ lockedForSeconds: number | undefined }> {
    assertPositiveSeconds('windowSeconds', windowSeconds);
    if (counters.length === 0) return { lockedForSeconds: undefined };
    const windowMs = String(Math.ceil(windowSeconds * 1000));
    const groups = this.isCluster ? counters.map((c) => [c]) : [counters];
    const waits = await Promise.all(
      groups.map((group) => this.run(() => this.client.sgSettleAttempt(...this.attemptArgs(group, [windowMs, outcome])))),
    );
    const wait = Math.max(0, ...waits.map(Number));
    return { lockedForSeconds: wait > 0 ? secondsLeft(wait) : undefined };
  }

  /** numkeys, att/lock keys per counter, then `head` and each counter's limit. */
  private attemptArgs(counters: readonly AttemptCounter[], head: string[]): string[] {
    const keys: string[] = [];
    for (const c of counters) keys.push(this.attemptKey(c.key, 'att'), this.attemptKey(c.key, 'fail'), this.attemptKey(c.key, 'lock'));
    return [String(keys.length), ...keys, ...head, ...counters.map((c) => String(c.limit))];
  }

  /** `stepguard:{u:alice}:att` — the braces are the Redis Cluster hash tag: a counter and its lock share a slot. */
  private attemptKey(key: string, kind: 'att' | 'fail' | 'lock'): string {
    return `${this.prefix}{${key}}:${kind}`;
  }

  async addKnownAddress(userId: string, address: string): Promise<void> {
    await this.run(() => this.client.sadd(this.userKey('addr', userId), address));
  }

  async knownAddresses(userId: string): Promise<readonly string[]> {
    return this.run(() => this.client.smembers(this.userKey('addr', userId)));
  }

  async consumeOnce(key: string, ttlSeconds: number): Promise<boolean> {
    assertPositiveSeconds('ttlSeconds', ttlSeconds);
    const ttlMs = Math.ceil(ttlSeconds * 1000);
    const reply = await this.run(() => this.client.set(this.key('once', key), '1', 'PX', ttlMs, 'NX'));
    return reply === 'OK';
  }

  async credentials(userId: string): Promise<StoredCredential[]> {
    const [records, counters] = await this.run(() =>
      Promise.all([this.client.hgetall(this.taggedKey(userId, 'webauthn')), this.client.hgetall(this.taggedKey(userId, 'webauthn-counter'))]),
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
        .hset(this.taggedKey(userId, 'webauthn'), credential.id, record)
        .hset(this.taggedKey(userId, 'webauthn-counter'), credential.id, String(credential.counter))
        .exec();
      const failed = replies?.find(([error]) => error);
      if (!replies || failed) throw failed?.[0] ?? new Error('transaction aborted');
    });
  }

  async advanceCounter(userId: string, credentialId: string, counter: number): Promise<boolean> {
    if (!Number.isSafeInteger(counter) || counter < 0) return false;
    const stored = await this.run(() => this.client.sgAdvanceCounter(this.taggedKey(userId, 'webauthn'), this.taggedKey(userId, 'webauthn-counter'), credentialId, String(counter)));
    return Number(stored) === 1;
  }

  async setRecoveryCodes(userId: string, hashes: readonly string[]): Promise<void> {
    const key = this.taggedKey(userId, 'recovery');
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
    const removed = await this.run(() => this.client.srem(this.taggedKey(userId, 'recovery'), hash));
    return Number(removed) === 1;
  }

  async recoveryCodesLeft(userId: string): Promise<number> {
    return Number(await this.run(() => this.client.scard(this.taggedKey(userId, 'recovery'))));
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

  /**
   * A user's own records. On a cluster they carry the user's hash tag, like the user's attempt counter, so all of a
   * user's state sits on one slot (one master): a failover of that master affects that user's step-ups only. A
   * single Redis keeps the names it always had, so existing enrollments stay where they are.
   */
  private userKey(kind: 'factor' | 'step' | 'addr', userId: string): string {
    return this.isCluster ? `${this.prefix}{u:${userId}}:${kind}` : this.key(kind, userId);
  }

  /** `<prefix>{u:<user>}:<kind>` on every deployment (records newer than the cluster support): one user's keys share a slot. */
  private taggedKey(userId: string, kind: string): string {
    return `${this.prefix}{u:${userId}}:${kind}`;
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
