import type { IncomingMessage, ServerResponse } from 'node:http';
import { defineHook, wrap, serveRequest, type AnyFunction } from '../src/hook-kit.js';

/**
 * SOURCE: every request served by `http`/`https` (so Express, Fastify, Koa and plain servers) runs in a
 * request context. `emit('request')` is the one place all of them pass through.
 */
function patchServerPrototype(proto: { emit: AnyFunction }): void {
  wrap(proto, 'emit', (original) =>
    function emit(this: unknown, event: unknown) {
      // `arguments`, not a rest parameter: every event the server emits would otherwise copy its arguments.
      const args = arguments as unknown as unknown[];
      if (event !== 'request') return original.apply(this, args);
      return serveRequest(args[1] as IncomingMessage, args[2] as ServerResponse, () => original.apply(this, args));
    },
  );
}

export const httpServer = defineHook({
  module: 'http',
  builtin: true,
  patch(http) {
    patchServerPrototype((http as typeof import('node:http')).Server.prototype);
  },
});

export const httpsServer = defineHook({
  module: 'https',
  builtin: true,
  patch(https) {
    patchServerPrototype((https as typeof import('node:https')).Server.prototype);
  },
});
