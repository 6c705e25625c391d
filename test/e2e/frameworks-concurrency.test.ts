/**
 * Every framework of frameworks-more.cjs under concurrent load: N requests in flight at once through a pg pool
 * smaller than the load, attacks and benign requests interleaved, each in a different input position. Each
 * response is checked against its own oracle:
 *   - an attack gets the standard 403, and the database's statement log has no statement of that request;
 *   - a benign request gets 200 with its own rows and its own request id, and exactly one statement of it ran;
 *   - the finding behind each 403 (matched by the response's incident id) judged that request's statement
 *     (the statement carries `/* rid <app pid>-N *\/`) for that request's user — no finding borrowed another's input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, REPO, startApp, type RunningApp } from '../helpers/app.js';
import { resetPg } from '../helpers/db.js';
import { interleavedLoad } from '../helpers/framework-load.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';

const FRAMEWORKS = ['nest-express', 'nest-fastify', 'hapi', 'apollo5-express', 'apollo5-standalone', 'apollo4-express', 'mercurius'] as const;
const N = 60;
const DIR = mkdtempSync(join(tmpdir(), 'sg-frameworks-concurrency-'));

beforeAll(async () => {
  await requirePostgres();
  await resetPg();
});

describe.each(FRAMEWORKS)(`%s: ${N} requests in flight at once`, (framework) => {
  const graphql = !framework.startsWith('nest') && framework !== 'hapi';
  const findingsFile = join(DIR, `${framework}.jsonl`);
  let app: RunningApp;
  beforeAll(async () => {
    app = await startApp(fixture('frameworks-more.cjs'), {
      timeoutMs: 30_000,
      env: {
        SG_PG_URL: PG_URL,
        SG_FRAMEWORK: framework,
        SG_POOL_SIZE: '3',
        STEPGUARD_MODE: 'block',
        STEPGUARD_RULES: '',
        STEPGUARD_CONFIG: join(REPO, 'test/fixtures/config/header-identity.config.cjs'),
        STEPGUARD_FINDINGS_FILE: findingsFile,
        STEPGUARD_LOG_FINDINGS: 'false',
      },
    });
  });
  afterAll(() => app?.stop());

  it('refuses every attack, serves every benign request, and attributes each finding to its own request', async () => {
    const { problems, refused } = await interleavedLoad(app, { n: N, graphql, findingsFile });
    expect(problems).toEqual([]);
    expect(refused).toBe(N / 2);
  });
});
