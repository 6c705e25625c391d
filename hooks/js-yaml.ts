import { defineHook, inspect, shouldInspect, wrap, type AnyFunction } from '../src/hook-kit.js';

/**
 * SINK: `js-yaml` 3 `load`/`loadAll` with the default (full) schema, whose `!!js/function` type builds a real
 * function from the document. `safeLoad`, a safe schema passed in the options, and js-yaml 4 (whose `load` has
 * no JavaScript types) cannot run code and are left alone. A refused call throws, as `load` does for a
 * malformed document.
 */

interface JsYaml {
  load?: AnyFunction;
  loadAll?: AnyFunction;
  DEFAULT_FULL_SCHEMA?: unknown;
}

function runsCode(lib: JsYaml, options: unknown): boolean {
  const schema = options && typeof options === 'object' ? (options as { schema?: unknown }).schema : undefined;
  return schema === undefined || schema === lib.DEFAULT_FULL_SCHEMA;
}

export const jsYaml = defineHook({
  module: 'js-yaml',
  patch(exports, info) {
    const lib = exports as JsYaml;
    if (info.version && Number(info.version.split('.')[0]) >= 4) return; // v4: load is safe
    for (const method of ['load', 'loadAll'] as const) {
      wrap(lib as Record<string, AnyFunction>, method, (original) =>
        function (this: unknown, input: unknown, second: unknown, third: unknown) {
          // loadAll(input, iterator, options) / load(input, options)
          const options = method === 'loadAll' && typeof second === 'function' ? third : second;
          if (typeof input === 'string' && shouldInspect() && runsCode(lib, options)) {
            const verdict = inspect({ kind: 'deserialize', op: `js-yaml.${method}`, format: 'yaml', text: input });
            if (verdict) throw verdict.error;
          }
          return original.apply(this, arguments as unknown as unknown[]);
        },
      );
    }
  },
});
