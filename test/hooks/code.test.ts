/**
 * hooks/function.ts and hooks/vm.ts in-process: the agent is started in block mode, then every compile
 * entry point runs outside any request (pass-through), inside a request with benign input, and inside a
 * request with attack input. Benign runs must observe exactly what unpatched calls observe; attack runs
 * must throw synchronously (where a syntax error would be thrown) before any of the code runs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import * as util from 'node:util';
import type * as VmModule from 'node:vm';
import { startAgentInProcess } from '../helpers/agent.js';

const require = createRequire(import.meta.url);
const vm = require('node:vm') as typeof VmModule;

// Captured before the agent starts: the real intrinsics.
const RealFunction = Function;
const realVm = { ...vm };
const protoOf = {
  Function: Object.getPrototypeOf(function () {}) as object,
  AsyncFunction: Object.getPrototypeOf(async function () {}) as object,
  GeneratorFunction: Object.getPrototypeOf(function* () {}) as object,
  AsyncGeneratorFunction: Object.getPrototypeOf(async function* () {}) as object,
};
/** The constructor reachable now (after the agent started: the Proxy). */
const ctor = (name: keyof typeof protoOf): FunctionConstructor => (protoOf[name] as { constructor: FunctionConstructor }).constructor;
const realCtor = Object.fromEntries(Object.keys(protoOf).map((k) => [k, ctor(k as keyof typeof protoOf)])) as Record<keyof typeof protoOf, FunctionConstructor>;

const BLOCKED = 'ERR_STEPGUARD_BLOCKED';
type G = typeof globalThis & { sgRan?: number };
const g = globalThis as G;

let runWithContext: <R>(input: { query: Record<string, string> }, fn: () => R) => R;
let isWrapped: (fn: unknown) => boolean;
const asRequest = <R>(q: string, fn: () => R): R => runWithContext({ query: { q } }, fn);

beforeAll(() => {
  ({ runWithContext, isWrapped } = startAgentInProcess());
});

/** What a caller sees from one call: its value, or the error's class, code and message. */
function observe(run: () => unknown): unknown {
  try {
    const value = run();
    return { value: typeof value === 'function' ? `function ${(value as () => unknown).name}/${(value as () => unknown).length}` : value };
  } catch (error) {
    const e = error as Error & { code?: string };
    return { threw: e.constructor.name, code: e.code, message: e.message };
  }
}

/** The code of a refused call, which must throw synchronously and run nothing. */
function refusal(run: () => unknown): string | undefined {
  g.sgRan = 0;
  let code: string | undefined;
  try {
    run();
  } catch (error) {
    code = (error as { code?: string }).code;
  }
  expect(g.sgRan, 'the injected code ran').toBe(0);
  return code;
}

