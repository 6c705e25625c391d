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
} as const satisfies Record<string, SupportedVersions>;

export type VersionedPackage = keyof typeof SUPPORTED_VERSIONS;

/** Where the version tests find a pinned copy: `<repo>/test/versions/<package>-<version>/node_modules/<package>`. */
export function pinnedPackageDir(repoRoot: string, pkg: VersionedPackage, version: string): string {
  return `${repoRoot}/test/versions/${pkg}-${version}/node_modules/${pkg}`;
}
