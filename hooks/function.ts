import { defineHook, inspect, shouldInspect, sourceOf, type AnyFunction, type CodeEvent } from '../src/hook-kit.js';

/**
 * SINK code: the `Function` constructor and its siblings `AsyncFunction`, `GeneratorFunction` and
 * `AsyncGeneratorFunction` (reachable only as `Object.getPrototypeOf(async function () {}).constructor`),
 * called with or without `new`.
 *
 * Each is replaced by a Proxy with `construct` and `apply` traps, both as the global `Function` and as
 * `<X>.prototype.constructor`, so `(function () {}).constructor('…')` and `(async () => {}).constructor`
 * are covered and `(function () {}).constructor === Function` still holds. The Proxy forwards everything
 * else to the real constructor: `Function.prototype`, `instanceof`, `name`, `length`, statics, subclassing
 * (`class X extends Function`). What remains observable: `Function.toString()` is
 * `function () { [native code] }` (a Proxy has no source text), `util.types.isProxy(Function)` is true,
 * and stack traces through it show one extra frame (the trap).
 *
 * The judged text is the source V8 compiles: `function anonymous(<params>\n) {\n<body>\n}`. Arguments are
 * converted as V8 converts them only when that has no side effects (primitives, arrays of primitives);
 * anything else is passed through unjudged. A refused call throws synchronously, where a syntax error in
 * the body would have been thrown, before anything is compiled.
 *
 * `eval` is not replaced: a call `eval(x)` is a *direct* eval (it sees the caller's local variables and
 * strictness) only when `eval` resolves to the realm's original %eval%; were the global replaced by a wrapper,
 * every direct eval in the app would silently become an indirect one (global scope). Direct calls in the app's
 * own files are judged by rewriting their arguments at load time instead (hooks/eval.ts); indirect eval is
 * not covered.
 */

const PROXIES = new WeakSet<object>();

function judge(op: string, prefix: string, args: readonly unknown[]): void {
  const source = sourceOf(prefix, args);
  if (source === undefined) return;
  const event: CodeEvent = { kind: 'code', op, source };
  const verdict = inspect(event);
  if (verdict) throw verdict.error;
}

function guard(original: AnyFunction, op: string, prefix: string): AnyFunction {
  const proxy: AnyFunction = new Proxy(original, {
    construct(target, args, newTarget) {
      if (shouldInspect()) judge(op, prefix, args);
      return Reflect.construct(target, args, newTarget === proxy ? target : newTarget) as object;
    },
    apply(target, self, args) {
      if (shouldInspect()) judge(op, prefix, args);
      return Reflect.apply(target, self, args) as unknown;
    },
  });
  PROXIES.add(proxy);
  return proxy;
}

/** Replaces the value of `owner[key]`, keeping its attributes. */
function replace(owner: object, key: string, value: unknown): void {
  const descriptor = Object.getOwnPropertyDescriptor(owner, key);
  if (!descriptor || !('value' in descriptor)) throw new Error(`${key} is not a data property`);
  Object.defineProperty(owner, key, { ...descriptor, value });
}

const CONSTRUCTORS: readonly (readonly [op: string, prefix: string, prototypeOfInstance: () => object])[] = [
  ['Function', 'function', () => Object.getPrototypeOf(function () {}) as object],
  ['AsyncFunction', 'async function', () => Object.getPrototypeOf(async function () {}) as object],
  ['GeneratorFunction', 'function*', () => Object.getPrototypeOf(function* () {}) as object],
  ['AsyncGeneratorFunction', 'async function*', () => Object.getPrototypeOf(async function* () {}) as object],
];

export const functionConstructor = defineHook({
  module: 'Function',
  global: true,
  patch(global) {
    const g = global as { Function: unknown };
    for (const [op, prefix, prototypeOfInstance] of CONSTRUCTORS) {
      const proto = prototypeOfInstance();
      const original = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as unknown;
      if (typeof original !== 'function' || PROXIES.has(original)) continue;
      const proxy = guard(original as AnyFunction, op, prefix);
      replace(proto, 'constructor', proxy);
      if (op === 'Function' && g.Function === original) replace(g, 'Function', proxy);
    }
  },
});
