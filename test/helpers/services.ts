/**
 * Connection settings for the loopback services started by scripts/services.sh (the same defaults).
 * Tests that need a service call `requireX()` first, which fails loudly — never skips — when it is down.
 */
import net from 'node:net';

export const PG_URL = process.env.SG_PG_URL ?? 'postgres://postgres@127.0.0.1:54329/stepguard';
export const MYSQL_URL = process.env.SG_MYSQL_URL ?? 'mysql://stepguard:stepguard@127.0.0.1:33069/stepguard';
export const REDIS_URL = process.env.SG_REDIS_URL ?? 'redis://127.0.0.1:63799';
const servicesDir = process.env.SG_SERVICES_DIR ?? '/tmp/stepguard-services';
export const PG_LOG = process.env.SG_PG_LOG ?? `${servicesDir}/pg/server.log`;
export const MYSQL_LOG = process.env.SG_MYSQL_LOG ?? `${servicesDir}/mysql/general.log`;

async function reachable(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => {
      socket.end();
      resolve();
    });
    socket.setTimeout(2000, () => socket.destroy(new Error('timeout')));
    socket.on('error', (error) =>
      reject(new Error(`${url} is not reachable (${error.message}). Start the services with: bash scripts/services.sh start`)),
    );
  });
}

export const requirePostgres = () => reachable(PG_URL);
export const requireMysql = () => reachable(MYSQL_URL);
export const requireRedis = () => reachable(REDIS_URL);
/** Seed nodes of the loopback Redis Cluster (scripts/redis-cluster.sh). */
export const REDIS_CLUSTER = process.env.SG_REDIS_CLUSTER ?? '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003,127.0.0.1:7004,127.0.0.1:7005,127.0.0.1:7006';
export const requireRedisCluster = async () => {
  for (const node of REDIS_CLUSTER.split(',')) await reachable(`redis://${node}`);
};
