import type { StepUpStore, StoreSettings } from './store.js';

/**
 * Opens the configured store. The implementations are loaded lazily so an agent using the embedded store never
 * loads ioredis. Kept apart from store.ts because the implementations import store.ts: the factory there
 * made an import cycle (store → redis-store → store).
 */
export async function openStore(settings: StoreSettings): Promise<StepUpStore> {
  if (settings.redisUrl !== undefined) {
    const { RedisStore } = await import('./redis-store.js');
    return new RedisStore(settings.redisUrl);
  }
  const { EmbeddedStore } = await import('./embedded-store.js');
  return new EmbeddedStore(settings.storeDir);
}
