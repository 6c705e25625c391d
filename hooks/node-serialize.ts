import { defineHook, inspect, shouldInspect, wrap, type AnyFunction } from '../src/hook-kit.js';

/**
 * SINK: `node-serialize`'s `unserialize(text | object)`, which `eval`s every `_$$ND_FUNC$$_` string it meets.
 * A refused call throws, as `unserialize` does for text that is not JSON.
 */

function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export const nodeSerialize = defineHook({
  module: 'node-serialize',
  patch(exports) {
    const lib = exports as Record<string, AnyFunction>;
    wrap(lib, 'unserialize', (original) =>
      function unserialize(this: unknown, obj: unknown) {
        if (shouldInspect()) {
          const text = textOf(obj);
          const verdict = text === undefined ? undefined : inspect({ kind: 'deserialize', op: 'node-serialize.unserialize', format: 'node-serialize', text });
          if (verdict) throw verdict.error;
        }
        return original.apply(this, arguments as unknown as unknown[]);
      },
    );
  },
});
