import { addRequestInput, defineHook, wrap, type AnyFunction } from '../src/hook-kit.js';

/**
 * SOURCE, not a sink: the document graphql-js executes. Request input is read from the request itself
 * (src/context/graphql-input.ts), which covers documents sent in the request; this hook covers the one case
 * that reading misses — a persisted query (Apollo's APQ, on by default), where the request sends only a hash
 * and the server executes a document an earlier request registered, inline arguments included. The document
 * is only remembered here; its string literals are walked when the request reaches a sink.
 */
const MAX_NODES = 20_000;

function stringLiterals(document: unknown, add: (path: string, value: string) => void): void {
  const stack: unknown[] = [document];
  let index = 0;
  for (let seen = 0; stack.length > 0 && seen < MAX_NODES; seen++) {
    const node = stack.pop();
    if (!node || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push(node[i]);
      continue;
    }
    const n = node as Record<string, unknown>;
    if (n.kind === 'StringValue' && typeof n.value === 'string') {
      add(`graphql.document.literal.${index++}`, n.value);
      continue;
    }
    for (const key in n) {
      // `loc` links every token of the source: never walk it.
      if (key !== 'loc' && n[key] && typeof n[key] === 'object') stack.push(n[key]);
    }
  }
}

function remember(args: unknown[]): void {
  // graphql 16: execute({ document, … }); the positional form (schema, document, …) is still accepted.
  const first = args[0] as { document?: unknown } | undefined;
  const document = args.length > 1 ? args[1] : first?.document;
  if (document && typeof document === 'object') addRequestInput('body', (add) => stringLiterals(document, add));
}

export const graphqlExecute = defineHook({
  module: 'graphql/execution/execute',
  patch(exports) {
    const mod = exports as { execute?: AnyFunction; executeSync?: AnyFunction };
    if (typeof mod.execute !== 'function') throw new Error('graphql/execution/execute has no execute()');
    for (const name of ['execute', 'executeSync'] as const) {
      if (typeof mod[name] !== 'function') continue;
      wrap(mod, name, (original) =>
        function (this: unknown) {
          const args = arguments as unknown as unknown[];
          try {
            remember(args);
          } catch {
            // never in the way of the server
          }
          return original.apply(this, args);
        },
      );
    }
  },
});
