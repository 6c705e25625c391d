import type { AnyDetector } from './types.js';
import { sqlInjection } from './sql-injection.js';
import { commandInjection } from './command-injection.js';
import { pathTraversal } from './path-traversal.js';
import { codeInjection } from './code-injection.js';
import { createSsrfDetector } from './ssrf.js';
import { compileAllowList } from './ssrf-allow-list.js';
import { compileRedirectAllowList, createOpenRedirectDetector } from './open-redirect.js';
import { xss } from './xss.js';
import { unsafeDeserialization } from './unsafe-deserialization.js';
import { xxe } from './xxe.js';
import { insecureConfig } from './insecure-config.js';

/** The configuration detectors take (passed in, never read from module state). */
export interface DetectorSettings {
  /** Config.ssrfAllow: validated entries. */
  readonly ssrfAllow: readonly string[];
  /** Config.redirectAllow: validated entries. */
  readonly redirectAllow: readonly string[];
}

/** THE REGISTRY of detectors: one line each. A detector runs only when some rule names its id. */
export function createDetectors(settings: DetectorSettings): readonly AnyDetector[] {
  return [
    sqlInjection as AnyDetector,
    commandInjection as AnyDetector,
    pathTraversal as AnyDetector,
    codeInjection as AnyDetector,
    createSsrfDetector(compileAllowList(settings.ssrfAllow)) as AnyDetector,
    createOpenRedirectDetector(compileRedirectAllowList(settings.redirectAllow)) as AnyDetector,
    xss as AnyDetector,
    unsafeDeserialization as AnyDetector,
    xxe as AnyDetector,
    insecureConfig as AnyDetector,
  ];
}

/** With default settings (no allow-lists): for the rules CLI, which judges rule examples without a running app. */
export const DETECTORS: readonly AnyDetector[] = createDetectors({ ssrfAllow: [], redirectAllow: [] });

export const DETECTOR_IDS: readonly string[] = DETECTORS.map((d) => d.id);
