import dns from 'node:dns';
import { isIP, type Socket } from 'node:net';
import {
  defineHook,
  wrap,
  inspect,
  shouldInspect,
  currentOutgoing,
  incomingServer,
  normalizeHost,
  describeUrl,
  type AnyFunction,
  type HttpOutEvent,
  type OutgoingCall,
} from '../src/hook-kit.js';

/**
 * SINK http.out, connection level: the address a socket really connects to. Every TCP/TLS connection goes
 * through `net.Socket.prototype.connect` (http and https agents, fetch and undici connectors, tls.connect).
 * Inside an outgoing HTTP call (see hooks/http-client.ts, hooks/fetch.ts) the host's DNS answer is judged
 * in the lookup that feeds this very socket — every answer, every time — so a name that resolved to a public
 * address when the app checked it and to 127.0.0.1 now (DNS rebinding) is still refused. An IP literal is
 * judged before connecting. Connections to another host than the call's (an HTTP proxy) are not judged:
 * the proxy resolves the name.
 *
 * A refusal fails the connection as a failed DNS lookup does: the socket emits 'lookup' with the error, then
 * 'error' and 'close', so every client reports it its own way (http: 'error' on the request; fetch: a
 * rejected promise with the error as `cause`).
 */

type LookupCallback = (err: NodeJS.ErrnoException | null, address?: unknown, family?: number) => void;
type Lookup = (hostname: string, options: unknown, callback: LookupCallback) => void;

function eventFor(call: OutgoingCall, address: string): HttpOutEvent {
  return { kind: 'http.out', op: call.op, url: call.url, redirectFrom: call.redirectFrom, address, server: incomingServer() };
}

/** Wraps the lookup feeding one socket: each address it returns is judged before the socket may use it. */
function guardedLookup(lookup: Lookup, call: OutgoingCall): Lookup {
  return function stepguardLookup(this: unknown, hostname: string, options: unknown, callback?: LookupCallback) {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const judge: LookupCallback = (err, address, family) => {
      if (!err) {
        const list = Array.isArray(address) ? address.map((a: { address?: unknown }) => a?.address) : [address];
        for (const a of list) {
          if (typeof a !== 'string') continue;
          const verdict = inspect(eventFor(call, a));
          if (verdict) return cb(verdict.error as NodeJS.ErrnoException);
        }
      }
      return cb(err, address, family);
    };
    return typeof options === 'function' ? (lookup as AnyFunction).call(this, hostname, judge) : lookup.call(this, hostname, options, judge);
  };
}

function failingLookup(error: Error): Lookup {
  return (_hostname, options, callback) => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    process.nextTick(cb, error);
  };
}

export const netConnect = defineHook({
  module: 'net',
  builtin: true,
  patch(exports) {
    const net = exports as typeof import('node:net') & { _normalizeArgs?: (args: unknown[]) => unknown[] };
    const normalize = net._normalizeArgs;
    if (typeof normalize !== 'function') throw new Error('net._normalizeArgs not found');
    wrap(net.Socket.prototype as unknown as { connect: AnyFunction }, 'connect', (original) =>
      function connect(this: Socket, ...args: unknown[]) {
        if (!shouldInspect()) return original.apply(this, args);
        const call = currentOutgoing();
        if (!call) return original.apply(this, args);
        const normalized = (Array.isArray(args[0]) ? args[0] : normalize(args)) as [Record<string, unknown> | undefined, unknown];
        const options = normalized[0];
        if (!options || typeof options !== 'object' || options.path != null) return original.apply(this, args);
        const host = typeof options.host === 'string' && options.host ? options.host : 'localhost';
        const callHost = call.host ? normalizeHost(call.host) : describeUrl(call.url).host;
        if (!callHost || normalizeHost(host) !== callHost) return original.apply(this, args); // a proxy: it resolves the target
        const cb = typeof normalized[1] === 'function' ? [normalized[1]] : [];

        const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
        if (isIP(bare)) {
          const verdict = inspect(eventFor(call, bare));
          if (!verdict) return original.apply(this, args);
          // Not an IP any more, so net asks the lookup — which reports the refusal like a DNS failure.
          return original.call(this, { ...options, host: `${bare}.`, lookup: failingLookup(verdict.error) }, ...cb);
        }
        const lookup = (typeof options.lookup === 'function' ? options.lookup : dns.lookup) as Lookup;
        return original.call(this, { ...options, lookup: guardedLookup(lookup, call) }, ...cb);
      },
    );
  },
});
