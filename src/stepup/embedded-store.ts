/**
 * The zero-setup store: state lives in memory and is written to `<dir>/stepup-store.json` synchronously after every
 * mutation (temp file + fsync + rename, mode 0600), so an acknowledged write survives a restart or a crash.
 *
 * Atomicity: every check-and-set runs synchronously inside one call, so it cannot interleave with another call in
 * this process. The store is meant for ONE process; use `RedisStore` for several. A second process writing the same
 * file now and then (the `stepguard enroll` CLI while the app runs) is picked up: each call first checks whether the
 * file was replaced since this instance last read or wrote it, and reloads it if so.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { errorMessage, log } from '../log.js';
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

export const EMBEDDED_STORE_FILE = 'stepup-store.json';

interface Window {
  count: number;
  /** Epoch ms. */
  expiresAt: number;
}

interface AttemptWindow extends Window {
  failed: number;
}

interface State {
  factors: Map<string, EnrolledFactor>;
  steps: Map<string, number>;
  failures: Map<string, Window>;
  addresses: Map<string, string[]>;
  /** key → expiry, epoch ms. */
  once: Map<string, number>;
  /** Verification attempts per counter key (reserveAttempt): reserved (in flight or failed), and confirmed failures. */
  attempts: Map<string, AttemptWindow>;
  /** Counter key → end of its lockout, epoch ms. */
  locks: Map<string, number>;
  credentials: Map<string, StoredCredential[]>;
  /** user → recovery code hashes (hex). */
  recovery: Map<string, string[]>;
}

interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
}

export interface EmbeddedStoreOptions {
  /** Clock in epoch milliseconds (tests). */
  now?: () => number;
}

function emptyState(): State {
  return {
    factors: new Map(),
    steps: new Map(),
    failures: new Map(),
    addresses: new Map(),
    once: new Map(),
    attempts: new Map(),
    locks: new Map(),
    credentials: new Map(),
    recovery: new Map(),
  };
}

export class EmbeddedStore implements StepUpStore {
  readonly file: string;
  private readonly dir: string;
  private readonly now: () => number;
  private state: State = emptyState();
  private identity: FileIdentity | undefined;

