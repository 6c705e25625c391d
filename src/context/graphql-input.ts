import type { InputSource } from '../events.js';
import { graphqlStringValues, looksLikeGraphql } from '../grammar/graphql.js';
import type { InputCollector } from './user-input.js';

/**
 * GraphQL requests (Apollo Server, Mercurius, graphql-http, …) carry input in two places the generic walk does
 * not reach as values: string literals written inline in the document (`user(name: "…")`), which only exist
 * inside the `query` text, and — on GET — `variables` as a JSON string in the URL. Both are added here, read
 * from the request itself when inputs are gathered (at the first sink), not from the server's parse: Apollo and
 * Mercurius cache parsed documents, so a parse hook would miss the second request that sends the same document.
 *
 * `container` is a parsed body or query object (`{ query, variables, … }`), or a batch (an array of them).
 */
export function addGraphqlInputs(c: InputCollector, source: InputSource, path: string, container: unknown): void {
  if (Array.isArray(container)) {
    // Batched operations (Apollo `allowBatchedHttpRequests`, Mercurius batching).
    for (let i = 0; i < container.length && i < MAX_BATCH; i++) addGraphqlInputs(c, source, `${path}.${i}`, container[i]);
    return;
  }
  if (!container || typeof container !== 'object') return;
  const request = container as { query?: unknown; variables?: unknown; extensions?: unknown };
  if (typeof request.query !== 'string' || !looksLikeGraphql(request.query)) return;
  addDocumentLiterals(c, source, `${path}.query`, request.query);
  // GET /graphql?query=…&variables={…}: the variables arrive as JSON text.
  if (typeof request.variables === 'string') addJsonText(c, source, `${path}.variables`, request.variables);
  if (typeof request.extensions === 'string') addJsonText(c, source, `${path}.extensions`, request.extensions);
}

/** A document sent as the whole body (`Content-Type: application/graphql`). */
export function addDocumentLiterals(c: InputCollector, source: InputSource, path: string, document: string): void {
  const values = graphqlStringValues(document, MAX_LITERALS);
  for (let i = 0; i < values.length; i++) c.add(source, `${path}.literal.${i}`, values[i]!);
}

/** Batches and literals beyond these are capped like any other input (the budget and search passes). */
const MAX_BATCH = 100;
const MAX_LITERALS = 1000;

function addJsonText(c: InputCollector, source: InputSource, path: string, text: string): void {
  const first = text.trimStart().charCodeAt(0);
  if (first !== 123 /* { */ && first !== 91 /* [ */) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return; // the server rejects it too
  }
  c.addTree(source, path, parsed);
}
