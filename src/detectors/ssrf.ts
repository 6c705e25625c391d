import { isIP } from 'node:net';
import type { HttpOutEvent, UserInput } from '../events.js';
import type { Detector, Finding } from './types.js';

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
// Allow-list (STEPGUARD_SSRF_ALLOW): destinations the app legitimately reaches from user input.

interface AllowList {
  readonly names: ReadonlySet<string>;
  readonly suffixes: readonly string[];
  readonly v4: readonly { readonly base: number; readonly mask: number }[];
  readonly v6: readonly { readonly base: readonly number[]; readonly bits: number }[];
}

const EMPTY_ALLOW: AllowList = { names: new Set(), suffixes: [], v4: [], v6: [] };
let allowList: AllowList = EMPTY_ALLOW;

/** Checks one allow-list entry: an IP, a CIDR range, a host name or `*.domain`. Returns an error text or undefined. */
export function allowEntryProblem(entry: string): string | undefined {
  const e = entry.trim().toLowerCase();
  if (e === '') return 'empty entry';
  const slash = e.indexOf('/');
  if (slash !== -1) {
    const ip = e.slice(0, slash);
    const bits = e.slice(slash + 1);
    const family = isIP(ip);
    if (!family || !/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return `"${entry}" is not a valid CIDR range`;
    return undefined;
  }
  if (isIP(e)) return undefined;
  const name = e.startsWith('*.') ? e.slice(2) : e;
  return /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/.test(name) ? undefined : `"${entry}" is not an IP, CIDR range, host name or *.domain`;
}

/** Installed by the agent from `Config.ssrfAllow`. Invalid entries are skipped (config validation reports them). */
export function setSsrfAllowList(entries: readonly string[]): void {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const v4: { base: number; mask: number }[] = [];
  const v6: { base: number[]; bits: number }[] = [];
  for (const raw of entries) {
    if (allowEntryProblem(raw)) continue;
    const e = raw.trim().toLowerCase();
    const slash = e.indexOf('/');
    const ip = slash === -1 ? e : e.slice(0, slash);
    const family = isIP(ip);
    if (family === 4) {
      const bits = slash === -1 ? 32 : Number(e.slice(slash + 1));
      const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
      v4.push({ base: (ipv4ToNumber(ip)! & mask) >>> 0, mask });
    } else if (family === 6) {
      v6.push({ base: parseIPv6(ip)!, bits: slash === -1 ? 128 : Number(e.slice(slash + 1)) });
    } else if (e.startsWith('*.')) {
      suffixes.push('.' + stripDots(e.slice(2)));
    } else {
      names.add(stripDots(e));
    }
  }
  allowList = names.size + suffixes.length + v4.length + v6.length === 0 ? EMPTY_ALLOW : { names, suffixes, v4, v6 };
}

function allowed(hostname: string | undefined, address: string | undefined): boolean {
  if (allowList === EMPTY_ALLOW) return false;
  if (hostname) {
    const name = stripDots(unbracket(hostname));
    if (allowList.names.has(name)) return true;
    for (const suffix of allowList.suffixes) if (name.endsWith(suffix)) return true;
  }
  for (const ip of [address, hostname]) {
    if (!ip) continue;
    const bare = unbracket(ip);
    const family = isIP(bare);
    if (family === 4) {
      const n = ipv4ToNumber(bare)!;
      if (allowList.v4.some((r) => ((n & r.mask) >>> 0) === r.base)) return true;
    } else if (family === 6) {
      const words = parseIPv6(bare);
      if (words && allowList.v6.some((r) => prefixMatches(words, r.base, r.bits))) return true;
      const mapped = words && embeddedIPv4(words);
      if (mapped && allowList.v4.some((r) => ((mapped & r.mask) >>> 0) === r.base)) return true;
    }
  }
  return false;
}

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

function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

function classifyV4(n: number): SsrfRange | undefined {
  const dotted = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  if (METADATA_V4.has(dotted)) return 'metadata';
  for (const [base, bits, range] of V4_RANGES) {
    const mask = (~0 << (32 - bits)) >>> 0;
    if (((n & mask) >>> 0) === base) return range;
  }
  return undefined;
}

/** Eight 16-bit words, or undefined. Accepts `::`, embedded IPv4 tails and zone ids (`fe80::1%eth0`). */
function parseIPv6(text: string): number[] | undefined {
  let s = text;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (isIP(s) !== 6) return undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    const v4 = ipv4ToNumber(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const doubleColon = s.indexOf('::');
  let words: number[];
  if (doubleColon === -1) {
    words = parse(s);
  } else {
    const head = parse(s.slice(0, doubleColon));
    const rest = parse(s.slice(doubleColon + 2));
    const fill = 8 - head.length - rest.length;
    if (fill < 0) return undefined;
    words = [...head, ...new Array<number>(fill).fill(0), ...rest];
  }
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}

function prefixMatches(words: readonly number[], base: readonly number[], bits: number): boolean {
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((words[i]! & mask) !== (base[i]! & mask)) return false;
  }
  return true;
}

/** The IPv4 address an IPv6 address carries and reaches: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16). */
function embeddedIPv4(w: readonly number[]): number | undefined {
  const zeros = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && w[5] === 0xffff) return ((w[6]! << 16) | w[7]!) >>> 0;
  if (w[0] === 0x64 && w[1] === 0xff9b && zeros(2, 6)) return ((w[6]! << 16) | w[7]!) >>> 0;
  if (w[0] === 0x2002) return ((w[1]! << 16) | w[2]!) >>> 0;
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
// URL structure.

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function stripDots(name: string): string {
  let end = name.length;
  while (end > 0 && name.charCodeAt(end - 1) === 46) end--;
  return end === name.length ? name.toLowerCase() : name.slice(0, end).toLowerCase();
}

/** Where the host is in the text (raw offsets), as the WHATWG parser splits an authority. */
interface HostSpan {
  readonly start: number;
  readonly end: number;
}

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

function rawHostSpan(url: string): HostSpan | undefined {
  const scheme = SCHEME.exec(url);
  if (!scheme) return undefined;
  let i = scheme[0].length;
  while (url[i] === '/' || url[i] === '\\') i++;
  let end = i;
  while (end < url.length && !'/\\?#'.includes(url[end]!)) end++;
  const at = url.lastIndexOf('@', end - 1);
  const start = at >= i ? at + 1 : i;
  let hostEnd = end;
  if (url[start] === '[') {
    const close = url.indexOf(']', start);
    if (close !== -1 && close < end) hostEnd = close + 1;
  } else {
    const colon = url.indexOf(':', start);
    if (colon !== -1 && colon < end) hostEnd = colon;
  }
  return hostEnd > start ? { start, end: hostEnd } : undefined;
}

interface Destination {
  /** WHATWG-normalised host name (IPv6 without brackets), or the raw host when the URL does not parse. */
  readonly hostname: string;
  readonly port: number;
  readonly span: HostSpan | undefined;
  readonly isIp: boolean;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 };

function destinationOf(url: string): Destination | undefined {
  const span = rawHostSpan(url);
  try {
    const parsed = new URL(url);
    const defaultPort = DEFAULT_PORTS[parsed.protocol];
    if (defaultPort === undefined) return undefined; // data:, blob:, file: … never reach a network host
    const hostname = unbracket(parsed.hostname);
    if (hostname === '') return undefined;
    return { hostname, port: parsed.port === '' ? defaultPort : Number(parsed.port), span, isIp: isIP(hostname) !== 0 };
  } catch {
    // Not a WHATWG URL (an options object http turned into text, with a host getaddrinfo may still accept).
    if (!span) return undefined;
    const hostname = unbracket(url.slice(span.start, span.end)).toLowerCase();
    const portMatch = /^:(\d{1,5})/.exec(url.slice(span.end));
    const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
    return { hostname, port: portMatch ? Number(portMatch[1]) : (DEFAULT_PORTS[scheme] ?? 80), span, isIp: isIP(hostname) !== 0 };
  }
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
const MAX_URL_INPUT = 2048;

/** Hostname an input names once parsed as a URL (or as `http://` + input), memoised per input object. */
const parsedInputs = new WeakMap<UserInput, { hostname: string; port: string } | null>();

function hostOfInput(input: UserInput): { hostname: string; port: string } | null {
  const memo = parsedInputs.get(input);
  if (memo !== undefined) return memo;
  let result: { hostname: string; port: string } | null = null;
  const v = input.value;
  if (v.length >= 1 && v.length <= MAX_URL_INPUT && !/[\s\u0000-\u001f]/.test(v)) {
    try {
      const hasScheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(v);
      const parsed = new URL(hasScheme ? v : isIP(v) === 6 ? `http://[${v}]` : `http://${v}`);
      if (parsed.hostname !== '') result = { hostname: stripDots(unbracket(parsed.hostname)), port: parsed.port };
    } catch {
      result = null;
    }
  }
  parsedInputs.set(input, result);
  return result;
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

export const ssrf: Detector<HttpOutEvent> = {
  id: 'ssrf',
  kinds: ['http.out'],
  detect(event, inputs) {
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
    if (allowed(dest.hostname, address) || isSelf(event, dest, range, address)) return [];
    const how = viaRedirect ? 'redirect:' : address !== undefined && !dest.isIp ? 'dns:' : '';
    return [{ ...base, kind: 'attack', reason: `${how}${range}` } satisfies Finding];
  },
};
