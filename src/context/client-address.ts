/**
 * The client address of a request: the socket peer, or — when STEPGUARD_TRUSTED_PROXIES says the peer is a proxy we
 * trust — the address that proxy forwarded in `X-Forwarded-For` (or RFC 7239 `Forwarded`, whichever header
 * STEPGUARD_TRUSTED_PROXY_HEADER names). The chain is walked from the right (the hop closest to us) and only through
 * trusted hops, so whatever a client writes into the header itself is never believed: it sits to the left of the
 * address our own proxy appended. Without the setting, headers are never read.
 *
 * Computed once per request, on first use, and cached on the request context; the walk is bounded (at most
 * MAX_HOPS entries from the right end of at most MAX_HEADER_CHARS characters) and uses no regular expressions.
 */
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { cidrContains, parseCidr, type Cidr } from '../grammar/ip-address.js';

export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

export type TrustedProxies =
  | { readonly kind: 'ranges'; readonly ranges: readonly Cidr[]; readonly header: ForwardedHeader }
  | { readonly kind: 'hops'; readonly hops: number; readonly header: ForwardedHeader };

/** What `clientAddress` needs from a request context (kept structural so this file stays free of the context class). */
export interface AddressSource {
  readonly req: IncomingMessage;
  readonly slots: Map<symbol, unknown>;
  readonly trustedProxies: TrustedProxies | undefined;
}

const CACHE = Symbol('stepguard.client-address');
const MAX_HOPS = 32;
const MAX_HEADER_CHARS = 4096;
const MAX_HOP_COUNT = 16;
const EXPECTED = 'a hop count (1, 2…) or a comma-separated list of proxy addresses / CIDR ranges';

/** The client address (IPv4-mapped IPv6 spelled as IPv4), or undefined when the socket has none. Cached per request. */
export function clientAddress(ctx: AddressSource): string | undefined {
  const cached = ctx.slots.get(CACHE) as { value: string | undefined } | undefined;
  if (cached) return cached.value;
  const value = resolveClientAddress(ctx.req, ctx.trustedProxies);
  ctx.slots.set(CACHE, { value });
  return value;
}

/** The uncached computation (exported for unit tests and the programmatic API). */
export function resolveClientAddress(req: IncomingMessage, trusted: TrustedProxies | undefined): string | undefined {
  const raw = req.socket?.remoteAddress;
  const peer = typeof raw === 'string' ? normalizeAddress(raw) : undefined;
  if (peer === undefined || trusted === undefined) return peer;
  const header = req.headers[trusted.header];
  const text = Array.isArray(header) ? header.join(',') : header;
  if (typeof text !== 'string' || text === '') return peer;
  const chain = trusted.header === 'forwarded' ? forwardedFor(text) : xForwardedFor(text);
  if (trusted.kind === 'hops') {
    // `hops` proxies in front of us: the peer is the last one; each appended the address it saw.
    let address = peer;
    for (let i = 0; i < trusted.hops && i < chain.length; i++) {
      const next = chain[chain.length - 1 - i];
      if (next === undefined) break; // garbage a proxy passed on: stop at the last address we can name
      address = next;
    }
    return address;
  }
  let address = peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    if (!isTrusted(trusted.ranges, address)) return address;
    const next = chain[i];
    if (next === undefined) return address;
    address = next;
  }
  return address;
}

function isTrusted(ranges: readonly Cidr[], address: string): boolean {
  for (const range of ranges) if (cidrContains(range, address)) return true;
  return false;
}

/**
 * `STEPGUARD_TRUSTED_PROXIES`: a hop count (`1`, `2`…) or a comma list of addresses and CIDR ranges (IPv4 and IPv6),
 * plus the header to read. A problem is a sentence naming the bad entry and the fix.
 */
export function parseTrustedProxies(value: unknown, header: ForwardedHeader = 'x-forwarded-for'): { ok: true; value: TrustedProxies } | { ok: false; problem: string } {
  const list = typeof value === 'string' ? value.split(',').map((p) => p.trim()).filter((p) => p !== '') : value;
  if (typeof value === 'number') return hopCount(String(value), header);
  if (!Array.isArray(list) || list.length === 0 || !list.every((p) => typeof p === 'string')) {
    return { ok: false, problem: `${EXPECTED} (e.g. 1, or 10.0.0.0/8,::1)` };
  }
  if (list.length === 1 && /^\d+$/.test(list[0] as string)) return hopCount(list[0] as string, header);
  const ranges: Cidr[] = [];
  for (const entry of list as string[]) {
    const range = parseCidr(entry.trim());
    if (range === undefined) {
      return { ok: false, problem: `${EXPECTED}; "${entry}" is neither an IP address nor a CIDR range (write e.g. 10.0.0.1, 10.0.0.0/8 or fd00::/8)` };
    }
    ranges.push(range);
  }
  return { ok: true, value: Object.freeze({ kind: 'ranges', ranges: Object.freeze(ranges), header }) };
}

