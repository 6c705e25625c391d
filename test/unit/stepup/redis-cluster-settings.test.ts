import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { parseRedisCluster, resolveStoreSettings } from '../../../src/stepup/store.js';

describe('STEPGUARD_REDIS_CLUSTER', () => {
  it('host:port lists, URL forms with credentials, IPv6 in brackets', () => {
    expect(parseRedisCluster('127.0.0.1:7001, 127.0.0.1:7002')).toEqual({ ok: true, value: { nodes: [{ host: '127.0.0.1', port: 7001 }, { host: '127.0.0.1', port: 7002 }] } });
    expect(parseRedisCluster('redis://app:s%40cret@10.0.0.1:7000,10.0.0.2:7000')).toEqual({
      ok: true,
      value: { nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }], username: 'app', password: 's@cret' },
    });
    expect(parseRedisCluster('[::1]:7000')).toEqual({ ok: true, value: { nodes: [{ host: '::1', port: 7000 }] } });
  });

  it.each(['', 'localhost', '10.0.0.1:notaport', 'redis://10.0.0.1:7000/2', ','])('%j is refused with the expected form', (value) => {
    const parsed = parseRedisCluster(value);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problem).toContain('host:port');
  });

  it('a bad value is a start-up problem naming the variable; a good one selects the cluster store', () => {
    const bad = loadConfig({ STEPGUARD_REDIS_CLUSTER: 'localhost' });
    expect(bad.problems.map((p) => p.where)).toEqual(['env STEPGUARD_REDIS_CLUSTER']);
    const good = loadConfig({ STEPGUARD_REDIS_CLUSTER: '127.0.0.1:7001' });
    expect(good.problems).toEqual([]);
    expect(good.config.stepUp.redisCluster?.nodes).toEqual([{ host: '127.0.0.1', port: 7001 }]);
    // The CLI's store settings: a URL wins; else the cluster.
    expect(resolveStoreSettings({ STEPGUARD_REDIS_CLUSTER: '127.0.0.1:7001' }, '/tmp').redisCluster?.nodes).toHaveLength(1);
    expect(resolveStoreSettings({ STEPGUARD_REDIS_CLUSTER: '127.0.0.1:7001', STEPGUARD_REDIS_URL: 'redis://x:1' }, '/tmp')).toMatchObject({ redisUrl: 'redis://x:1' });
  });
});