describe('Function and its siblings', () => {
  it('are Proxies that keep identity, prototype, name, length and instanceof', () => {
    expect(Function).not.toBe(RealFunction);
    expect(util.types.isProxy(Function)).toBe(true);
    expect((function () {}).constructor).toBe(Function);
    expect((() => 1).constructor).toBe(Function);
    expect(Function.prototype).toBe(RealFunction.prototype);
    expect(Function.prototype.constructor).toBe(Function);
    expect(Object.getPrototypeOf(Function)).toBe(RealFunction.prototype);
    expect([Function.name, Function.length]).toEqual(['Function', 1]);
    expect(new Function('return 1') instanceof Function).toBe(true);
    expect(new Function('return 1') instanceof RealFunction).toBe(true);
    expect(Function instanceof Function).toBe(true);
    expect(Object.getOwnPropertyDescriptor(globalThis, 'Function')).toMatchObject({ writable: true, enumerable: false, configurable: true });
    for (const [name, proto] of Object.entries(protoOf)) {
      const ctor = (proto as { constructor: FunctionConstructor }).constructor;
      expect(util.types.isProxy(ctor), name).toBe(true);
      expect(ctor.name, name).toBe(name);
      expect(ctor.prototype, name).toBe(proto);
      expect(Object.getOwnPropertyDescriptor(proto, 'constructor'), name).toMatchObject({ enumerable: false, configurable: true });
    }
  });

  it('documents the observable differences: toString of the constructor itself, and isProxy', () => {
    expect(String(RealFunction)).toBe('function Function() { [native code] }');
    expect(String(Function)).toBe('function () { [native code] }');
    // Functions it creates are unchanged.
    expect(String(new Function('a', 'return a'))).toBe(String(new RealFunction('a', 'return a')));
  });

  const forms: Array<[string, (q: string) => unknown, string]> = [
    ['new Function(body)', (q) => new Function('return ' + q)(), '6 * 7'],
    ['Function(body)', (q) => Function('return ' + q)(), '6 * 7'],
    ['new Function(p1, p2, body)', (q) => new Function('a', 'b', 'return a * b + ' + q)(2, 3), '36'],
    ["new Function('a, b', body)", (q) => new Function('a, b', 'return a - b - ' + q)(50, 1), '7'],
    ['Function.call', (q) => Function.call(null, 'return ' + q)(), '6 * 7'],
    ['Function.apply', (q) => Function.apply(null, ['return ' + q])(), '6 * 7'],
    ['Reflect.construct(Function)', (q) => (Reflect.construct(Function, ['return ' + q]) as () => unknown)(), '6 * 7'],
    ['(function () {}).constructor(body)', (q) => (function () {}).constructor('return ' + q)(), '6 * 7'],
    ["sloppy `this` is the global", (q) => Function('return this === globalThis && ' + q)(), '42'],
    ['new GeneratorFunction(body)', (q) => new (ctor('GeneratorFunction'))('yield ' + q)().next().value, '6 * 7'],
    ['class X extends Function', (q) => {
      class X extends Function {
        constructor() {
          super('return ' + q);
        }
      }
      const x = new X() as unknown as () => unknown;
      return [x(), x instanceof X, x instanceof Function];
    }, '6 * 7'],
    ['syntax error', (q) => new Function('return (' + q), '1 + 2'],
    ['non-string body with toString (converted once)', () => {
      let calls = 0;
      const body = { toString: () => (calls++, 'return 5') };
      return [new Function(body as unknown as string)(), calls];
    }, 'x'],
    ['Symbol body', () => new Function(Symbol('s') as unknown as string), 'x'],
  ];

  it.each(forms)('%s: same result outside and inside a request', (_name, run, benign) => {
    const outside = observe(() => run(benign));
    expect(observe(() => asRequest(benign, () => run(benign)))).toEqual(outside);
    expect(outside).not.toHaveProperty('threw', 'BlockedError');
  });

  it('AsyncFunction and AsyncGeneratorFunction resolve as before', async () => {
    const AsyncFunction = (async () => {}).constructor as FunctionConstructor;
    const AsyncGeneratorFunction = (async function* () {}).constructor as FunctionConstructor;
    expect(AsyncFunction).toBe(ctor('AsyncFunction'));
    expect(AsyncFunction).not.toBe(realCtor.AsyncFunction);
    expect(await asRequest('6 * 7', () => new AsyncFunction('return ' + '6 * 7')())).toBe(42);
    expect(await asRequest('6 * 7', () => new AsyncGeneratorFunction('yield ' + '6 * 7')().next())).toEqual({ value: 42, done: false });
  });

  const attack = "(globalThis.sgRan = 1, 0)";
  const refusals: Array<[string, () => unknown]> = [
    ['new Function', () => new Function('return ' + attack)()],
    ['Function()', () => Function('return ' + attack)()],
    ['a parameter that closes the parameter list', () => new Function(`a = ${attack}`, 'return a')()],
    ['Function.call', () => Function.call(null, 'return ' + attack)()],
    ['(() => {}).constructor', () => (() => {}).constructor('return ' + attack)()],
    ['AsyncFunction', () => new (ctor('AsyncFunction'))('return ' + attack)()],
    ['GeneratorFunction', () => new (ctor('GeneratorFunction'))('yield ' + attack)().next()],
    ['AsyncGeneratorFunction', () => new (ctor('AsyncGeneratorFunction'))('yield ' + attack)().next()],
    ['Reflect.construct', () => (Reflect.construct(Function, ['return ' + attack]) as () => unknown)()],
    ['an array body (JSON input)', () => new Function([`return ${attack}`] as unknown as string)()],
  ];

  it.each(refusals)('%s with attack input throws before compiling', (_name, run) => {
    expect(refusal(() => asRequest(attack, run))).toBe(BLOCKED);
    // Outside a request the same call runs (nothing is judged there).
    g.sgRan = 0;
    run();
    expect(g.sgRan).toBe(1);
  });

  it('a refusal throws synchronously, where a SyntaxError would be thrown', () => {
    let thrown: unknown;
    try {
      asRequest(attack, () => new Function('return ' + attack));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).name).toBe('BlockedError');
    expect((thrown as Error).message).not.toContain(attack);
  });

  it('input kept inside a string literal is allowed', () => {
    expect(asRequest("'); sgRan = 1; ('", () => new Function('return ' + JSON.stringify("'); sgRan = 1; ('"))())).toBe("'); sgRan = 1; ('");
  });
});

