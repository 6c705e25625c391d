/**
 * ORMs, query builders, promise libraries and pools: none of them is a sink, but each hands work over between
 * requests (a queue, a pool, its own scheduler), which is where a request context gets lost. This is what
 * `stepguard doctor` and the start-up line say about each one an app has installed: which versions were shown to
 * keep every query in the request that issued it (test/e2e/stacks-concurrency.test.ts), and how.
 */
export interface StackEntry {
  readonly module: string;
  readonly kind: 'ORM' | 'query builder' | 'promise library' | 'pool';
  /** Versions whose propagation is covered (tested under concurrency, or hooked and tested). */
  readonly covered: string;
  /** How the request context survives the handover. */
  readonly how: string;
}

export const STACKS: readonly StackEntry[] = [
  { module: 'sequelize', kind: 'ORM', covered: '^4.44.0 || ^6.0.0', how: 'queries reach the mysql2/pg hooks; 4.x bluebird chains bound by the bluebird hook' },
  { module: 'knex', kind: 'query builder', covered: '^3.0.0', how: 'native promises; queries reach the pg/mysql2 hooks' },
  { module: 'objection', kind: 'ORM', covered: '^3.0.0', how: 'on knex' },
  { module: '@prisma/client', kind: 'ORM', covered: '^7.0.0', how: 'with @prisma/adapter-pg: native promises; queries reach the pg hook (the Rust query engine of older releases is not covered)' },
  { module: 'typeorm', kind: 'ORM', covered: '>=0.3.0 <0.4.0', how: 'native promises; queries reach the pg hook' },
  { module: 'bluebird', kind: 'promise library', covered: '>=2.9.0 <4', how: 'hook: handlers bound at Promise.prototype._then' },
  { module: 'generic-pool', kind: 'pool', covered: '>=2.4.0 <4', how: 'hook: acquire callbacks bound (3.x promises are native or bluebird)' },
  { module: 'sequelize-pool', kind: 'pool', covered: '>=6.0.0 <9', how: 'native promises' },
  { module: 'tarn', kind: 'pool', covered: '>=3.0.0 <4', how: 'native promises' },
  { module: 'pg-pool', kind: 'pool', covered: '>=3.0.0 <4', how: 'pg hook: connect callbacks bound' },
];
