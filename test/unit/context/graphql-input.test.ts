import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { parse, visit } from 'graphql';
import { RequestContext } from '../../../src/context/request-context.js';
import { DEFAULT_CONFIG } from '../../../src/config.js';
import { graphqlStringValues, looksLikeGraphql } from '../../../src/grammar/graphql.js';

const ATTACK = "x' OR '1'='1";

/** What graphql-js itself hands resolvers: every StringValue node's value, in document order. */
function reference(document: string): string[] {
  const out: string[] = [];
  visit(parse(document), { StringValue: (node) => void out.push(node.value) });
  return out;
}

describe('GraphQL string literals', () => {
  it.each([
    `{ user(name: "${ATTACK}") { id } }`,
    `query Q { a: user(name: "tab\\there \\"q\\" back\\\\slash \\u0041 \\/") { id } b: user(name: "") { id } }`,
    `mutation { add(input: { name: "${ATTACK}", tags: ["a", "b c"] }) { id } } # "not a string"`,
    `query($n: String = "default ${ATTACK}") { user(name: $n) @include(if: true) { id note(fmt: """\n    line one\n      indented ' OR 1=1\n    \n  """) } }`,
    `fragment F on User { id }\nquery { user(name: """a \\""" b""") { ...F } }`,
    `  ,\n# comment "x"\n{ user(name: "é \\u00e9 😀") { id } }`,
  ])('decodes literals exactly as graphql-js does: %s', (doc) => {
    expect(graphqlStringValues(doc)).toEqual(reference(doc));
  });

  it('reads only executable documents, and survives malformed ones', () => {
    expect(looksLikeGraphql('{ a }')).toBe(true);
    expect(looksLikeGraphql('query{a}')).toBe(true);
    expect(looksLikeGraphql('queryX { a }')).toBe(false);
    expect(looksLikeGraphql('SELECT "a"')).toBe(false);
    expect(graphqlStringValues('hello "world"')).toEqual([]);
    expect(graphqlStringValues('{ a(b: "unterminated')).toEqual(['unterminated']);
    expect(graphqlStringValues('{ a(b: """unterminated')).toEqual(['unterminated']);
    expect(graphqlStringValues('{ a(b: "bad \\q \\u12") }')).toEqual(['bad \\q \\u12']);
  });

  it('stops at the cap', () => {
    const doc = `{ ${Array.from({ length: 50 }, (_, i) => `f${i}: a(x: "v${i}")`).join(' ')} }`;
    expect(graphqlStringValues(doc, 10)).toHaveLength(10);
  });
});

const context = (over: Record<string, unknown>) =>
  new RequestContext({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, socket: {}, ...over } as unknown as IncomingMessage, undefined, DEFAULT_CONFIG);

describe('GraphQL requests as user input', () => {
  it('inline arguments in a parsed JSON body are inputs', () => {
    const ctx = context({ body: { query: `{ user(name: "${ATTACK}") { id } }` } });
    expect(ctx.inputs().find((i) => i.value === ATTACK)).toMatchObject({ source: 'body', path: 'body.query.literal.0' });
  });

  it('inline arguments in a raw JSON body (frameworks that keep the parsed body off the request) and in batches', () => {
    const ctx = context({});
    ctx.captureBodyChunk(Buffer.from(JSON.stringify([{ query: '{ a }' }, { query: `query { user(name: "${ATTACK}") { id } }` }])));
    expect(ctx.inputs().find((i) => i.value === ATTACK)?.path).toBe('body.1.query.literal.0');
  });

  it('an application/graphql body is a document', () => {
    const ctx = context({ headers: { 'content-type': 'application/graphql' } });
    ctx.captureBodyChunk(Buffer.from(`{ user(name: "${ATTACK}") { id } }`));
    expect(ctx.inputs().find((i) => i.value === ATTACK)?.path).toBe('body.literal.0');
  });

  it('GET: inline arguments and JSON variables in the URL', () => {
    const q = new URLSearchParams({ query: `query($n: String) { user(name: $n) { id } other: user(name: "${ATTACK}2") { id } }`, variables: JSON.stringify({ n: ATTACK }) });
    const ctx = context({ method: 'GET', url: `/graphql?${q}`, headers: {} });
    const inputs = ctx.inputs();
    expect(inputs.find((i) => i.value === ATTACK)?.path).toBe('query.variables.n');
    expect(inputs.find((i) => i.value === `${ATTACK}2`)?.path).toBe('query.query.literal.0');
  });

  it('GET: the document after another parameter', () => {
    const search = `x=1&${new URLSearchParams({ query: `{a(n:"${ATTACK}")}` })}`;
    const ctx = context({ method: 'GET', url: `/g?${search}`, headers: {} });
    expect(ctx.inputs().find((i) => i.value === ATTACK)?.path).toBe('query.query.literal.0');
    // `query` as a value and `queryx=` are not the parameter.
    const noDocument = context({ method: 'GET', url: '/g?a=query&queryx={a(n:"zz1")}', headers: {} });
    expect(noDocument.inputs().map((i) => i.value)).not.toContain('zz1');
  });

  it('a body whose query field is not GraphQL adds nothing', () => {
    const ctx = context({ body: { query: 'find "this" please' } });
    expect(ctx.inputs().map((i) => i.value)).not.toContain('this');
  });
});
