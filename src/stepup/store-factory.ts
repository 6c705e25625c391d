import type { RedisClusterSettings, StepUpStore, StoreSettings } from './store.js';

/**
 * Which store implementation backs the settings. Apart from store.ts (the interface), so the
 * implementations import the interface and nothing imports back. Each implementation is loaded only when
 * chosen: an agent on the embedded store never loads ioredis.
 */

/** For the CLI: opens the configured store. */
export async function openStore(settings: StoreSettings): Promise<StepUpStore> {
  if (settings.redisUrl !== undefined) {
    const { RedisStore } = await import('./redis-store.js');
    return new RedisStore(settings.redisUrl);
  }
  if (settings.redisCluster !== undefined) {
    const { RedisStore } = await import('./redis-store.js');
    return new RedisStore(clusterTarget(settings.redisCluster));
  }
  const { EmbeddedStore } = await import('./embedded-store.js');
  return new EmbeddedStore(settings.storeDir);
}

/** For the agent, on first step-up (synchronous: the sink-side gate cannot wait). */
export function createStore(settings: StoreSettings): StepUpStore {
  if (settings.redisUrl !== undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- ioredis is loaded only when Redis is configured
    const { RedisStore } = require('./redis-store.js') as typeof import('./redis-store.js');
    return new RedisStore(settings.redisUrl);
  }
  if (settings.redisCluster !== undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- as above
    const { RedisStore } = require('./redis-store.js') as typeof import('./redis-store.js');
    return new RedisStore(clusterTarget(settings.redisCluster));
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- kept off the start-up path
  const { EmbeddedStore } = require('./embedded-store.js') as typeof import('./embedded-store.js');
  return new EmbeddedStore(settings.storeDir);
}

function clusterTarget(settings: RedisClusterSettings): { cluster: RedisClusterSettings['nodes']; username?: string; password?: string } {
  return { cluster: settings.nodes, ...(settings.username ? { username: settings.username } : {}), ...(settings.password ? { password: settings.password } : {}) };
}
