/**
 * State behind the risk signals. Every piece of state belongs to ONE subject — a user (`u:<id>`), a client
 * address (`a:<addr>`), a session (`s:<binding>`) or a URL path (`r:<path>`) — and one batch of operations
 * touches one subject only, so on Redis each batch is one Lua script on one hash slot (`sg:{u:alice}:…`, also
 * on Redis Cluster) and several batches go out as one pipeline: one round trip.
 *
 * The operations are a small fixed vocabulary over sorted sets (time-stamped events), strings and hashes.
 * Every write carries a TTL; nothing lives forever.
 */

export type RiskOp =
  /** Members of sorted set `key` with score ≥ sinceMs → number. */
  | readonly ['count', string, number]
  /** 1 when `member` is in sorted set `key`, else 0. */
  | readonly ['has', string, string]
  /** Adds `member` with score `nowMs`, drops members older than `ttlMs`, keeps at most `cap` (newest), key TTL `ttlMs` → size before trimming. */
  | readonly ['add', string, string, number, number, number]
  /** String value, '' when absent. */
  | readonly ['get', string]
  | readonly ['set', string, string, number]
  | readonly ['del', string]
  /** Sets one hash field; key TTL `ttlMs`. */
  | readonly ['hset', string, string, string, number]
  /** Sets one hash field only if absent; key TTL `ttlMs`. */
  | readonly ['hsetnx', string, string, string, number]
  /** Flat [field, value, field, value, …]. */
  | readonly ['hgetall', string];

export type RiskOpResult = number | string | string[];

export interface RiskBatch {
  /** `u:alice`, `a:203.0.113.9`, `s:<binding>`, `r:/transfer`. */
  readonly subject: string;
  readonly ops: readonly RiskOp[];
}

export interface FlagRecord {
  readonly user: string;
  readonly reason: string;
  readonly rule: string;
  /** Epoch ms. */
  readonly at: number;
  readonly signals: readonly string[];
}

export interface RiskStore {
  /** Runs every batch (each atomically) in one round trip; results per batch, per op. Throws StoreUnavailableError. */
  run(batches: readonly RiskBatch[]): Promise<RiskOpResult[][]>;
  /** Every flagged account (an administrative listing, not for the request path). */
  listFlags(): Promise<FlagRecord[]>;
  /** Every URL path with a recorded vulnerability (administrative). */
  listVulnerableRoutes(): Promise<{ path: string; entries: string[] }[]>;
  close(): Promise<void>;
}

/** Keys inside a subject. */
export const KEY = {
  flag: 'flag',
  devices: 'dev',
  addresses: (windowSeconds: number) => `addr:${windowSeconds}`,
  frequency: (ruleId: string, windowSeconds: number) => `freq:${ruleId}:${windowSeconds}`,
  attacks: 'atk',
  loginFailures: 'lf',
  /** Per account: the addresses failures came from; per address: the accounts they named. */
  loginDistinct: 'lfd',
  vulnerabilities: 'vuln',
} as const;

/**
 * The subject part of a key: `u:alice`. Braces and `%` are escaped so an id can never end the Redis hash tag
 * early or forge another subject; very long ids are hashed.
 */
export function subjectTag(kind: 'u' | 'a' | 's' | 'r', id: string): string {
  const clean = id.length > 256 ? `#${simpleHash(id)}` : id.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
  return `${kind}:${clean}`;
}

export function unescapeTag(id: string): string {
  return id.replace(/%(25|7b|7d)/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function simpleHash(s: string): string {
  // FNV-1a 64 in two halves; collisions only merge two ids' counters, never leak data.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    h1 = Math.imul(h1 ^ s.charCodeAt(i), 16777619) >>> 0;
    h2 = Math.imul(h2 ^ s.charCodeAt(i), 2246822519) >>> 0;
  }
  return h1.toString(16) + h2.toString(16);
}
