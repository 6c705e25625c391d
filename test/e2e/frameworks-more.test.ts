/**
 * NestJS (Express and Fastify adapters), Hapi, and GraphQL servers (Apollo Server 5 with Express and standalone,
 * Apollo Server 4 with Express, Mercurius on Fastify) against a real PostgreSQL: their request input — Nest's
 * route params, query and DTO bodies, Hapi's params/query/payload, GraphQL variables AND string literals written
 * inline in the document — is user input; an injection is answered with the standard 403 and a step-up rule with
 * the standard 401 challenge, whatever the framework's error layer would have made of the error (Nest's
 * exception filters, Hapi's Boom, GraphQL's `errors` in a 200), and the statement never reaches the database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, REPO, startApp, type RunningApp } from '../helpers/app.js';
import { resetPg, StatementLog } from '../helpers/db.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';

const REST = ['nest-express', 'nest-fastify', 'hapi'] as const;
const GRAPHQL = ['apollo5-express', 'apollo5-standalone', 'apollo4-express', 'mercurius'] as const;
const STYLES = ['default', '500', 'swallow'] as const;
const ATTACK = "x' OR '1'='1";
const STORE = mkdtempSync(join(tmpdir(), 'sg-frameworks-more-'));
const SECRET = 'frameworks-more-secret-0123456789abcdef';
const enc = encodeURIComponent;
/** The start-up line each app prints when it loads its framework (apollo4 is installed under an alias name here). */
const STARTUP: Record<string, RegExp | undefined> = {
  'nest-express': /framework NestJS \(@nestjs\/core@11\.[^)]*\): request context and input covered/,
  'nest-fastify': /framework NestJS \(@nestjs\/core@11\.[^)]*\): request context and input covered/,
  hapi: /framework Hapi \(@hapi\/hapi@21\.[^)]*\): request context and input covered/,
  'apollo5-express': /framework Apollo Server \(@apollo\/server@5\.[^)]*\): request context and input covered/,
  'apollo5-standalone': /framework Apollo Server \(@apollo\/server@5\.[^)]*\): request context and input covered/,
  mercurius: /framework Mercurius \(mercurius@16\.[^)]*\): request context and input covered/,
};

beforeAll(async () => {
  await requirePostgres();
  await resetPg();
  const enrolled = spawnSync(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'enroll', 'alice', '--store-dir', STORE], { env: { ...process.env, STEPGUARD_SECRET: SECRET }, encoding: 'utf8' });
  expect(enrolled.status, enrolled.stdout + enrolled.stderr).toBe(0);
});

const start = (framework: string, style: string, agent = true) =>
  startApp(fixture('frameworks-more.cjs'), {
    agent,
    timeoutMs: 30_000,
    env: {
      SG_PG_URL: PG_URL,
      SG_FRAMEWORK: framework,
      SG_ERROR_STYLE: style,
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: join(REPO, 'test/fixtures/rules/vip-step-up-tagged.yaml'),
      STEPGUARD_CONFIG: join(REPO, 'test/fixtures/config/header-identity.config.cjs'),
      STEPGUARD_STORE_DIR: STORE,
      STEPGUARD_SECRET: SECRET,
    },
  });

/** A GraphQL request: inline literal or variables, POST (JSON) or GET (URL). */
function gql(app: RunningApp, name: string, how: 'inline' | 'variables' | 'get', headers: Record<string, string> = {}) {
  if (how === 'inline') return call(app, 'POST', '/graphql', { body: { query: `{ users(name: ${JSON.stringify(name)}) { id name } }` }, headers });
  const query = 'query Find($n: String!) { users(name: $n) { id name } }';
  if (how === 'variables') return call(app, 'POST', '/graphql', { body: { query, variables: { n: name } }, headers });
  // Apollo's CSRF prevention wants a preflight-forcing header on GET.
  return call(app, 'GET', `/graphql?query=${enc(query)}&variables=${enc(JSON.stringify({ n: name }))}`, { headers: { 'apollo-require-preflight': '1', ...headers } });
}

function expectForbidden(reply: { status: number; headers: Headers; json(): unknown }): void {
  expect(reply.status).toBe(403);
  expect(reply.headers.get('content-type')).toBe('application/problem+json');
  expect(reply.json()).toMatchObject({ title: 'Forbidden', status: 403 });
}

function expectChallenge(reply: { status: number; headers: Headers; json(): unknown }): void {
  expect(reply.status).toBe(401);
  expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_user_authentication", .*max_age="60"$/);
  expect(reply.json()).toMatchObject({ type: 'urn:stepguard:problem:step-up-required', status: 401, max_age: 60 });
}

