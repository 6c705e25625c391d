import type { AnyDetector } from './types.js';
import { sqlInjection } from './sql-injection.js';
import { commandInjection } from './command-injection.js';
import { pathTraversal } from './path-traversal.js';
import { codeInjection } from './code-injection.js';
import { ssrf } from './ssrf.js';
import { openRedirect } from './open-redirect.js';
import { xss } from './xss.js';
import { unsafeDeserialization } from './unsafe-deserialization.js';
import { xxe } from './xxe.js';

/** THE REGISTRY of detectors: one line each. A detector runs only when some rule names its id. */
export const DETECTORS: readonly AnyDetector[] = [sqlInjection as AnyDetector, commandInjection as AnyDetector, pathTraversal as AnyDetector, codeInjection as AnyDetector, ssrf as AnyDetector, openRedirect as AnyDetector, xss as AnyDetector, unsafeDeserialization as AnyDetector, xxe as AnyDetector];

export const DETECTOR_IDS: readonly string[] = DETECTORS.map((d) => d.id);
