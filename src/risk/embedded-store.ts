/**
 * Risk state for one process, in memory and bounded: subjects live in partitions (users, addresses, sessions,
 * routes, flags), each an LRU map with a size cap, so a flood of distinct users, addresses or sessions evicts
 * the least recently used subjects instead of growing the heap; one partition cannot evict another's state
 * (a flood of fresh sessions never evicts a user's flag). Inside a subject every sorted set is capped by the
 * operation that writes it, and every entry expires at its TTL. The state does not survive a restart: use
 * Redis (STEPGUARD_REDIS_URL) for that and for several instances.
 */
import { KEY, unescapeTag, type FlagRecord, type RiskBatch, type RiskOp, type RiskOpResult, type RiskStore } from './store.js';
import { parseFlag } from './flag-record.js';

type Entry =
  | { kind: 'z'; members: Map<string, number>; expiresAt: number }
  | { kind: 's'; value: string; expiresAt: number }
  | { kind: 'h'; fields: Map<string, string>; expiresAt: number };

type SubjectState = Map<string, Entry>;

export interface EmbeddedRiskStoreOptions {
  /** Most subjects kept per partition (users, addresses, sessions, routes, flags). Default 20,000. */
  readonly maxSubjects?: number;
  readonly now?: () => number;
}

export class EmbeddedRiskStore implements RiskStore {
  private readonly partitions = new Map<string, Map<string, SubjectState>>();
  readonly maxSubjects: number;
  private readonly now: () => number;

  constructor(options: EmbeddedRiskStoreOptions = {}) {
    this.maxSubjects = options.maxSubjects ?? 20_000;
    this.now = options.now ?? Date.now;
  }

  /** Subjects held, all partitions together (for tests and `doctor`). */
  get size(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.size;
    return n;
  }

  async run(batches: readonly RiskBatch[]): Promise<RiskOpResult[][]> {
    return batches.map((b) => b.ops.map((op) => this.apply(b.subject, op)));
  }

  async listFlags(): Promise<FlagRecord[]> {
    const out: FlagRecord[] = [];
    for (const [subject] of this.partitions.get('flag') ?? []) {
      const raw = this.apply(subject, ['get', KEY.flag]);
      const record = parseFlag(typeof raw === 'string' ? raw : undefined);
      if (record) out.push(record);
    }
    return out.sort((a, b) => b.at - a.at);
  }

  async listVulnerableRoutes(): Promise<{ path: string; entries: string[] }[]> {
    const out: { path: string; entries: string[] }[] = [];
    for (const [subject] of this.partitions.get('r') ?? []) {
      const flat = this.apply(subject, ['hgetall', KEY.vulnerabilities]) as string[];
      const entries: string[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) entries.push(`${flat[i]}|${flat[i + 1]}`);
      if (entries.length > 0) out.push({ path: unescapeTag(subject.slice(2)), entries });
    }
    return out;
  }

  async close(): Promise<void> {
    this.partitions.clear();
  }

  private apply(subject: string, op: RiskOp): RiskOpResult {
    const now = this.now();
    const key = op[1];
    const state = this.subject(subject, key, op[0] !== 'count' && op[0] !== 'has' && op[0] !== 'get' && op[0] !== 'hgetall' && op[0] !== 'del');
    let entry = state?.get(key);
    if (entry && entry.expiresAt <= now) {
      state!.delete(key);
      entry = undefined;
    }
    switch (op[0]) {
      case 'count': {
        if (entry?.kind !== 'z') return 0;
        let n = 0;
        for (const score of entry.members.values()) if (score >= op[2]) n++;
        return n;
      }
      case 'has':
        return entry?.kind === 'z' && entry.members.has(op[2]) ? 1 : 0;
      case 'add': {
        const [, , member, score, ttlMs, cap] = op;
        const z = entry?.kind === 'z' ? entry : { kind: 'z' as const, members: new Map<string, number>(), expiresAt: 0 };
        z.members.delete(member);
        z.members.set(member, score);
        const size = z.members.size;
        for (const [m, s] of z.members) if (s < score - ttlMs) z.members.delete(m);
        // Insertion order is time order for our writers: the oldest go first.
        while (z.members.size > cap) z.members.delete(z.members.keys().next().value as string);
        z.expiresAt = now + ttlMs;
        state!.set(key, z);
        return size;
      }
      case 'get':
        return entry?.kind === 's' ? entry.value : '';
      case 'set':
        state!.set(key, { kind: 's', value: op[2], expiresAt: now + op[3] });
        return 1;
      case 'del':
        if (!state) return 0;
        return state.delete(key) ? 1 : 0;
      case 'hset':
      case 'hsetnx': {
        const h = entry?.kind === 'h' ? entry : { kind: 'h' as const, fields: new Map<string, string>(), expiresAt: 0 };
        if (op[0] === 'hset' || !h.fields.has(op[2])) h.fields.set(op[2], op[3]);
        h.expiresAt = now + op[4];
        state!.set(key, h);
        return 1;
      }
      case 'hgetall': {
        if (entry?.kind !== 'h') return [];
        const flat: string[] = [];
        for (const [f, v] of entry.fields) flat.push(f, v);
        return flat;
      }
    }
  }

  /** The subject's state, most recently used last; created (evicting the least recently used) when writing. */
  private subject(subject: string, key: string, create: boolean): SubjectState | undefined {
    const partitionName = key === KEY.flag ? 'flag' : subject.slice(0, 1);
    let partition = this.partitions.get(partitionName);
    if (!partition) {
      partition = new Map();
      this.partitions.set(partitionName, partition);
    }
    let state = partition.get(subject);
    if (state) {
      partition.delete(subject);
      partition.set(subject, state);
      return state;
    }
    if (!create) return undefined;
    state = new Map();
    partition.set(subject, state);
    if (partition.size > this.maxSubjects) partition.delete(partition.keys().next().value as string);
    return state;
  }
}