  constructor(dir: string, options: EmbeddedStoreOptions = {}) {
    this.dir = path.resolve(dir);
    this.file = path.join(this.dir, EMBEDDED_STORE_FILE);
    this.now = options.now ?? Date.now;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StoreUnavailableError(`stepguard: cannot create the store directory ${this.dir}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    this.load(true);
  }

  async getFactor(userId: string): Promise<EnrolledFactor | undefined> {
    this.refresh();
    return this.state.factors.get(userId);
  }

  async setFactor(userId: string, factor: EnrolledFactor): Promise<void> {
    if (!isEnrolledFactor(factor)) throw new TypeError('stepguard: setFactor needs a valid EnrolledFactor');
    this.refresh();
    this.state.factors.set(userId, { method: factor.method, secretCiphertext: factor.secretCiphertext, createdAt: factor.createdAt });
    // A new secret starts a new code sequence: the last accepted time step belonged to the old one.
    this.state.steps.delete(userId);
    this.persist();
  }

  async deleteFactor(userId: string): Promise<void> {
    this.refresh();
    if (this.state.factors.delete(userId)) this.persist();
  }

  async acceptTimeStep(userId: string, timeStep: number): Promise<boolean> {
    if (!isValidTimeStep(timeStep)) return false;
    this.refresh();
    // Check and set in the same synchronous stretch: nothing else in this process runs in between.
    const last = this.state.steps.get(userId);
    if (last !== undefined && timeStep <= last) return false;
    this.state.steps.set(userId, timeStep);
    this.persist();
    return true;
  }

  async recordFailure(key: string, windowSeconds: number): Promise<{ count: number; retryAfterSeconds: number }> {
    assertPositiveSeconds('windowSeconds', windowSeconds);
    this.refresh();
    const now = this.now();
    let window = this.state.failures.get(key);
    if (window === undefined || window.expiresAt <= now) {
      window = { count: 0, expiresAt: now + Math.ceil(windowSeconds * 1000) };
      this.state.failures.set(key, window);
    }
    window.count += 1;
    this.persist();
    return { count: window.count, retryAfterSeconds: secondsLeft(window.expiresAt, now) };
  }

  async failures(key: string): Promise<{ count: number; retryAfterSeconds: number }> {
    this.refresh();
    const now = this.now();
    const window = this.state.failures.get(key);
    if (window === undefined || window.expiresAt <= now) return { count: 0, retryAfterSeconds: 0 };
    return { count: window.count, retryAfterSeconds: secondsLeft(window.expiresAt, now) };
  }

  async resetFailures(key: string): Promise<void> {
    this.refresh();
    if (this.state.failures.delete(key)) this.persist();
  }

  async reserveAttempt(counters: readonly AttemptCounter[], windowSeconds: number): Promise<AttemptReservation> {
    assertPositiveSeconds('windowSeconds', windowSeconds);
    this.refresh();
    const now = this.now();
    // Check every counter, then count on every counter, in one synchronous stretch.
    let waitUntil = 0;
    for (const c of counters) {
      const lock = this.state.locks.get(c.key);
      if (lock !== undefined && lock > now) waitUntil = Math.max(waitUntil, lock);
    }
    if (waitUntil === 0) {
      for (const c of counters) {
        const window = this.state.attempts.get(c.key);
        if (window !== undefined && window.expiresAt > now && window.count >= c.limit) waitUntil = Math.max(waitUntil, window.expiresAt);
      }
    }
    if (waitUntil > 0) return { allowed: false, retryAfterSeconds: secondsLeft(waitUntil, now) };
    for (const c of counters) {
      const window = this.state.attempts.get(c.key);
      if (window === undefined || window.expiresAt <= now) this.state.attempts.set(c.key, { count: 1, failed: 0, expiresAt: now + Math.ceil(windowSeconds * 1000) });
      else window.count += 1;
    }
    this.persist();
    return { allowed: true };
  }

  async settleAttempt(counters: readonly AttemptCounter[], windowSeconds: number, outcome: 'failed' | 'released'): Promise<{ lockedForSeconds: number | undefined }> {
    assertPositiveSeconds('windowSeconds', windowSeconds);
    this.refresh();
    const now = this.now();
    let lockedUntil = 0;
    for (const c of counters) {
      const window = this.state.attempts.get(c.key);
      const live = window !== undefined && window.expiresAt > now;
      if (outcome === 'released') {
        if (live && window.count > 0) window.count -= 1;
        continue;
      }
      if (live) window.failed += 1;
      const lock = this.state.locks.get(c.key);
      if (lock !== undefined && lock > now) lockedUntil = Math.max(lockedUntil, lock);
      else if (live && window.failed >= c.limit) {
        const until = now + Math.ceil(windowSeconds * 1000);
        this.state.locks.set(c.key, until);
        lockedUntil = Math.max(lockedUntil, until);
      }
    }
    this.persist();
    return { lockedForSeconds: lockedUntil > 0 ? secondsLeft(lockedUntil, now) : undefined };
  }

  async addKnownAddress(userId: string, address: string): Promise<void> {
    this.refresh();
    const list = this.state.addresses.get(userId) ?? [];
    if (list.includes(address)) return;
    list.push(address);
    this.state.addresses.set(userId, list);
    this.persist();
  }

  async knownAddresses(userId: string): Promise<readonly string[]> {
    this.refresh();
    return [...(this.state.addresses.get(userId) ?? [])];
  }

  async consumeOnce(key: string, ttlSeconds: number): Promise<boolean> {
    assertPositiveSeconds('ttlSeconds', ttlSeconds);
    this.refresh();
    const now = this.now();
    const expiresAt = this.state.once.get(key);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.state.once.set(key, now + Math.ceil(ttlSeconds * 1000));
    this.persist();
    return true;
  }

  async credentials(userId: string): Promise<StoredCredential[]> {
    this.refresh();
    return (this.state.credentials.get(userId) ?? []).map(cleanCredential);
  }

  async addCredential(userId: string, credential: StoredCredential): Promise<void> {
    if (!isStoredCredential(credential)) throw new TypeError('stepguard: addCredential needs a valid StoredCredential');
    this.refresh();
    const list = (this.state.credentials.get(userId) ?? []).filter((c) => c.id !== credential.id);
    list.push(cleanCredential(credential));
    this.state.credentials.set(userId, list);
    this.persist();
  }

  async advanceCounter(userId: string, credentialId: string, counter: number): Promise<boolean> {
    if (!Number.isSafeInteger(counter) || counter < 0) return false;
    this.refresh();
    // Check and set in one synchronous stretch, like acceptTimeStep.
    const list = this.state.credentials.get(userId) ?? [];
    const index = list.findIndex((c) => c.id === credentialId);
    const current = list[index];
    if (current === undefined) return false;
    if (!(counter > current.counter || (counter === 0 && current.counter === 0))) return false;
    list[index] = { ...current, counter };
    this.persist();
    return true;
  }

  async setRecoveryCodes(userId: string, hashes: readonly string[]): Promise<void> {
    this.refresh();
    if (hashes.length === 0) this.state.recovery.delete(userId);
    else this.state.recovery.set(userId, [...hashes]);
    this.persist();
  }

  async consumeRecoveryCode(userId: string, hash: string): Promise<boolean> {
    this.refresh();
    const list = this.state.recovery.get(userId);
    if (list === undefined) return false;
    const given = Buffer.from(hash);
    // Every stored hash is compared, in constant time each, so timing says nothing about which one matched.
    let found = -1;
    list.forEach((h, i) => {
      const stored = Buffer.from(h);
      if (stored.length === given.length && crypto.timingSafeEqual(stored, given)) found = i;
    });
    if (found === -1) return false;
    list.splice(found, 1);
    this.persist();
    return true;
  }

  async recoveryCodesLeft(userId: string): Promise<number> {
    this.refresh();
    return this.state.recovery.get(userId)?.length ?? 0;
  }

  async ping(): Promise<void> {
    try {
      fs.accessSync(this.dir, fs.constants.W_OK);
    } catch (error) {
      throw new StoreUnavailableError(`stepguard: the store directory ${this.dir} is not writable: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  async close(): Promise<void> {
    // Every acknowledged mutation is already on disk; nothing is buffered.
  }

  // ---------------------------------------------------------------------------------------------------------------

  /** Reloads the file when another process replaced it since we last read or wrote it. */
  private refresh(): void {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.file);
    } catch {
      return; // missing (not written yet, or removed): keep what we have in memory
    }
    const id = this.identity;
    if (id !== undefined && id.ino === stat.ino && id.size === stat.size && id.mtimeMs === stat.mtimeMs) return;
    this.load(false);
  }

