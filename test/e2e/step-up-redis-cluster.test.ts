/**
 * The step-up store on a real Redis Cluster (3 masters + 3 replicas on loopback, scripts/redis-cluster.sh), shared by
 * two instances of the bank app: challenge → verify → grant works across instances, the attempt limit is exact under
 * a parallel burst (the per-user and per-address counters live on different slots), and when the master holding a
 * user's keys dies, that user's step-up operations fail closed (503, the operation does not run) until its replica
 * takes over, then work again — while requests that need no step-up keep working throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { REPO, startApp, type RunningApp } from '../helpers/app.js';
import { balanceOf, burstReport, challengeOf, codesChecked, logFlushed, resetBank, Session, wrongCodes } from '../helpers/bank.js';
import { PG_URL, REDIS_CLUSTER, requirePostgres, requireRedisCluster } from '../helpers/services.js';

const BANK = join(REPO, 'examples/bank/app.cjs');
const LIMIT = 5;
const nodes = REDIS_CLUSTER.split(',').map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) }));
let admin: Cluster;
let one: RunningApp;
let two: RunningApp;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
}

/** The master serving `key`'s slot right now, and one of its replicas. */
async function ownerOf(key: string): Promise<{ master: number; replica: number }> {
  const slot = Number((await cli(nodes[0]!.port, 'cluster', 'keyslot', key)).trim());
  const lines = (await cli(nodes[0]!.port, 'cluster', 'nodes')).trim().split('\n').map((l) => l.split(' '));
  const master = lines.find((f) => f[2]!.includes('master') && !f[2]!.includes('fail') && f.slice(8).some((range) => {
    const [lo, hi] = range.split('-').map(Number);
    return slot >= lo! && slot <= (hi ?? lo!);
  }));
  if (!master) throw new Error(`no master serves slot ${slot}`);
  const replica = lines.find((f) => f[3] === master[0] && !f[2]!.includes('fail'));
  if (!replica) throw new Error(`the master of slot ${slot} has no replica`);
  const port = (f: string[]) => Number(f[1]!.split('@')[0]!.split(':').pop());
  return { master: port(master), replica: port(replica) };
}

beforeAll(async () => {
  await Promise.all([requirePostgres(), requireRedisCluster()]);
  await resetBank();
  admin = new Cluster(nodes);
  await new Promise<void>((resolve, reject) => {
    admin.once('ready', () => resolve());
    admin.once('error', reject);
  });
  const masters = admin.nodes('master');
  expect(masters).toHaveLength(3);
  await Promise.all(masters.map((n) => n.flushall()));
  const env = {
    BANK_DB_URL: PG_URL,
    PORT: '0',
    BANK_SESSION_SECRET: 'cluster-session-secret',
    STEPGUARD_MODE: 'block',
    STEPGUARD_RULES: join(REPO, 'examples/bank/rules.yaml'),
    STEPGUARD_REDIS_CLUSTER: REDIS_CLUSTER,
    STEPGUARD_SECRET: 'cluster-secret-with-at-least-32-characters!!',
    STEPGUARD_MAX_ATTEMPTS_PER_USER: String(LIMIT),
    STEPGUARD_MAX_ATTEMPTS_PER_CLIENT: '50',
    STEPGUARD_STORE_DIR: mkdtempSync(join(tmpdir(), 'sg-cluster-store-')),
  };
  one = await startApp(BANK, { env });
  two = await startApp(BANK, { env });
}, 60_000);

afterAll(async () => {
  await Promise.all([one?.stop(), two?.stop()]);
  await admin?.quit().catch(() => admin.disconnect());
});

