import type { SinkEvent, SinkKind } from '../events.js';
import type { AnyDetector } from './types.js';
import { whileAgentLoads } from '../instrument/loading.js';

/** The configuration detectors take (passed in, never read from module state). */
export interface DetectorSettings {
  /** Config.ssrfAllow: validated entries. */
  readonly ssrfAllow: readonly string[];
  /** Config.redirectAllow: validated entries. */
  readonly redirectAllow: readonly string[];
}

/**
 * A registry line: what the detector is called and which sink kinds it judges, with its code (and its
 * grammar: tokenizers are most of the start-up cost) behind `load`, which runs at the first sink of one of
 * its kinds. `applies` is the detector's own cheap precondition, checked before the request's input is
 * gathered: an event it says no to can hold no finding of that detector, whatever the input.
 */
interface DetectorLine {
  readonly id: string;
  readonly kinds: readonly SinkKind[];
  readonly applies?: (event: SinkEvent) => boolean;
  /** `false`: runs even when the request has no input at all (configuration checks). */
  readonly needsInputs?: boolean;
  /** False for an event judged without the request's input (nothing is gathered for it). */
  readonly usesInputs?: (event: SinkEvent) => boolean;
  /** The detector's code has `mayFind` (types.ts): a request's values can be screened before they are gathered. */
  readonly screensValues?: true;
  load(settings: DetectorSettings): AnyDetector;
}

/* eslint-disable @typescript-eslint/no-require-imports -- each detector (and its grammar) is required at its first sink */
const LINES: readonly DetectorLine[] = [
  { id: 'sql-injection', kinds: ['sql'], screensValues: true, load: () => (require('./sql-injection.js') as typeof import('./sql-injection.js')).sqlInjection as AnyDetector },
  { id: 'command-injection', kinds: ['exec'], load: () => (require('./command-injection.js') as typeof import('./command-injection.js')).commandInjection as AnyDetector },
  { id: 'path-traversal', kinds: ['fs'], load: () => (require('./path-traversal.js') as typeof import('./path-traversal.js')).pathTraversal as AnyDetector },
  { id: 'code-injection', kinds: ['code'], load: () => (require('./code-injection.js') as typeof import('./code-injection.js')).codeInjection as AnyDetector },
  {
    id: 'ssrf',
    kinds: ['http.out'],
    load: (s) => (require('./ssrf.js') as typeof import('./ssrf.js')).createSsrfDetector((require('./ssrf-allow-list.js') as typeof import('./ssrf-allow-list.js')).compileAllowList(s.ssrfAllow)) as AnyDetector,
  },
  {
    id: 'open-redirect',
    kinds: ['redirect'],
    load: (s) => {
      const m = require('./open-redirect.js') as typeof import('./open-redirect.js');
      return m.createOpenRedirectDetector(m.compileRedirectAllowList(s.redirectAllow)) as AnyDetector;
    },
  },
  {
    id: 'xss',
    kinds: ['html'],
    // Without a `<` a chunk is one text token from the data state: no input can open a tag, an attribute or a
    // script there (the detector would tokenize it and find nothing). Most responses judged are small text.
    applies: (event) => event.kind === 'html' && event.html.includes('<'),
    load: () => (require('./xss.js') as typeof import('./xss.js')).xss as AnyDetector,
  },
  { id: 'unsafe-deserialization', kinds: ['deserialize'], load: () => (require('./unsafe-deserialization.js') as typeof import('./unsafe-deserialization.js')).unsafeDeserialization as AnyDetector },
  { id: 'xxe', kinds: ['xml'], load: () => (require('./xxe.js') as typeof import('./xxe.js')).xxe as AnyDetector },
  { id: 'insecure-config', kinds: ['config'], needsInputs: false, usesInputs: (e) => e.kind === 'config' && e.check === 'hash', load: () => (require('./insecure-config.js') as typeof import('./insecure-config.js')).insecureConfig as AnyDetector },
];
/* eslint-enable @typescript-eslint/no-require-imports */

/** A detector whose code loads at its first `detect` (the same object before and after, so slots keep it). */
function lazyDetector(line: DetectorLine, settings: DetectorSettings): AnyDetector {
  let code: AnyDetector | undefined;
  return {
    id: line.id,
    kinds: line.kinds,
    ...(line.applies ? { applies: line.applies } : {}),
    ...(line.needsInputs === false ? { needsInputs: false } : {}),
    ...(line.usesInputs ? { usesInputs: line.usesInputs } : {}),
    ...(line.screensValues
      ? {
          mayFind(event: SinkEvent, value: string, isKey: boolean): boolean {
            code ??= whileAgentLoads(() => line.load(settings));
            return code.mayFind!(event, value, isKey);
          },
        }
      : {}),
    detect(event, inputs) {
      code ??= whileAgentLoads(() => line.load(settings));
      return code.detect(event, inputs);
    },
  };
}

/** THE REGISTRY of detectors: one line each. A detector runs only when some rule names its id. */
export function createDetectors(settings: DetectorSettings): readonly AnyDetector[] {
  return LINES.map((line) => lazyDetector(line, settings));
}

/** With default settings (no allow-lists): for the rules CLI, which judges rule examples without a running app. */
export const DETECTORS: readonly AnyDetector[] = createDetectors({ ssrfAllow: [], redirectAllow: [] });

export const DETECTOR_IDS: readonly string[] = LINES.map((d) => d.id);

/** Loads every detector's code now (tests compare the lines with the code they load). */
export function loadedDetectors(settings: DetectorSettings = { ssrfAllow: [], redirectAllow: [] }): readonly AnyDetector[] {
  return LINES.map((line) => line.load(settings));
}
