/**
 * Risk state on Redis (or Redis Cluster): one Lua script per subject batch, every key of a batch under the
 * subject's hash tag (`sg:{u:alice}:dev`), batches pipelined — one round trip per request. Connection
 * handling matches the step-up store: no offline queue, bounded command time, failures surface as
 * StoreUnavailableError so the caller fails closed.
 */
import { Redis } from 'ioredis';
import { errorMessage, warnOnce } from '../log.js';
import { StoreUnavailableError } from '../stepup/store.js';
import { parseFlag } from './flag-record.js';
import { KEY, unescapeTag, type FlagRecord, type RiskBatch, type RiskOpResult, type RiskStore } from './store.js';

// KEYS: the batch's keys; ARGV: ops as [name, keyIndex, args…]. All keys share one hash tag (one subject).
const BATCH_LUA = `
local out = {}
local i = 1
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  local k = KEYS[tonumber(ARGV[i + 1])]
  if op == 'count' then
    out[#out + 1] = redis.call('ZCOUNT', k, ARGV[i + 2], '+inf')
    i = i + 3
  elseif op == 'has' then
    out[#out + 1] = redis.call('ZSCORE', k, ARGV[i + 2]) and 1 or 0
    i = i + 3
  elseif op == 'add' then
    local score = tonumber(ARGV[i + 3])
    local ttl = tonumber(ARGV[i + 4])
    local cap = tonumber(ARGV[i + 5])
    redis.call('ZADD', k, score, ARGV[i + 2])
    redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. tostring(score - ttl))
    local card = redis.call('ZCARD', k)
    if card > cap then redis.call('ZREMRANGEBYRANK', k, 0, card - cap - 1) end
    redis.call('PEXPIRE', k, ttl)
    out[#out + 1] = card
    i = i + 6
  elseif op == 'get' then
    out[#out + 1] = redis.call('GET', k) or ''
    i = i + 2
  elseif op == 'set' then
    redis.call('SET', k, ARGV[i + 2], 'PX', ARGV[i + 3])
    out[#out + 1] = 1
    i = i + 4
  elseif op == 'del' then
    out[#out + 1] = redis.call('DEL', k)
    i = i + 2
  elseif op == 'hset' then
    redis.call('HSET', k, ARGV[i + 2], ARGV[i + 3])
    redis.call('PEXPIRE', k, ARGV[i + 4])
    out[#out + 1] = 1
    i = i + 5
  elseif op == 'hsetnx' then
    redis.call('HSETNX', k, ARGV[i + 2], ARGV[i + 3])
    redis.call('PEXPIRE', k, ARGV[i + 4])
    out[#out + 1] = 1
    i = i + 5
  elseif op == 'hgetall' then
    out[#out + 1] = redis.call('HGETALL', k)
    i = i + 2
  else
    return redis.error_reply('unknown op ' .. tostring(op))
  end
end
return out
`;

interface ScriptCommands {
  sgRiskBatch(numKeys: number, ...keysAndArgs: string[]): Promise<RiskOpResult[]>;
}

function failed(error: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`stepguard: the risk store (Redis) failed: ${errorMessage(error)}`, { cause: error });
}

function normalise(values: readonly unknown[]): RiskOpResult[] {
  return values.map((v) => (Array.isArray(v) ? v.map(String) : typeof v === 'number' ? v : String(v)));
}

export class RedisRiskStore implements RiskStore {
  private readonly client: Redis & ScriptCommands;
  private closed = false;

  constructor(
    url: string,
    private readonly prefix = 'sg:',
  ) {
    const client = new Redis(url, {
      enableOfflineQueue: false,
      connectTimeout: 1000,
      commandTimeout: 1500,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(2000, 50 * 2 ** Math.min(times, 10)),
      connectionName: 'stepguard-risk',
      disableClientInfo: true,
      lazyConnect: false,
    });
    client.defineCommand('sgRiskBatch', { lua: BATCH_LUA });
    client.on('error', (error: Error) => {
      if (!this.closed) warnOnce('risk-store:redis', `risk store: Redis is unavailable (${errorMessage(error)}); operations that need a risk signal fail closed until it is back`);
    });
    this.client = client as Redis & ScriptCommands;
  }

