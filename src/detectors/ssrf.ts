import { isIP } from 'node:net';
import type { HttpOutEvent, UserInput } from '../events.js';
import type { Detector, Finding } from './types.js';
import { embeddedIPv4, ipv4ToNumber, ipv4ToText, parseIPv6, unbracket } from '../grammar/ip-address.js';
import { destinationOf, hostNamedBy, stripDots, type Destination } from '../grammar/host.js';
import { EMPTY_ALLOW_LIST, isAllowed, type SsrfAllowList } from './ssrf-allow-list.js';

/**
 * Server-side request forgery: request input that decides WHERE an outgoing request goes (the whole URL, or
 * its host) sending it to an address only the server can reach — loopback, RFC 1918, link-local, CGNAT,
 * unique-local IPv6, unspecified, reserved, or a cloud metadata service.
 *
 * Who decides the host? An input decides it when, in the URL the app passed:
 *  - one of its occurrences covers the whole host (`?url=http://x/`, `?host=x`);
 *  - an occurrence reaching into the host carries authority syntax (`@`, `#`, `/`, `\`, `?`, `[`): it reshaped
 *    the authority (`http://api.example.com` + `@127.0.0.1/`);
 *  - an occurrence is a multi-label suffix of the host (`http://cdn.` + `evil.example`): it picks the domain
 *    and so its DNS;
 *  - or, after WHATWG URL normalisation, the input names the same host (the app ran `new URL(input)` first,
 *    so `2130706433` became `127.0.0.1`, `LOCALHOST` became `localhost`). A port the input names must match.
 * A single label picked inside an app-fixed domain (`http://${tenant}.svc.internal`) does not decide the host:
 * the app chose the domain.
 *
 * Where does it go? The host as the WHATWG parser normalises it (the parser http and fetch use: `127.1`,
 * `0x7f000001`, `017700000001`, `0177.0.0.1` and trailing dots all become `127.0.0.1`), or — at connection
 * time — the address DNS actually returned (`event.address`), which defeats DNS rebinding. Redirects followed
 * by the client carry the chain's first URL (`event.redirectFrom`): when the input decided that one, every hop
 * is judged the same way.
 *
 * `attack`: the destination is internal (and neither allow-listed nor this server itself).
 * `vulnerability`: the input decides the host and it is public — reported, never blocked.
 */

export type SsrfRange =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'unique-local'
  | 'unspecified'
  | 'metadata'
  | 'reserved';

/** Finding reasons: a range (`loopback`), qualified by how it was reached (`dns:private`, `redirect:metadata`); `user-host` for vulnerabilities. */
export type SsrfReason = SsrfRange | `dns:${SsrfRange}` | `redirect:${SsrfRange}` | 'user-host' | 'redirect:user-host';

// ---------------------------------------------------------------------------------------------------------
// Address ranges.

const METADATA_V4 = new Set(['169.254.169.254', '169.254.170.2', '100.100.100.200', '168.63.129.16', '192.0.0.192']);
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);
const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback']);

/** `[a, b)` IPv4 ranges (as unsigned 32-bit numbers) that are not reachable from the internet. */
const V4_RANGES: readonly [number, number, SsrfRange][] = [
  [cidr4(0, 0, 0, 0), 8, 'unspecified'],
  [cidr4(10, 0, 0, 0), 8, 'private'],
  [cidr4(100, 64, 0, 0), 10, 'cgnat'],
  [cidr4(127, 0, 0, 0), 8, 'loopback'],
  [cidr4(169, 254, 0, 0), 16, 'link-local'],
  [cidr4(172, 16, 0, 0), 12, 'private'],
  [cidr4(192, 0, 0, 0), 24, 'reserved'],
  [cidr4(192, 168, 0, 0), 16, 'private'],
  [cidr4(198, 18, 0, 0), 15, 'reserved'],
  [cidr4(224, 0, 0, 0), 3, 'reserved'], // multicast, class E and broadcast
];