function hopCount(text: string, header: ForwardedHeader): { ok: true; value: TrustedProxies } | { ok: false; problem: string } {
  const hops = Number(text);
  if (!Number.isInteger(hops) || hops < 1 || hops > MAX_HOP_COUNT) {
    return { ok: false, problem: `${EXPECTED}; a hop count is the number of proxies in front of the app, 1 to ${MAX_HOP_COUNT} (e.g. 1)` };
  }
  return { ok: true, value: Object.freeze({ kind: 'hops', hops, header }) };
}

// --- header parsing ------------------------------------------------------------------------------------------------

/** The right end of a long header: an entry cut in half becomes garbage, which stops the walk there. */
function rightEnd(text: string): string {
  return text.length > MAX_HEADER_CHARS ? text.slice(text.length - MAX_HEADER_CHARS) : text;
}

/** `X-Forwarded-For: client, proxy1, proxy2` → addresses, left to right; undefined for an entry that is not one. */
export function xForwardedFor(text: string): Array<string | undefined> {
  const parts = rightEnd(text).split(',');
  const from = Math.max(0, parts.length - MAX_HOPS);
  const out: Array<string | undefined> = [];
  for (let i = from; i < parts.length; i++) out.push(nodeAddress((parts[i] as string).trim()));
  return out;
}

/**
 * RFC 7239 `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"` → the `for=` address of each element,
 * left to right; undefined when an element has none or names `unknown` / an obfuscated id (`_hidden`).
 */
export function forwardedFor(text: string): Array<string | undefined> {
  const s = rightEnd(text);
  const out: Array<string | undefined> = [];
  let i = 0;
  let element: string | undefined;
  let sawFor = false;
  const endElement = () => {
    out.push(sawFor ? element : undefined);
    element = undefined;
    sawFor = false;
  };
  while (i <= s.length) {
    // one pair: name=value, value a token or a quoted-string
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ';')) i++;
    if (i >= s.length) break;
    if (s[i] === ',') {
      endElement();
      i++;
      continue;
    }
    const nameStart = i;
    while (i < s.length && s[i] !== '=' && s[i] !== ';' && s[i] !== ',') i++;
    const name = s.slice(nameStart, i).trim().toLowerCase();
    let value = '';
    if (s[i] === '=') {
      i++;
      if (s[i] === '"') {
        i++;
        let v = '';
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          v += s[i];
          i++;
        }
        i++; // closing quote
        value = v;
      } else {
        const start = i;
        while (i < s.length && s[i] !== ';' && s[i] !== ',') i++;
        value = s.slice(start, i).trim();
      }
    }
    if (name === 'for') {
      // A second for= in one element is malformed: treat the element as garbage.
      element = sawFor ? undefined : nodeAddress(value);
      sawFor = true;
    }
  }
  endElement();
  return out.length > MAX_HOPS ? out.slice(out.length - MAX_HOPS) : out;
}

/** `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:443` → the address (IPv4-mapped IPv6 as IPv4); undefined otherwise. */
function nodeAddress(text: string): string | undefined {
  if (text === '' || text.length > 64) return undefined;
  let host = text;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close === -1) return undefined;
    const rest = host.slice(close + 1);
    if (rest !== '' && !isPort(rest)) return undefined;
    host = host.slice(1, close);
    return isIP(host) === 6 ? normalizeAddress(host) : undefined;
  }
  const colon = host.indexOf(':');
  if (colon !== -1 && host.indexOf(':', colon + 1) === -1) {
    // exactly one colon: IPv4 with a port
    if (!isPort(host.slice(colon))) return undefined;
    host = host.slice(0, colon);
    return isIP(host) === 4 ? host : undefined;
  }
  return isIP(host) !== 0 ? normalizeAddress(host) : undefined;
}

function isPort(text: string): boolean {
  if (text.length < 2 || text.length > 6 || text[0] !== ':') return false;
  for (let i = 1; i < text.length; i++) if (text.charCodeAt(i) < 48 || text.charCodeAt(i) > 57) return false;
  return true;
}

/** `::ffff:10.0.0.1` (how a dual-stack socket reports an IPv4 peer) → `10.0.0.1`; IPv6 in lower case. */
export function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  return lower;
}