  private load(initial: boolean): void {
    let text: string;
    let stat: fs.Stats;
    try {
      const fd = fs.openSync(this.file, 'r');
      try {
        stat = fs.fstatSync(fd);
        text = fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        if (initial) this.state = emptyState();
        return;
      }
      throw new StoreUnavailableError(`stepguard: cannot read ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
    const parsed = parseState(text);
    if (parsed === undefined) {
      const aside = `${this.file}.corrupt-${Date.now()}`;
      try {
        fs.renameSync(this.file, aside);
      } catch {
        // renaming failed: the next write replaces the bad file anyway
      }
      log.warn(
        `step-up store ${this.file} is unreadable; moved it to ${path.basename(aside)} and ` +
          (initial ? 'started empty (users must enroll again)' : 'kept the state held in memory'),
      );
      if (initial) this.state = emptyState();
      else this.persist();
      return;
    }
    this.state = parsed;
    this.identity = { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs };
    this.prune(this.now());
  }

  private prune(now: number): void {
    for (const [key, window] of this.state.failures) if (window.expiresAt <= now) this.state.failures.delete(key);
    for (const [key, expiresAt] of this.state.once) if (expiresAt <= now) this.state.once.delete(key);
    for (const [key, window] of this.state.attempts) if (window.expiresAt <= now) this.state.attempts.delete(key);
    for (const [key, until] of this.state.locks) if (until <= now) this.state.locks.delete(key);
  }

  /** Writes the whole state: temp file (0600) + fsync + rename, synchronously. */
  private persist(): void {
    this.prune(this.now());
    const text = serializeState(this.state);
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    try {
      const fd = fs.openSync(tmp, 'wx', 0o600);
      try {
        fs.writeFileSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
      const stat = fs.statSync(this.file);
      this.identity = { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs };
    } catch (error) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // not created
      }
      // The in-memory state keeps the change (so a replayed code stays refused in this process) and the next
      // successful write persists it; the caller is told the store could not make it durable.
      throw new StoreUnavailableError(`stepguard: cannot write ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
  }
}

function secondsLeft(expiresAt: number, now: number): number {
  return Math.max(1, Math.ceil((expiresAt - now) / 1000));
}

// --- file format -------------------------------------------------------------------------------------------------

interface FileFormat {
  version: 1;
  factors: [string, EnrolledFactor][];
  steps: [string, number][];
  failures: [string, Window][];
  addresses: [string, string[]][];
  once: [string, number][];
  /** Optional: files written before attempt counters existed lack them. */
  attempts?: [string, AttemptWindow][];
  locks?: [string, number][];
  credentials?: [string, StoredCredential[]][];
  recovery?: [string, string[]][];
}

function serializeState(state: State): string {
  const file: FileFormat = {
    version: 1,
    factors: [...state.factors],
    steps: [...state.steps],
    failures: [...state.failures],
    addresses: [...state.addresses],
    once: [...state.once],
    attempts: [...state.attempts],
    locks: [...state.locks],
    credentials: [...state.credentials],
    recovery: [...state.recovery],
  };
  return JSON.stringify(file) + '\n';
}

/** Maps are serialized as entry lists (so a user id like `__proto__` is just data). Undefined when invalid. */
function parseState(text: string): State | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || (raw as { version?: unknown }).version !== 1) return undefined;
  const file = raw as Record<string, unknown>;
  const state = emptyState();
  const ok =
    entries(file.factors, isEnrolledFactor, state.factors) &&
    entries(file.steps, (v): v is number => isValidTimeStep(v as number), state.steps) &&
    entries(file.failures, isWindow, state.failures) &&
    entries(file.addresses, isStringList, state.addresses) &&
    entries(file.once, isFiniteNumber, state.once) &&
    entries(file.attempts ?? [], isAttemptWindow, state.attempts) &&
    entries(file.locks ?? [], isFiniteNumber, state.locks) &&
    // Optional: files written before passkeys and recovery codes existed have neither.
    (file.credentials === undefined || entries(file.credentials, isCredentialList, state.credentials)) &&
    (file.recovery === undefined || entries(file.recovery, isStringList, state.recovery));
  return ok ? state : undefined;
}

function entries<V>(list: unknown, check: (v: unknown) => v is V, into: Map<string, V>): boolean {
  if (!Array.isArray(list)) return false;
  for (const entry of list) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !check(entry[1])) return false;
    into.set(entry[0], entry[1]);
  }
  return true;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isWindow(v: unknown): v is Window {
  if (typeof v !== 'object' || v === null) return false;
  const w = v as Record<string, unknown>;
  return typeof w.count === 'number' && Number.isSafeInteger(w.count) && w.count >= 0 && isFiniteNumber(w.expiresAt);
}

function isCredentialList(v: unknown): v is StoredCredential[] {
  return Array.isArray(v) && v.every(isStoredCredential);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function isAttemptWindow(v: unknown): v is AttemptWindow {
  const failed = (v as { failed?: unknown } | null)?.failed;
  return isWindow(v) && typeof failed === 'number' && Number.isSafeInteger(failed) && failed >= 0;
}