function cidr4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function classifyV4(n: number): SsrfRange | undefined {
  if (METADATA_V4.has(ipv4ToText(n))) return 'metadata';
  for (const [base, bits, range] of V4_RANGES) {
    const mask = (~0 << (32 - bits)) >>> 0;
    if (((n & mask) >>> 0) === base) return range;
  }
  return undefined;
}

function classifyV6(w: readonly number[]): SsrfRange | undefined {
  const v4 = embeddedIPv4(w);
  if (v4 !== undefined) return classifyV4(v4);
  if (w.every((x) => x === 0)) return 'unspecified';
  if (w.slice(0, 7).every((x) => x === 0) && w[7] === 1) return 'loopback';
  if (w[0] === 0xfd00 && w[1] === 0x0ec2 && w.slice(2, 7).every((x) => x === 0) && w[7] === 0x254) return 'metadata';
  if ((w[0]! & 0xfe00) === 0xfc00) return 'unique-local';
  if ((w[0]! & 0xffc0) === 0xfe80) return 'link-local';
  if ((w[0]! & 0xffc0) === 0xfec0) return 'private'; // deprecated site-local
  if ((w[0]! & 0xff00) === 0xff00) return 'reserved'; // multicast
  if (w.slice(0, 6).every((x) => x === 0)) return 'reserved'; // IPv4-compatible ::a.b.c.d (deprecated)
  if (w[0] === 0x64 && w[1] === 0xff9b && w[2] === 1) return 'private'; // local-use NAT64
  if (w[0] === 0x100 && w.slice(1, 4).every((x) => x === 0)) return 'reserved'; // discard-only
  return undefined;
}

/** Range of an IP literal (dotted IPv4 or IPv6, brackets allowed); undefined for public addresses and non-IPs. */
export function classifyAddress(ip: string): SsrfRange | undefined {
  const bare = unbracket(ip);
  const family = isIP(bare.includes('%') ? bare.slice(0, bare.indexOf('%')) : bare);
  if (family === 4) return classifyV4(ipv4ToNumber(bare)!);
  if (family === 6) {
    const words = parseIPv6(bare);
    return words ? classifyV6(words) : undefined;
  }
  return undefined;
}

