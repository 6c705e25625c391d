import { isIP } from 'node:net';

/**
 * IP address text → numbers: dotted IPv4 as an unsigned 32-bit number, IPv6 as eight 16-bit words, CIDR
 * ranges, and the IPv4 address an IPv6 address carries. Strict forms only (what `net.isIP` accepts): the
 * lenient spellings browsers accept (`127.1`, `0x7f000001`) are the WHATWG URL parser's job, upstream.
 */

/** `[::1]` → `::1`; anything else unchanged. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

export function ipv4ToText(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Eight 16-bit words, or undefined. Accepts `::`, embedded IPv4 tails and zone ids (`fe80::1%eth0`). */
export function parseIPv6(text: string): number[] | undefined {
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

/** The first `bits` bits of two IPv6 addresses are equal. */
export function prefixMatches(words: readonly number[], base: readonly number[], bits: number): boolean {
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((words[i]! & mask) !== (base[i]! & mask)) return false;
  }
  return true;
}

/** The IPv4 address an IPv6 address carries and reaches: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16). */
export function embeddedIPv4(w: readonly number[]): number | undefined {
  const zeros = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && w[5] === 0xffff) return ((w[6]! << 16) | w[7]!) >>> 0;
  if (w[0] === 0x64 && w[1] === 0xff9b && zeros(2, 6)) return ((w[6]! << 16) | w[7]!) >>> 0;
  if (w[0] === 0x2002) return ((w[1]! << 16) | w[2]!) >>> 0;
  return undefined;
}

/** `10.0.0.0/8`, `fd00::/8`, or a single address (`/32`, `/128` implied). */
export type Cidr =
  | { readonly family: 4; readonly base: number; readonly mask: number }
  | { readonly family: 6; readonly base: readonly number[]; readonly bits: number };

/** Parses a CIDR range or a single address; undefined when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const ip = slash === -1 ? text : text.slice(0, slash);
  const bitsText = slash === -1 ? undefined : text.slice(slash + 1);
  if (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) return undefined;
  const family = isIP(ip);
  if (family === 4) {
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (bits > 32) return undefined;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return { family: 4, base: (ipv4ToNumber(ip)! & mask) >>> 0, mask };
  }
  if (family === 6) {
    const bits = bitsText === undefined ? 128 : Number(bitsText);
    const words = parseIPv6(ip);
    if (bits > 128 || !words) return undefined;
    return { family: 6, base: words, bits };
  }
  return undefined;
}

/** An IP literal (brackets and zone ids allowed) falls in the range; IPv6 forms carrying an IPv4 address match IPv4 ranges. */
export function cidrContains(range: Cidr, ip: string): boolean {
  const bare = unbracket(ip);
  const family = isIP(bare.includes('%') ? bare.slice(0, bare.indexOf('%')) : bare);
  if (family === 4) return range.family === 4 && ((ipv4ToNumber(bare)! & range.mask) >>> 0) === range.base;
  if (family !== 6) return false;
  const words = parseIPv6(bare);
  if (!words) return false;
  if (range.family === 6) return prefixMatches(words, range.base, range.bits);
  const mapped = embeddedIPv4(words);
  return mapped !== undefined && ((mapped & range.mask) >>> 0) === range.base;
}
