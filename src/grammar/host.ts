import { isIP } from 'node:net';
import { unbracket } from './ip-address.js';

/**
 * Hosts in URLs: where the host is in the text as the app wrote it (raw offsets, for matching request input
 * against it), where the request really goes (the WHATWG parser's normalised host and port — the parser http
 * and fetch use), and the host a bare value names once parsed as a URL.
 */

/** Lower case, without the trailing dots DNS ignores (`LOCALHOST.` → `localhost`). */
export function stripDots(name: string): string {
  let end = name.length;
  while (end > 0 && name.charCodeAt(end - 1) === 46) end--;
  return end === name.length ? name.toLowerCase() : name.slice(0, end).toLowerCase();
}

/** A DNS name (labels of letters, digits, `_` and inner `-`), optionally with the trailing dot. */
export function isHostName(name: string): boolean {
  const labels = (name.endsWith('.') ? name.slice(0, -1) : name).split('.');
  return labels.every((label) => /^[a-z0-9_]([a-z0-9_-]{0,251}[a-z0-9_])?$/i.test(label));
}

/** Where the host is in the text (raw offsets), as the WHATWG parser splits an authority. */
export interface HostSpan {
  readonly start: number;
  readonly end: number;
}

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

export function rawHostSpan(url: string): HostSpan | undefined {
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

export interface Destination {
  /** WHATWG-normalised host name (IPv6 without brackets), or the raw host when the URL does not parse. */
  readonly hostname: string;
  readonly port: number;
  readonly span: HostSpan | undefined;
  readonly isIp: boolean;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 };

/** Where a request for `url` goes; undefined for schemes that reach no network host (data:, blob:, file:). */
export function destinationOf(url: string): Destination | undefined {
  const span = rawHostSpan(url);
  try {
    const parsed = new URL(url);
    const defaultPort = DEFAULT_PORTS[parsed.protocol];
    if (defaultPort === undefined) return undefined;
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

const MAX_URL_VALUE = 2048;

/** The host (and port, '' if none) a value names once parsed as a URL, or as `http://` + value; null if none. */
export function hostNamedBy(value: string): { hostname: string; port: string } | null {
  if (value.length < 1 || value.length > MAX_URL_VALUE || /[\s\u0000-\u001f]/.test(value)) return null;
  try {
    const hasScheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(value);
    const parsed = new URL(hasScheme ? value : isIP(value) === 6 ? `http://[${value}]` : `http://${value}`);
    return parsed.hostname === '' ? null : { hostname: stripDots(unbracket(parsed.hostname)), port: parsed.port };
  } catch {
    return null;
  }
}
