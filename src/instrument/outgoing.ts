import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The outgoing request (one hop of it) that the code running now belongs to. Client hooks (http, fetch,
 * undici) run the library call inside it, so the connection it opens — often on a later tick, after DNS —
 * and a redirect it follows are judged against the URL the app asked for. Only entered inside a request
 * context, so apps pay nothing for it outside one.
 */
export interface OutgoingCall {
  readonly op: string;
  /** This hop's URL, as the app (or the client, for a redirect) wrote it. */
  readonly url: string;
  /** The host the client connects to for this hop when it is not the URL's (an options object); '' otherwise. */
  readonly host: string;
  /** This hop's URL normalised by the WHATWG parser, without fragment ('' when not computed or it does not parse). */
  readonly href: string;
  /** The client follows redirects itself inside this scope (fetch): a dispatch to another URL is a hop. */
  readonly follows: boolean;
  /** The first URL of a redirect chain the client follows (undefined for the first hop). */
  readonly redirectFrom: string | undefined;
  /** The client's request object for this hop (http's ClientRequest), to recognise a redirect that follows it. */
  request?: unknown;
}

const KEY = Symbol.for('stepguard.outgoing-store');
type Holder = { [KEY]?: AsyncLocalStorage<OutgoingCall> };
const holder = globalThis as Holder;
const storage: AsyncLocalStorage<OutgoingCall> = (holder[KEY] ??= new AsyncLocalStorage<OutgoingCall>());

export function currentOutgoing(): OutgoingCall | undefined {
  return storage.getStore();
}

export function runOutgoing<R>(call: OutgoingCall, fn: () => R): R {
  return storage.run(call, fn);
}

/** A host as the WHATWG URL parser (and so http and fetch) sees it: lower case, IPv4 forms normalised, no brackets or trailing dot. */
export function normalizeHost(host: string): string {
  let h = host;
  if (h.includes(':') && !h.startsWith('[')) h = `[${h}]`;
  try {
    h = new URL(`http://${h}/`).hostname;
  } catch {
    h = h.toLowerCase();
  }
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** `href` (no fragment) and normalised host of a URL; empty strings when it does not parse. */
export function describeUrl(url: string): { href: string; host: string } {
  try {
    const parsed = new URL(url);
    parsed.hash = '';
    return { href: parsed.href, host: normalizeHost(parsed.hostname) };
  } catch {
    return { href: '', host: '' };
  }
}
