import type * as VmModule from 'node:vm';
import { defineHook, wrap, inspect, shouldInspect, sourceOf, textOf, type AnyFunction, type CodeEvent } from '../src/hook-kit.js';

/**
 * SINK code: node:vm. Every public way to compile a string: `new vm.Script(code)`, `vm.createScript`,
 * `vm.runInThisContext`, `vm.runInContext`, `vm.runInNewContext` and `vm.compileFunction`. The code is
 * judged before vm validates or compiles it; a refused call throws synchronously, as a syntax error in the
 * code would. `Script` becomes a Proxy with a `construct` trap (so `instanceof vm.Script`, subclassing and
 * statics are unchanged); the functions are wrapped (name and length kept). The `run*` methods of an
 * existing Script compile nothing and are not judged again. Not covered: `vm.SourceTextModule` (behind
 * --experimental-vm-modules), and code that runs *inside* a context constructing functions with that
 * context's own `Function` (the script that does so was judged when it was compiled).
 */

const PROXIES = new WeakSet<object>();

function judge(op: string, code: unknown): void {
  const source = textOf(code);
  if (source === undefined) return;
  const event: CodeEvent = { kind: 'code', op, source };
  const verdict = inspect(event);
  if (verdict) throw verdict.error;
}

type VmFunctionName = 'createScript' | 'runInThisContext' | 'runInContext' | 'runInNewContext';

export const vm = defineHook({
  module: 'vm',
  builtin: true,
  patch(exports) {
    const vmModule = exports as typeof VmModule;
    const functions: VmFunctionName[] = ['createScript', 'runInThisContext', 'runInContext', 'runInNewContext'];
    for (const name of functions) {
      const op = `vm.${name}`;
      wrap(vmModule as unknown as Record<VmFunctionName, AnyFunction>, name, (original) =>
        function (this: unknown, ...args: unknown[]) {
          if (shouldInspect()) judge(op, args[0]);
          return original.apply(this, args);
        },
      );
    }
    wrap(vmModule, 'compileFunction', (original) =>
      function compileFunction(this: unknown, ...args: unknown[]) {
        if (shouldInspect() && typeof args[0] === 'string') {
          const params = Array.isArray(args[1]) ? (args[1] as unknown[]) : [];
          const source = sourceOf('function', [...params, args[0]]);
          if (source !== undefined) {
            const verdict = inspect({ kind: 'code', op: 'vm.compileFunction', source });
            if (verdict) throw verdict.error;
          }
        }
        return original.apply(this, args);
      },
    );

    const Script = vmModule.Script as unknown as AnyFunction;
    if (typeof Script === 'function' && !PROXIES.has(Script)) {
      const proxy: AnyFunction = new Proxy(Script, {
        construct(target, args, newTarget): object {
          if (shouldInspect()) judge('vm.Script', args[0]);
          return Reflect.construct(target, args, newTarget === proxy ? target : newTarget) as object;
        },
      });
      PROXIES.add(proxy);
      const descriptor = Object.getOwnPropertyDescriptor(vmModule, 'Script');
      if (!descriptor || !('value' in descriptor)) throw new Error('vm.Script is not a data property');
      Object.defineProperty(vmModule, 'Script', { ...descriptor, value: proxy });
    }
  },
});
