/**
 * Supported versions, in one place. The registry (hooks/index.ts) gates patching on `range`, `stepguard
 * doctor` reports against it, and the version tests run each hook against the copies pinned in
 * test/versions/<package>-<version> listed under `pinned` (the oldest supported release, the releases where
 * the library's internals moved, and one release below the range to prove it is refused).
 */
export interface SupportedVersions {
  /** semver range the hook is written and tested for. */
  readonly range: string;
  /** Versions installed under test/versions/<package>-<version> for the version tests. */
  readonly pinned: readonly string[];
}

export const SUPPORTED_VERSIONS = {
  pg: { range: '>=8.0.3 <9', pinned: ['8.0.3'] },
  mysql2: { range: '>=1.0.0 <4', pinned: ['0.15.8', '1.0.0', '1.7.0', '2.0.0', '2.3.3', '3.0.0'] },
  mysql: { range: '>=2.3.0 <3', pinned: ['2.3.0'] },
  postgres: { range: '>=3.0.0 <4', pinned: ['3.0.0'] },
  undici: { range: '>=6 <8', pinned: [] },
  // issue #12 part B
  'node-serialize': { range: '>=0.0.1 <1', pinned: [] },
  /** 4.x is accepted and left unpatched: its `load` has no JavaScript types. */
  'js-yaml': { range: '>=3.0.0 <5', pinned: [] },
  libxmljs2: { range: '>=0.26.0 <1', pinned: [] },
  libxmljs: { range: '>=0.19.0 <2', pinned: [] },
  // issue #9: context propagation through promise libraries and pools (hooks/bluebird.ts, hooks/generic-pool.ts)
  bluebird: { range: '>=2.9.0 <4', pinned: [] },
  'generic-pool': { range: '>=2.4.0 <4', pinned: [] },
  // issue #9: the document graphql-js executes (persisted queries)
  graphql: { range: '>=16 <17', pinned: [] },
} as const satisfies Record<string, SupportedVersions>;

export type VersionedPackage = keyof typeof SUPPORTED_VERSIONS;

/** Where the version tests find a pinned copy: `<repo>/test/versions/<package>-<version>/node_modules/<package>`. */
export function pinnedPackageDir(repoRoot: string, pkg: VersionedPackage, version: string): string {
  return `${repoRoot}/test/versions/${pkg}-${version}/node_modules/${pkg}`;
}

/**
 * Web frameworks stepguard recognises. None is patched: every one of them serves through `node:http`, where
 * hooks/http-server.ts opens the request context, and src/context gathers the input each keeps on the raw
 * request or in the body it read. A line here makes the agent name the framework at start-up (when the app
 * loads it) and `stepguard doctor` report it; `tested` is the range the end-to-end suite runs (`test`), and a
 * copy outside it is said to be untested, not refused. `covered: false` marks a framework recognised but not
 * tested end to end (the reason is in `input`).
 */
export interface FrameworkCoverage {
  readonly package: string;
  readonly framework: string;
  readonly tested: string;
  readonly covered: boolean;
  /** What of the request is user input (or, when not covered, why). */
  readonly input: string;
  /** The end-to-end tests that prove it. */
  readonly tests: readonly string[];
}

const REST = 'test/e2e/frameworks.test.ts';
const MORE = 'test/e2e/frameworks-more.test.ts';
const LOAD = 'test/e2e/frameworks-concurrency.test.ts';

export const FRAMEWORKS: readonly FrameworkCoverage[] = [
  { package: 'express', framework: 'Express', tested: '>=4 <6', covered: true, input: 'req.params, req.query, req.body (any parser), cookies, multer files', tests: [REST, 'test/e2e/sql-attacks.test.ts'] },
  { package: 'fastify', framework: 'Fastify', tested: '>=5 <6', covered: true, input: 'URL path and query, the body as sent (request.body is parsed from it)', tests: [REST] },
  { package: 'koa', framework: 'Koa', tested: '>=2 <3', covered: true, input: 'URL path and query, the body as sent (ctx.request.body is parsed from it)', tests: [REST] },
  { package: '@nestjs/core', framework: 'NestJS', tested: '>=11 <12', covered: true, input: '@Param, @Query and @Body DTOs, on the Express and the Fastify adapter', tests: [MORE, LOAD] },
  { package: '@hapi/hapi', framework: 'Hapi', tested: '>=21 <22', covered: true, input: 'request.params, request.query, request.payload', tests: [MORE, LOAD] },
  { package: '@apollo/server', framework: 'Apollo Server', tested: '>=4 <6', covered: true, input: 'GraphQL variables and inline string literals (POST, GET, batches); Express middleware and standalone', tests: [MORE, LOAD] },
  { package: 'mercurius', framework: 'Mercurius', tested: '>=16 <17', covered: true, input: 'GraphQL variables and inline string literals (POST, GET, batches)', tests: [MORE, LOAD] },
  { package: 'next', framework: 'Next.js', tested: '>=15 <16', covered: true, input: 'API routes (pages/api): req.query (query string, dynamic segments), req.body', tests: ['test/e2e/frameworks-next.test.ts'] },
];
