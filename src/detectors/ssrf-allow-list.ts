import { cidrContains, parseCidr, unbracket, type Cidr } from '../grammar/ip-address.js';
import { isHostName, stripDots } from '../grammar/host.js';

/**
 * STEPGUARD_SSRF_ALLOW: internal destinations the app legitimately reaches from user input — IPs, CIDR ranges,
 * host names and `*.domain`. One parser serves both the configuration (which reports a bad entry at start-up)
 * and the detector (which receives the compiled list); nothing here is module state.
 */

export interface SsrfAllowList {
  readonly names: ReadonlySet<string>;
  /** `.svc.cluster.local` for `*.svc.cluster.local`. */
  readonly suffixes: readonly string[];
  readonly ranges: readonly Cidr[];
}

export const EMPTY_ALLOW_LIST: SsrfAllowList = Object.freeze({ names: new Set<string>(), suffixes: Object.freeze([]), ranges: Object.freeze([]) });

type Entry = { readonly kind: 'range'; readonly range: Cidr } | { readonly kind: 'name' | 'suffix'; readonly name: string };

/** One entry, parsed; or the reason it is not one (for the configuration error). */
export function parseAllowEntry(entry: string): Entry | { readonly problem: string } {
  const e = entry.trim().toLowerCase();
  if (e === '') return { problem: 'empty entry' };
  if (e.includes('/') || e.includes(':') || /^[\d.]+$/.test(e)) {
    const range = parseCidr(e);
    return range ? { kind: 'range', range } : { problem: `"${entry}" is not a valid IP address or CIDR range` };
  }
  if (e.startsWith('*.')) {
    const name = e.slice(2);
    return isHostName(name) ? { kind: 'suffix', name: '.' + stripDots(name) } : { problem: `"${entry}" is not a valid *.domain` };
  }
  return isHostName(e) ? { kind: 'name', name: stripDots(e) } : { problem: `"${entry}" is not an IP, CIDR range, host name or *.domain` };
}

/** Checks one entry: undefined when valid, else a message naming it. */
export function allowEntryProblem(entry: string): string | undefined {
  const parsed = parseAllowEntry(entry);
  return 'problem' in parsed ? parsed.problem : undefined;
}

/** Compiles validated entries (invalid ones are skipped: the configuration has reported them). */
export function compileAllowList(entries: readonly string[]): SsrfAllowList {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const ranges: Cidr[] = [];
  for (const raw of entries) {
    const entry = parseAllowEntry(raw);
    if ('problem' in entry) continue;
    if (entry.kind === 'range') ranges.push(entry.range);
    else if (entry.kind === 'suffix') suffixes.push(entry.name);
    else names.add(entry.name);
  }
  return names.size + suffixes.length + ranges.length === 0 ? EMPTY_ALLOW_LIST : { names, suffixes, ranges };
}

/** The destination (host name as requested, and/or the address connected to) is on the list. */
export function isAllowed(list: SsrfAllowList, hostname: string | undefined, address: string | undefined): boolean {
  if (list === EMPTY_ALLOW_LIST) return false;
  if (hostname) {
    const name = stripDots(unbracket(hostname));
    if (list.names.has(name)) return true;
    for (const suffix of list.suffixes) if (name.endsWith(suffix)) return true;
  }
  for (const ip of [address, hostname]) {
    if (ip && list.ranges.some((range) => cidrContains(range, ip))) return true;
  }
  return false;
}
