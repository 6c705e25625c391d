import { defineHook, wrap, inspect, shouldInspect, type AnyFunction } from '../src/hook-kit.js';

/**
 * SINK sql: `postgres` (porsager, 3.x). Its API is a tagged template: `` sql`… ${value} …` `` sends the
 * template text with `$n` placeholders and the values as bound parameters, so ordinary values can never
 * change the statement. Text reaches the statement raw only through `sql.unsafe(text)` — on its own or
 * nested as a fragment (`` sql`… ORDER BY ${sql.unsafe(column)}` ``) — and through dynamic identifiers
 * (`sql(name)`, which postgres double-quotes and escapes).
 *
 * Every query, tagged or unsafe, runs when it is first awaited (`then`/`catch`/`finally`), `execute()`d,
 * iterated (`cursor`, `forEach`) or streamed: all of these go through `Query.prototype.handle` (in
 * lib `cjs/src/query.js`), which runs in the caller's async context. The hook rebuilds the statement text
 * the way postgres does (template strings, nested fragments inlined, identifiers as escaped, every value a
 * `$n` placeholder; a `sql(object)` helper also becomes one placeholder, since it only emits escaped
 * column names and placeholders) and judges it there. A refused query is marked executed, so it is never
 * sent, and its promise rejects with the error — how postgres reports any failed query.
 *
 * Not covered: `sql.file(path)` (its text is read from disk after this point), and apps that load the ESM
 * build (`import postgres from 'postgres'` resolves to `src/`, which require hooks do not see).
 */

interface PgQuery {
  tagged?: boolean;
  strings?: readonly string[];
  args?: readonly unknown[];
  executed?: boolean;
  reject?: (error: Error) => void;
}

/** How deep nested fragments are followed (postgres itself has no limit; real statements nest a few levels). */
const MAX_DEPTH = 32;

function statementOf(query: PgQuery, Query: AnyFunction): string | undefined {
  const counter = { n: 0 };
  const text = render(query, Query, counter, 0);
  return text === '' ? undefined : text;
}

function render(query: PgQuery, Query: AnyFunction, counter: { n: number }, depth: number): string {
  const strings = query.strings;
  if (!Array.isArray(strings) || typeof strings[0] !== 'string') return '';
  let text = strings[0];
  for (let i = 1; i < strings.length; i++) text += renderValue(query.args?.[i - 1], Query, counter, depth) + String(strings[i]);
  return text;
}

function renderValue(value: unknown, Query: AnyFunction, counter: { n: number }, depth: number): string {
  if (depth < MAX_DEPTH) {
    if (value instanceof Query) return render(value as PgQuery, Query, counter, depth + 1);
    if (Array.isArray(value) && value[0] instanceof Query) {
      let text = '';
      for (const fragment of value) text += ' ' + (fragment instanceof Query ? render(fragment as PgQuery, Query, counter, depth + 1) : '');
      return text;
    }
  }
  // `sql(name)`: an Identifier holding the escaped, double-quoted name.
  const identifier = value as { constructor?: { name?: unknown }; value?: unknown } | null;
  if (identifier && typeof identifier === 'object' && identifier.constructor?.name === 'Identifier' && typeof identifier.value === 'string') {
    return identifier.value;
  }
  return `$${++counter.n}`;
}

export const postgres = defineHook({
  module: 'postgres/cjs/src/query',
  patch(exports) {
    const Query = (exports as { Query?: AnyFunction & { prototype: { handle?: unknown } } }).Query;
    if (typeof Query !== 'function' || typeof Query.prototype.handle !== 'function') throw new Error('postgres Query.prototype.handle not found');
    wrap(Query.prototype as { handle: AnyFunction }, 'handle', (original) =>
      function handle(this: PgQuery, ...args: unknown[]) {
        if (!shouldInspect() || this.executed) return original.apply(this, args);
        const sql = statementOf(this, Query);
        if (sql !== undefined) {
          const op = this.tagged ? 'postgres.sql' : 'postgres.unsafe';
          const verdict = inspect({ kind: 'sql', op, dialect: 'postgres', system: 'postgresql', sql });
          if (verdict && typeof this.reject === 'function') {
            this.executed = true;
            this.reject(verdict.error);
            return Promise.resolve();
          }
        }
        return original.apply(this, args);
      },
    );
  },
});