describe.each(REST)('%s', (framework) => {
  it('without the agent the injection works (the app is really vulnerable)', async () => {
    const bare = await start(framework, 'default', false);
    try {
      const reply = await call(bare, 'GET', `/find/${enc(ATTACK)}`);
      expect(reply.status).toBe(200);
      expect((reply.json() as { rows: unknown[] }).rows.length).toBe(3);
    } finally {
      await bare.stop();
    }
  });

  describe.each(STYLES)('error style %s', (style) => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await start(framework, style);
    });
    afterAll(() => app?.stop());

    // Defined only where it applies (no skipped tests): once per framework.
    const startup = style === 'default' ? STARTUP[framework] : undefined;
    if (startup) it('names the framework at start-up', () => expect(app.stderr()).toMatch(startup));

    it.each([
      ['a route parameter', 'GET', '/find/alice', undefined],
      ['the query string', 'GET', '/find?name=alice', undefined],
      ['a JSON body (Nest DTO / Hapi payload)', 'POST', '/find', { name: 'alice' }],
    ] as const)('serves benign input in %s', async (_what, method, path, body) => {
      const reply = await call(app, method, path, { ...(body ? { body } : {}), headers: { 'x-rid': 'b1' } });
      expect(reply.status).toBe(200);
      expect(reply.json()).toEqual({ rid: 'b1', rows: [{ id: 1, name: 'alice' }] });
    });

    it.each([
      ['a route parameter', 'GET', `/find/${enc(ATTACK)}`, undefined],
      ['the query string', 'GET', `/find?name=${enc(ATTACK)}`, undefined],
      ['a JSON body (Nest DTO / Hapi payload)', 'POST', '/find', { name: ATTACK }],
    ] as const)('answers an attack in %s with 403 problem+json; the statement never runs', async (_what, method, path, body) => {
      const log = new StatementLog('pg');
      log.mark();
      expectForbidden(await call(app, method, path, body ? { body } : {}));
      expect(log.since()).not.toContain("OR '1'='1");
      expect((await call(app, 'GET', '/find/bob')).status).toBe(200);
    });

    it('answers a step-up rule with the RFC 9470 challenge', async () => {
      const log = new StatementLog('pg');
      log.mark();
      expectChallenge(await call(app, 'POST', '/find', { body: { name: 'vip' }, headers: { 'x-user': 'alice' } }));
      expect(log.since()).not.toContain("name = 'vip'");
    });
  });
});

describe.each(GRAPHQL)('%s', (framework) => {
  it('without the agent the injection works (inline and in variables)', async () => {
    const bare = await start(framework, 'default', false);
    try {
      for (const how of ['inline', 'variables'] as const) {
        const reply = await gql(bare, ATTACK, how);
        expect(reply.status).toBe(200);
        expect((reply.json() as { data: { users: unknown[] } }).data.users.length).toBe(3);
      }
    } finally {
      await bare.stop();
    }
  });

  describe.each(STYLES)('error style %s', (style) => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await start(framework, style);
    });
    afterAll(() => app?.stop());

    // Defined only where it applies (no skipped tests): once per framework.
    const startup = style === 'default' ? STARTUP[framework] : undefined;
    if (startup) it('names the framework at start-up', () => expect(app.stderr()).toMatch(startup));

    it.each(['inline', 'variables', 'get'] as const)('serves a benign query (%s)', async (how) => {
      const reply = await gql(app, 'alice', how);
      expect(reply.status).toBe(200);
      expect(reply.json()).toEqual({ data: { users: [{ id: 1, name: 'alice' }] } });
    });

    it.each(['inline', 'variables', 'get'] as const)('answers an attack (%s) with 403 problem+json, not 200 with errors', async (how) => {
      const log = new StatementLog('pg');
      log.mark();
      expectForbidden(await gql(app, ATTACK, how));
      // The same document again: the server answers it from its parsed-document cache, the agent still sees it.
      expectForbidden(await gql(app, ATTACK, how));
      expect(log.since()).not.toContain("OR '1'='1");
      expect((await gql(app, 'bob', 'inline')).status).toBe(200);
    });

    it('finds an inline literal written with GraphQL escapes and in a block string', async () => {
      const log = new StatementLog('pg');
      log.mark();
      expectForbidden(await call(app, 'POST', '/graphql', { body: { query: `{ users(name: "x\\u0027 OR \\u00271\\u0027=\\u00271") { id } }` } }));
      expectForbidden(await call(app, 'POST', '/graphql', { body: { query: `{ users(name: """\n      ${ATTACK}\n    """) { id } }` } }));
      expect(log.since()).not.toContain("OR '1'='1");
    });

    // Apollo's automatic persisted queries (on by default): a later request sends only the hash, and the server
    // executes the document an earlier request registered — inline arguments included.
    if (framework.startsWith('apollo')) {
      it('refuses a persisted query whose document (registered earlier) carries the attack; serves a benign one', async () => {
        const apq = (query: string | undefined, doc: string) => ({ ...(query ? { query } : {}), extensions: { persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(doc).digest('hex') } } });
        const benign = `{ users(name: "alice") { id name } }`;
        expect((await call(app, 'POST', '/graphql', { body: apq(benign, benign) })).status).toBe(200);
        const hashOnly = await call(app, 'POST', '/graphql', { body: apq(undefined, benign) });
        expect(hashOnly.json()).toEqual({ data: { users: [{ id: 1, name: 'alice' }] } });

        const attackDoc = `{ users(name: "${ATTACK}") { id name } } # ${style}-${framework}`;
        const log = new StatementLog('pg');
        log.mark();
        expectForbidden(await call(app, 'POST', '/graphql', { body: apq(attackDoc, attackDoc) }));
        expectForbidden(await call(app, 'POST', '/graphql', { body: apq(undefined, attackDoc) }));
        expect(log.since()).not.toContain("OR '1'='1");
      });
    }

    it('answers a step-up rule with the RFC 9470 challenge (inline literal)', async () => {
      const log = new StatementLog('pg');
      log.mark();
      expectChallenge(await gql(app, 'vip', 'inline', { 'x-user': 'alice' }));
      expect(log.since()).not.toContain("name = 'vip'");
    });
  });
});
