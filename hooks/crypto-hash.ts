import { defineHook, inspect, shouldInspect, wrap, type AnyFunction } from '../src/hook-kit.js';

/**
 * Weak password hashing (issue #12 B6): `crypto.createHash('md5' | 'sha1')` inside a request. Only then is
 * the returned Hash's `update` wrapped (on that object alone), and the text it is first fed (up to 1 KB)
 * become a `config` event; the `insecure-config` detector reports it when they hold a password-like request
 * input. Other algorithms, and calls outside requests, cost one string comparison. Never refuses.
 */

const WEAK = new Set(['md5', 'sha1', 'rsa-md5', 'rsa-sha1', 'md4']);
/** Passwords (salted or not) are short; longer data (Express hashes whole bodies for ETags) is not judged. */
const MAX_DATA = 1024;

export const cryptoHash = defineHook({
  module: 'crypto',
  builtin: true,
  patch(crypto) {
    const target = crypto as Record<string, AnyFunction>;
    wrap(target, 'createHash', (original) =>
      function createHash(this: unknown, algorithm: unknown) {
        const hash = original.apply(this, arguments as unknown as unknown[]) as { update?: AnyFunction } | undefined;
        try {
          if (typeof algorithm === 'string' && WEAK.has(algorithm.toLowerCase()) && shouldInspect() && hash && typeof hash.update === 'function') {
            const update = hash.update;
            const alg = algorithm.toLowerCase();
            let judged = false;
            hash.update = function (this: unknown, data: unknown) {
              if (!judged) {
                judged = true;
                try {
                  const text =
                    typeof data === 'string' && data.length <= MAX_DATA
                      ? data
                      : data instanceof Uint8Array && data.byteLength <= MAX_DATA
                        ? Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')
                        : undefined;
                  if (text) inspect({ kind: 'config', op: 'crypto.createHash', check: 'hash', text: alg, data: text });
                } catch {
                  // never in the way of hashing
                }
              }
              return update.apply(this, arguments as unknown as unknown[]);
            };
          }
        } catch {
          // the hash works as before
        }
        return hash;
      },
    );
  },
});
