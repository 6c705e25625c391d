/**
 * Context under concurrency: many interleaved requests, pools smaller than the load (so queries wait for
 * a connection released by another request), and queries issued from pooled-socket callbacks. Each finding
 * must be attributed to the request whose input caused it: the statement carries its request id, the span
 * carries the request path, and the two must agree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, fixture, startApp, type RunningApp } from '../helpers/app.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { resetMysql, resetPg } from '../helpers/db.js';
import { MYSQL_URL, PG_URL, requireMysql, requirePostgres } from '../helpers/services.js';

const receiver = new OtlpReceiver();
let app: RunningApp;

beforeAll(async () => {
  await Promise.all([requirePostgres(), requireMysql()]);
  await Promise.all([resetPg(), resetMysql()]);
  const url = await receiver.start();
  app = await startApp(fixture('express-app.cjs'), {
    env: {
      SG_PG_URL: PG_URL,
      SG_MYSQL_URL: MYSQL_URL,
      SG_POOL_SIZE: '2',
      STEPGUARD_RULES: '',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_BSP_MAX_QUEUE_SIZE: '10000',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '512',
    },
  });
});

afterAll(async () => {
  await app?.stop();
  await receiver.stop();
});

describe.each(['pg', 'mysql'] as const)('%s under interleaved load (monitor mode)', (db) => {
  it('attributes every finding to the request that caused it', async () => {
    const N = 60;
    const replies = await Promise.all(
      Array.from({ length: N }, (_, i) => {
        // Even requests attack, odd ones are benign; random delays interleave them across the small pool.
        const q = i % 2 === 0 ? `' OR 'x${i}'='x${i}` : `user${i}`;
        return call(app, 'GET', `/ctx/${db}/${i}?q=${encodeURIComponent(q)}&delay=${(i * 7) % 13}`);
      }),
    );
    expect(replies.every((r) => r.status === 200)).toBe(true);

    const attacks = await receiver.waitFor(
      (spans) => spans.filter((s) => s.attributes['stepguard.kind'] === 'attack' && String(s.attributes['url.path']).startsWith(`/ctx/${db}/`)).length >= N / 2,
    );
    const mine = attacks.filter((s) => s.name === 'stepguard.finding' && String(s.attributes['url.path']).startsWith(`/ctx/${db}/`));
    const attackSpans = mine.filter((s) => s.attributes['stepguard.kind'] === 'attack');
    expect(attackSpans).toHaveLength(N / 2);
    for (const span of attackSpans) {
      const rid = String(span.attributes['url.path']).split('/').pop();
      expect(Number(rid) % 2).toBe(0);
      // The statement judged in this request is this request's statement.
      expect(span.attributes['db.query.text']).toContain(`/* rid ${rid} */`);
    }
    // Benign requests only ever produced (at most) vulnerability findings about their own statements.
    for (const span of mine.filter((s) => s.attributes['stepguard.kind'] === 'vulnerability')) {
      const rid = String(span.attributes['url.path']).split('/').pop();
      expect(span.attributes['db.query.text']).toContain(`/* rid ${rid} */`);
    }
  });
});
