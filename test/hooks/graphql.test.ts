/**
 * hooks/graphql.ts: the document graphql-js executes joins the request's input — the case of a persisted query,
 * where the request carries only a hash and the document's inline arguments are in no part of the request.
 * Real graphql-js, real pg, real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { startAgentInProcess, type InProcessAgent } from '../helpers/agent.js';
import { resetPg, StatementLog } from '../helpers/db.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';

const require = createRequire(import.meta.url);
const ATTACK = "x' OR '1'='1";

let agent: InProcessAgent;
let graphql: typeof import('graphql');
let pool: import('pg').Pool;
let schema: import('graphql').GraphQLSchema;

beforeAll(async () => {
  await requirePostgres();
  await resetPg();
  agent = startAgentInProcess();
  graphql = require('graphql') as typeof import('graphql');
  const pg = require('pg') as typeof import('pg');
  pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  schema = graphql.buildSchema('type User { id: Int, name: String } type Query { users(name: String!): [User] }');
});
afterAll(() => pool?.end());

const rootValue = {
  users: async ({ name }: { name: string }) => (await pool.query(`SELECT id, name FROM users WHERE name = '${name}'`)).rows,
};

describe('graphql execute', () => {
  it('is wrapped where every server finds it (the package index reads the patched module)', () => {
    expect(agent.isWrapped(graphql.execute)).toBe(true);
    expect(agent.isWrapped((require('graphql/execution/execute') as typeof import('graphql')).execute)).toBe(true);
  });

  it('refuses an inline attack in a document the request did not carry (a persisted query)', async () => {
    const log = new StatementLog('pg');
    log.mark();
    const document = graphql.parse(`{ users(name: ${JSON.stringify(ATTACK)}) { id name } }`);
    // The request: only a hash, as an APQ follow-up sends it.
    const result = await agent.runWithContext({ method: 'POST', url: '/graphql', body: { extensions: { persistedQuery: { version: 1, sha256Hash: 'abc' } } } }, () => graphql.execute({ schema, document, rootValue }));
    expect(result.errors?.[0]?.originalError).toMatchObject({ code: 'ERR_STEPGUARD_BLOCKED' });
    expect(log.since()).not.toContain("OR '1'='1");
  });

  it('leaves benign documents, and documents executed outside any request, alone', async () => {
    const benign = graphql.parse('{ users(name: "alice") { id name } }');
    const inRequest = await agent.runWithContext({ method: 'POST', url: '/graphql' }, () => graphql.execute({ schema, document: benign, rootValue }));
    expect(inRequest).toEqual({ data: { users: [{ id: 1, name: 'alice' }] } });
    // No request: nothing is user input (a server's own start-up queries, scripts).
    const outside = await graphql.execute({ schema, document: graphql.parse(`{ users(name: ${JSON.stringify(ATTACK)}) { id } }`), rootValue });
    expect(outside.errors).toBeUndefined();
    expect((outside.data as { users: unknown[] }).users).toHaveLength(3);
  });

  it('executeSync keeps its synchronous result', () => {
    const result = agent.runWithContext({ url: '/graphql' }, () => graphql.executeSync({ schema: graphql.buildSchema('type Query { a: String }'), document: graphql.parse('{ a }'), rootValue: { a: () => 'x' } }));
    expect(result).toEqual({ data: { a: 'x' } });
  });
});
