import { defineHook, inspect, shouldInspect, wrap, type AnyFunction } from '../src/hook-kit.js';

/**
 * SINK: `libxmljs` / `libxmljs2` `parseXml` / `parseXmlString` (and `Document.fromXml`, which they call). Only
 * a parse that substitutes entities or loads DTDs (`noent`, `dtdload`, `dtdattr`) can fetch an external entity.
 * A refused parse throws, as libxmljs does for a malformed document.
 */

function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  return undefined;
}

function resolvesExternals(options: unknown): boolean {
  if (!options || typeof options !== 'object') return false;
  const o = options as Record<string, unknown>;
  return Boolean(o.noent || o.dtdload || o.dtdattr || o.replaceEntities || o.loadExternalDtd);
}

function patchLibxml(name: string) {
  return (exports: unknown) => {
    const lib = exports as Record<string, AnyFunction>;
    for (const method of ['parseXml', 'parseXmlString'] as const) {
      if (typeof lib[method] !== 'function') continue;
      wrap(lib, method, (original) =>
        function (this: unknown, input: unknown, options: unknown) {
          if (shouldInspect()) {
            const xml = textOf(input);
            if (xml !== undefined) {
              const verdict = inspect({ kind: 'xml', op: `${name}.${method}`, xml, externalEntities: resolvesExternals(options) });
              if (verdict) throw verdict.error;
            }
          }
          return original.apply(this, arguments as unknown as unknown[]);
        },
      );
    }
  };
}

export const libxmljs2 = defineHook({ module: 'libxmljs2', patch: patchLibxml('libxmljs2') });
export const libxmljs = defineHook({ module: 'libxmljs', patch: patchLibxml('libxmljs') });