describe('node:vm', () => {
  it('is patched: the functions are wrapped with their name and length, Script is a Proxy', () => {
    for (const name of ['createScript', 'runInThisContext', 'runInContext', 'runInNewContext', 'compileFunction'] as const) {
      const fn = (vm as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!;
      expect(isWrapped(fn), name).toBe(true);
      expect([fn.name, fn.length], name).toEqual([name, (realVm as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!.length]);
    }
    expect(util.types.isProxy(vm.Script)).toBe(true);
    expect(vm.Script.name).toBe('Script');
    expect(new vm.Script('1') instanceof vm.Script).toBe(true);
    expect(new vm.Script('1') instanceof realVm.Script).toBe(true);
  });

  it('ESM named imports see the patched functions', async () => {
    const esm = (await import('node:vm')) as typeof VmModule & { default: typeof VmModule };
    expect(isWrapped(esm.runInNewContext)).toBe(true);
    expect(esm.Script).toBe(vm.Script);
    expect(esm.default.Script).toBe(vm.Script);
  });

  const forms: Array<[string, (q: string) => unknown, string]> = [
    ['new Script().runInThisContext()', (q) => new vm.Script('(' + q + ')').runInThisContext(), '6 * 7'],
    ['new Script(code, filename string)', (q) => new vm.Script('(' + q + ')', 'sg.js').runInNewContext(), '6 * 7'],
    ['new Script().runInNewContext(sandbox)', (q) => new vm.Script('n * ' + q).runInNewContext({ n: 2 }), '21'],
    ['createScript', (q) => (vm as unknown as { createScript(c: string): VmModule.Script }).createScript('(' + q + ')').runInThisContext(), '6 * 7'],
    ['runInThisContext', (q) => vm.runInThisContext('(' + q + ')'), '6 * 7'],
    ['runInThisContext(code, filename)', (q) => vm.runInThisContext('(' + q + ')', 'sg.js'), '6 * 7'],
    ['runInNewContext', (q) => vm.runInNewContext('`Hello ' + q + '`'), 'world'],
    ['runInNewContext(code, sandbox)', (q) => vm.runInNewContext('x + ' + q, { x: 40 }), '2'],
    ['runInContext', (q) => vm.runInContext('total * ' + q, vm.createContext({ total: 10 })), '3'],
    ['compileFunction(code, params)', (q) => vm.compileFunction('return a * ' + q, ['a'])(3), '14'],
    ['compileFunction(code)', (q) => vm.compileFunction('return ' + q)(), '6 * 7'],
    ['syntax error', (q) => vm.runInThisContext('(' + q), '6 * 7'],
    ['runInContext with a non-context', (q) => vm.runInContext(q, {} as VmModule.Context), '6 * 7'],
    ['compileFunction with non-string code', () => vm.compileFunction(42 as unknown as string), 'x'],
    ['Script called without new', () => (vm.Script as unknown as (c: string) => unknown)('1'), 'x'],
    ['subclass of Script', (q) => {
      class S extends vm.Script {
        tag = 'sub';
      }
      const s = new S('(' + q + ')');
      return [s.runInThisContext(), s.tag, s instanceof S, s instanceof vm.Script];
    }, '6 * 7'],
    ['Script with a non-string code (converted once)', () => {
      let calls = 0;
      const code = { toString: () => (calls++, '5') };
      return [new vm.Script(code as unknown as string).runInThisContext(), calls];
    }, 'x'],
  ];

  it.each(forms)('%s: same result outside and inside a request', (_name, run, benign) => {
    const outside = observe(() => run(benign));
    expect(observe(() => asRequest(benign, () => run(benign)))).toEqual(outside);
  });

  const attack = '1, globalThis.sgRan = 1';
  const escape = "1, this.constructor.constructor('return globalThis')().sgRan = 1";
  const refusals: Array<[string, string, () => unknown]> = [
    ['new Script', attack, () => new vm.Script('(' + attack + ')').runInThisContext()],
    ['createScript', attack, () => (vm as unknown as { createScript(c: string): VmModule.Script }).createScript('(' + attack + ')').runInThisContext()],
    ['runInThisContext', attack, () => vm.runInThisContext('(' + attack + ')')],
    ['runInNewContext (context escape)', escape, () => vm.runInNewContext('(' + escape + ')')],
    ['runInContext (context escape)', escape, () => vm.runInContext('(' + escape + ')', vm.createContext({}))],
    ['compileFunction', attack, () => vm.compileFunction('return (' + attack + ')')()],
    ['subclass of Script', attack, () => new (class extends vm.Script {})('(' + attack + ')').runInThisContext()],
  ];

  it.each(refusals)('%s with attack input throws before compiling', (_name, input, run) => {
    expect(refusal(() => asRequest(input, run))).toBe(BLOCKED);
    g.sgRan = 0;
    run();
    expect(g.sgRan).toBe(1);
  });
});
