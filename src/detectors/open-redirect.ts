import type { RedirectEvent } from '../events.js';
import type { Detector, Finding } from './types.js';
import { forEachOccurrence } from '../grammar/occurrences.js';

/**
 * Open redirect: request input that decides the ORIGIN a `Location` header sends the browser to, when that
 * origin is not the app's own (the request's `Host`) nor allow-listed (STEPGUARD_REDIRECT_ALLOW).
 *
 * The browser resolves `Location` against the page URL with the WHATWG parser, which is also what decides here:
 * it strips leading/trailing control characters and spaces, drops tabs and newlines anywhere, reads `\` as `/`
 * in http(s) URLs, and takes `//host` as a new authority — so `//evil.example`, `/\evil.example`,
 * `\/evil.example`, `https:evil.example`, `/%09/evil.example` (once decoded) and `https://a@evil.example` all
 * land on `evil.example`.
 *
 * Does the input decide it? For each occurrence of the input in the header, the location is resolved again with
 * the occurrence replaced by neutral letters: if the origin changes, the input chose it. A redirect whose origin
 * the app fixed (`https://partner.example/cb?next=` + input) keeps its origin whatever the input is. An input
 * without any URL syntax (`.` `/` `\` `:` `@` `#` `?`, spaces or controls) that picks one label in an app-fixed
 * domain (`https://${tenant}.app.example`) does not decide the site, as for SSRF.
 *
 * Only `attack` findings: the redirect target is another site, and the refused response never reaches the browser.
 */

export type OpenRedirectReason = 'foreign-origin';

// ---------------------------------------------------------------------------------------------------------
// Allow-list (STEPGUARD_REDIRECT_ALLOW): other sites the app legitimately sends users to from input.

/** Compiled from `Config.redirectAllow` and passed to the detector (no module state): names and `*.domain` suffixes. */
export interface RedirectAllowList {
  readonly names: ReadonlySet<string>;
  readonly suffixes: readonly string[];
}

export function compileRedirectAllowList(entries: readonly string[]): RedirectAllowList {
  const names = new Set<string>();
  const suffixes: string[] = [];
  for (const raw of entries) {
    const e = raw.trim().toLowerCase().replace(/\.+$/, '');
    if (e === '') continue;
    if (e.startsWith('*.')) suffixes.push(e.slice(1));
    else names.add(e);
  }
  return { names, suffixes };
}

function allowed(allow: RedirectAllowList, hostname: string): boolean {
  if (allow.names.has(hostname)) return true;
  for (const suffix of allow.suffixes) if (hostname.endsWith(suffix)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------------------

const URL_SYNTAX = /[./\\:@#?\s\u0000-\u001f]/;
const MAX_OCCURRENCES = 16;
const MAX_LOCATION = 8192;

/** The page the browser is on: only its origin matters for resolving a relative `Location`. */
function baseOf(self: string | undefined): string {
  return `http://${self && /^[a-zA-Z0-9.:[\]_-]+$/.test(self) ? self : 'self.invalid'}/`;
}

/** `scheme://host:port` as the browser would navigate to, or undefined when it is no web origin. */
function originOf(location: string, base: string): { origin: string; hostname: string } | undefined {
  try {
    const url = new URL(location, base);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return { origin: url.host.toLowerCase(), hostname: url.hostname.toLowerCase().replace(/\.+$/, '') };
  } catch {
    return undefined;
  }
}

function neutral(length: number): string {
  return 'a'.repeat(length);
}

export function createOpenRedirectDetector(allow: RedirectAllowList = compileRedirectAllowList([])): Detector<RedirectEvent> {
  return {
  id: 'open-redirect',
  kinds: ['redirect'],
  detect(event, inputs) {
    const location = event.location;
    if (inputs.length === 0 || location.length === 0 || location.length > MAX_LOCATION) return [];
    const base = baseOf(event.self);
    const target = originOf(location, base);
    if (!target) return [];
    const own = originOf(base, base)!;
    // Same host (any port or scheme): the app's own site.
    if (target.hostname === own.hostname || allowed(allow, target.hostname)) return [];

    const findings: Finding[] = [];
    for (const input of inputs) {
      const v = input.value;
      if (v.length === 0 || v.length > location.length) continue;
      const first = location.indexOf(v);
      if (first === -1) continue;
      let decided: { start: number; end: number } | undefined;
      let seen = 0;
      forEachOccurrence(location, v, first, (start) => {
        const end = start + v.length;
        const without = originOf(location.slice(0, start) + neutral(v.length) + location.slice(end), base);
        if (without?.origin !== target.origin && (URL_SYNTAX.test(v) || coversHost(location, start, end, target.hostname))) {
          decided = { start, end };
          return false;
        }
        return ++seen < MAX_OCCURRENCES;
      });
      if (decided) {
        findings.push({ detector: 'open-redirect', kind: 'attack', input, start: decided.start, end: decided.end, reason: 'foreign-origin' satisfies OpenRedirectReason });
        break;
      }
    }
    return findings;
  },
  };
}

/** Without an allow-list (the rules CLI and tests). */
export const openRedirect: Detector<RedirectEvent> = createOpenRedirectDetector();

/** The occurrence spells the whole host name (an input without URL syntax that is the host, e.g. `?host=evil`). */
function coversHost(location: string, start: number, end: number, hostname: string): boolean {
  return location.slice(start, end).toLowerCase().replace(/\.+$/, '') === hostname;
}

/** Checks one allow-list entry (a host name or `*.domain`); returns an error text or undefined. */
export function redirectAllowEntryProblem(entry: string): string | undefined {
  const e = entry.trim().toLowerCase();
  const name = e.startsWith('*.') ? e.slice(2) : e;
  return /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/.test(name) ? undefined : `"${entry}" is not a host name or *.domain`;
}