describe('step-up on Redis Cluster, two instances', () => {
  it('challenge on one instance, verification on the other, the grant honoured by both', async () => {
    const alice = await new Session(one, 'alice').login();
    await alice.enroll();
    const before = await balanceOf('alice');
    const challenge = challengeOf(await alice.send('POST', '/transfer', { to: 'bob', amount: 10 }));
    expect((await alice.on(two).verify(challenge, alice.code())).status).toBe(200);
    expect((await alice.on(two).send('POST', '/transfer', { to: 'bob', amount: 10 })).status).toBe(200);
    expect((await alice.send('POST', '/transfer', { to: 'bob', amount: 10 })).status).toBe(200);
    expect(await balanceOf('alice')).toBe(before - 20);
    // The user's records share one hash slot; the address counter has its own.
    const keys = (await Promise.all(admin.nodes('master').map((n) => n.keys('stepguard:*')))).flat();
    expect(keys).toEqual(expect.arrayContaining(['stepguard:{u:alice}:factor', 'stepguard:{u:alice}:step', 'stepguard:{u:alice}:att']));
  });

  it('a burst of 100 wrong codes over both instances checks exactly the limit', async () => {
    const bob = await new Session(one, 'bob').login();
    await bob.enroll();
    const challenge = challengeOf(await bob.send('POST', '/transfer', { to: 'alice', amount: 1 }));
    const replies = await Promise.all(wrongCodes('bob', 100).map((code, i) => bob.on(i % 2 ? two : one).verify(challenge, code)));
    await Promise.all([logFlushed(one), logFlushed(two)]);
    expect(codesChecked([one, two], 'bob'), burstReport(replies, [one, two], 'bob')).toBe(LIMIT);
    expect(replies.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(100 - LIMIT);
    expect((await bob.verify(challenge, bob.code())).status).toBe(429);
  });

  it("the master holding a user's keys dies: that user's step-ups fail closed (503), then recover on the promoted replica", async () => {
    const carol = await new Session(one, 'carol').login();
    await carol.enroll();
    const { master, replica } = await ownerOf('stepguard:{u:carol}:factor');
    const pid = Number(/process_id:(\d+)/.exec(await cli(master, 'info', 'server'))![1]);
    const before = await balanceOf('carol');

    // Requests that need no step-up, on both instances, for the whole failover.
    let running = true;
    const background: number[] = [];
    const traffic = (async () => {
      while (running) {
        for (const app of [one, two]) background.push((await carol.on(app).send('GET', '/balance')).status);
        await sleep(50);
      }
    })();

    process.kill(pid, 'SIGKILL');
    const during: number[] = [];
    let recovered = false;
    for (let i = 0; i < 120 && !recovered; i++) {
      const reply = await carol.on(i % 2 ? two : one).send('POST', '/transfer', { to: 'bob', amount: 1 });
      during.push(reply.status);
      if (reply.status === 503) expect((reply.json() as { type: string }).type).toBe('urn:stepguard:problem:step-up-unavailable');
      recovered = reply.status === 401 && during.includes(503);
      if (!recovered) await sleep(250);
    }
    expect(during).toContain(503);
    expect(recovered).toBe(true);
    expect(during.every((s) => s === 503 || s === 401)).toBe(true);
    expect(await balanceOf('carol')).toBe(before); // nothing ran without a grant

    // The replica is the master now, and the whole flow works again on both instances.
    expect(await cli(replica, 'role')).toMatch(/^master/);
    const challenge = challengeOf(await carol.on(two).send('POST', '/transfer', { to: 'bob', amount: 1 }));
    expect((await carol.verify(challenge, carol.code())).status).toBe(200);
    expect((await carol.on(two).send('POST', '/transfer', { to: 'bob', amount: 1 })).status).toBe(200);
    expect(await balanceOf('carol')).toBe(before - 1);

    running = false;
    await traffic;
    expect(background.length).toBeGreaterThan(4);
    expect(background.every((s) => s === 200)).toBe(true);

    // Bring the dead node back: it rejoins as a replica, and the script returns once it is in sync, so the cluster can
    // fail over again for whoever runs next (a replica that never synced refuses to be promoted).
    await new Promise<void>((resolve, reject) =>
      execFile('bash', [join(REPO, 'scripts/redis-cluster.sh'), 'start'], { env: { ...process.env, SG_REDIS_CLUSTER_PORT: String(nodes[0]!.port) } }, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    let role = '';
    for (let i = 0; i < 50 && !role.startsWith('slave'); i++) {
      role = await cli(master, 'role');
      if (!role.startsWith('slave')) await sleep(200);
    }
    expect(role).toMatch(/^slave/);
  }, 90_000);
});