  /** The full Redis key of `key` in `subject`: `sg:{u:alice}:dev`. */
  keyOf(subject: string, key: string): string {
    return `${this.prefix}{${subject}}:${key}`;
  }

  async run(batches: readonly RiskBatch[]): Promise<RiskOpResult[][]> {
    if (batches.length === 0) return [];
    await this.ready();
    // One subject (the common case: a write after the call, the address facts of an anonymous request) is one
    // script call; a pipeline costs several times that in client CPU and is used only for several subjects.
    if (batches.length === 1) {
      try {
        return [normalise(await this.client.sgRiskBatch(...this.scriptArgs(batches[0]!)))];
      } catch (error) {
        throw failed(error);
      }
    }
    const pipeline = this.client.pipeline();
    for (const batch of batches) (pipeline as unknown as ScriptCommands).sgRiskBatch(...this.scriptArgs(batch));
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipeline.exec();
    } catch (error) {
      throw failed(error);
    }
    if (!replies) throw new StoreUnavailableError('stepguard: the risk store (Redis) returned no reply');
    return replies.map(([error, value]) => {
      if (error) throw failed(error);
      return normalise(value as unknown[]);
    });
  }

  /** numkeys, keys, then ops as [name, keyIndex, args…] (see BATCH_LUA). */
  private scriptArgs(batch: RiskBatch): [number, ...string[]] {
    const keys: string[] = [];
    const index = new Map<string, number>();
    const argv: string[] = [];
    for (const [name, key, ...args] of batch.ops) {
      let k = index.get(key);
      if (k === undefined) {
        keys.push(this.keyOf(batch.subject, key));
        k = keys.length;
        index.set(key, k);
      }
      argv.push(name, String(k));
      for (const arg of args) argv.push(String(arg));
    }
    return [keys.length, ...keys, ...argv];
  }

  async listFlags(): Promise<FlagRecord[]> {
    const out: FlagRecord[] = [];
    for (const key of await this.scan(`${this.prefix}{u:*}:${KEY.flag}`)) {
      const raw = await this.client.get(key).catch(() => null);
      const record = parseFlag(raw);
      if (record) out.push(record);
    }
    return out.sort((a, b) => b.at - a.at);
  }

  async listVulnerableRoutes(): Promise<{ path: string; entries: string[] }[]> {
    const out: { path: string; entries: string[] }[] = [];
    for (const key of await this.scan(`${this.prefix}{r:*}:${KEY.vulnerabilities}`)) {
      const tag = key.slice(this.prefix.length + 3, key.lastIndexOf('}:'));
      const fields = await this.client.hgetall(key).catch(() => ({}) as Record<string, string>);
      out.push({ path: unescapeTag(tag), entries: Object.entries(fields).map(([op, v]) => `${op}|${v}`) });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /** Ready now, or a connection attempt in flight (waited for briefly); otherwise unavailable at once. */
  private async ready(): Promise<void> {
    if (!this.closed && this.client.status === 'ready') return;
    if (!this.closed && (this.client.status === 'connecting' || this.client.status === 'connect' || this.client.status === 'wait')) return this.waitReady();
    throw new StoreUnavailableError(`stepguard: the risk store (Redis) is unavailable (${this.closed ? 'closed' : this.client.status})`);
  }

  private async scan(match: string): Promise<string[]> {
    await this.ready();
    const keys: string[] = [];
    let cursor = '0';
    try {
      do {
        const [next, found] = await this.client.scan(cursor, 'MATCH', match, 'COUNT', 500);
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
    } catch (error) {
      throw failed(error);
    }
    return keys;
  }

  private waitReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new StoreUnavailableError('stepguard: the risk store (Redis) is unavailable (no connection within 1000 ms)')), 1000);
      const onReady = (): void => done();
      const onEnd = (): void => done(new StoreUnavailableError('stepguard: the risk store (Redis) is unavailable (connection failed)'));
      const done = (error?: Error): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('close', onEnd);
        if (error) reject(error);
        else resolve();
      };
      this.client.once('ready', onReady);
      this.client.once('close', onEnd);
    });
  }
}