/** Names that resolve to internal addresses everywhere, without asking DNS. */
function classifyName(hostname: string): SsrfRange | undefined {
  const name = stripDots(hostname);
  if (LOOPBACK_NAMES.has(name) || name.endsWith('.localhost')) return 'loopback';
  if (METADATA_NAMES.has(name)) return 'metadata';
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Control: does some input decide the host?

interface Control {
  readonly input: UserInput;
  readonly start: number;
  readonly end: number;
}

const AUTHORITY_SYNTAX = /[@#/\\?[]/;
const MAX_OCCURRENCES = 16;
const IP_CHAR = /[0-9:]/;

/** Hostname an input names once parsed as a URL (or as `http://` + input), memoised per input object. */
const parsedInputs = new WeakMap<UserInput, { hostname: string; port: string } | null>();

function hostOfInput(input: UserInput): { hostname: string; port: string } | null {
  let named = parsedInputs.get(input);
  if (named === undefined) {
    named = hostNamedBy(input.value);
    parsedInputs.set(input, named);
  }
  return named;
}

function controlOf(url: string, dest: Destination, inputs: readonly UserInput[]): Control | undefined {
  const span = dest.span;
  const destName = stripDots(dest.hostname);
  const singleLabel = !dest.isIp && !destName.includes('.');
  const bracketed = span !== undefined && url.charCodeAt(span.start) === 91; // [IPv6]
  const firstLabel = destName.split('.', 1)[0]!;
  const idn = destName.includes('xn--'); // the input spelled it in Unicode
  for (const input of inputs) {
    const v = input.value;
    // A URL path segment or a parameter name equal to a one-label service name (`/health/redis` while the app
    // calls http://redis:8080) is a coincidence far more often than a choice.
    if (singleLabel && (input.isKey || input.source === 'path') && !AUTHORITY_SYNTAX.test(v)) continue;
    if (span && v.length <= url.length) {
      let from = 0;
      for (let n = 0; n < MAX_OCCURRENCES; n++) {
        const s = url.indexOf(v, from);
        if (s === -1) break;
        from = s + 1;
        const e = s + v.length;
        if (e <= span.start || s >= span.end) continue;
        if (s <= span.start && e >= span.end) return { input, start: s, end: e };
        if (bracketed && s <= span.start + 1 && e >= span.end - 1) return { input, start: s, end: e };
        if (AUTHORITY_SYNTAX.test(v) && v.length >= 2) return { input, start: s, end: e };
        if (s > span.start && e >= span.end && url.charCodeAt(s - 1) === 46 && url.slice(s, span.end).includes('.')) {
          return { input, start: s, end: e };
        }
      }
    }
    // Normalised comparison: the app parsed the input itself before passing a URL object. Cheap filter
    // first: every spelling of an IP has a digit or a colon; a name's first label survives (the collector
    // also holds the percent-decoded form of each input).
    if (dest.isIp ? !IP_CHAR.test(v) : !idn && !v.toLowerCase().includes(firstLabel)) continue;
    const named = hostOfInput(input);
    if (named && named.hostname === destName && (named.port === '' || Number(named.port) === dest.port)) {
      return { input, start: span?.start ?? 0, end: span?.end ?? 0 };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------

function isSelf(event: HttpOutEvent, dest: Destination, range: SsrfRange, address: string | undefined): boolean {
  const server = event.server;
  if (!server || server.port !== dest.port) return false;
  if (range === 'loopback' || range === 'unspecified') return true;
  const own = server.address?.startsWith('::ffff:') ? server.address.slice(7) : server.address;
  const target = address ?? (dest.isIp ? dest.hostname : undefined);
  return own !== undefined && target !== undefined && (target === own || target === `::ffff:${own}`);
}

/** The detector, judging against the given allow-list (from `Config.ssrfAllow`, compiled by ssrf-allow-list.ts). */
export function createSsrfDetector(allowList: SsrfAllowList = EMPTY_ALLOW_LIST): Detector<HttpOutEvent> {
  return {
    id: 'ssrf',
    kinds: ['http.out'],
    detect: (event, inputs) => detectSsrf(event, inputs, allowList),
  };
}

/** With an empty allow-list: what the rules CLI and the tests use. */
export const ssrf: Detector<HttpOutEvent> = createSsrfDetector();

function detectSsrf(event: HttpOutEvent, inputs: readonly UserInput[], allowList: SsrfAllowList): Finding[] {
  if (inputs.length === 0) return [];
  const dest = destinationOf(event.url);
  if (!dest) return [];

  let control = controlOf(event.url, dest, inputs);
  let viaRedirect = false;
  if (!control && event.redirectFrom) {
    const origin = destinationOf(event.redirectFrom);
    const originControl = origin && controlOf(event.redirectFrom, origin, inputs);
    if (originControl) {
      // The input is in the first URL; point the finding at this hop's host.
      control = { input: originControl.input, start: dest.span?.start ?? 0, end: dest.span?.end ?? 0 };
      viaRedirect = true;
    }
  }
  if (!control) return [];

  const address = event.address ? unbracket(event.address) : undefined;
  let range: SsrfRange | undefined;
  let resolved: boolean;
  if (address !== undefined) {
    range = classifyAddress(address) ?? (dest.isIp ? undefined : classifyName(dest.hostname));
    resolved = true;
  } else if (dest.isIp) {
    range = classifyAddress(dest.hostname);
    resolved = true;
  } else {
    range = classifyName(dest.hostname);
    resolved = range !== undefined;
  }
  if (!resolved) return []; // a name: judged again once DNS answers

  const base = { detector: 'ssrf', input: control.input, start: control.start, end: control.end };
  if (range === undefined) {
    return [{ ...base, kind: 'vulnerability', reason: viaRedirect ? 'redirect:user-host' : 'user-host' } satisfies Finding];
  }
  if (isAllowed(allowList, dest.hostname, address) || isSelf(event, dest, range, address)) return [];
  const how = viaRedirect ? 'redirect:' : address !== undefined && !dest.isIp ? 'dns:' : '';
  return [{ ...base, kind: 'attack', reason: `${how}${range}` } satisfies Finding];
}
