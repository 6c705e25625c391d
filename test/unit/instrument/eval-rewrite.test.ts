/**
 * The load-time rewrite of direct eval calls (src/instrument/eval-rewrite.ts): which call sites are routed
 * through the check, which are left alone, and that the rewritten module computes what the original did
 * (compiled as the CommonJS loader compiles it, with a check that records what it saw).
 */
import { describe, expect, it } from 'vitest';
import vm from 'node:vm';
import { rewriteDirectEval } from '../../../src/instrument/eval-rewrite.js';

const CHECK = '__check';
const rewrite = (source: string) => rewriteDirectEval(source, CHECK);

describe('which calls are rewritten', () => {
  it.each([
    ['eval(x)', `eval(${CHECK}(x))`],
    ['eval (x)', `eval (${CHECK}(x))`],
    ['eval(a, b)', `eval(${CHECK}(a, b))`],
    ['eval()', `eval(${CHECK}())`],
    ['f(eval(g(1), 2))', `f(eval(${CHECK}(g(1), 2)))`],
    ['eval(eval(x))', `eval(${CHECK}(eval(${CHECK}(x))))`],
    ['`${eval(x)}`', `\`\${eval(${CHECK}(x))}\``],
    ['return eval("(" + s + ")")', `return eval(${CHECK}("(" + s + ")"))`],
    ['y = a / 2\nz = eval(b) / c', `y = a / 2\nz = eval(${CHECK}(b)) / c`], // divisions on other lines do not matter
    ['if (ok) eval(code)\n{ block() }', `if (ok) eval(${CHECK}(code))\n{ block() }`], // after `)` no method name can stand
    ['x;\neval(code)\n{ block() }', undefined], // could be a method: left alone (a syntax error would break the app)
  ])('%s', (source, expected) => {
    expect(rewrite(source)).toBe(expected);
  });

  it.each([
    ['a member call', 'obj.eval(x); obj?.eval(x); this.#eval(x)'],
    ['a declaration', 'function eval(x) {}'],
    ['a class method', 'class A { eval(x) { return x } static eval(y) { return y } }'],
    ['an object method', 'const o = { eval(x) { return x }, async eval(y) {} }'],
    ['strings, comments, templates and regular expressions', `"eval(x)"; 'eval(x)'; \`eval(x)\`; // eval(x)\n/* eval(x) */ /eval\\(x\\)/.test(s)`],
    ['a spread call (V8 runs it as an indirect eval)', 'eval(...args)'],
    ['an indirect call', '(0, eval)(x); globalThis.eval(x); eval?.(x)'],
    ['unbalanced parentheses', 'eval(x'],
    ['no eval at all', 'evaluate(x); medieval(x)'],
    ['a regular expression the tokenizer reads as division', 'if (x) /eval(a)/.test(s)'],
    ['a division on both sides on one line (fail-safe)', 'y = a / eval(b) / c'],
  ])('not %s', (_, source) => {
    expect(rewrite(source)).toBeUndefined();
  });
});

describe('the rewritten module computes what the original did', () => {
  function run(source: string): { result: unknown; checked: unknown[] } {
    const checked: unknown[] = [];
    const sandbox = { [CHECK]: (...args: unknown[]) => (checked.push(args[0]), args[0]), result: undefined as unknown };
    const context = vm.createContext(sandbox);
    vm.runInContext(source, context);
    return { result: sandbox.result, checked };
  }
  const PROGRAM = `
    function scope() { const rate = 2; return eval('rate * 21'); }
    function sloppy() { eval('var leaked = 1'); return typeof leaked; }
    function strict() { 'use strict'; eval('var leaked = 1'); return typeof leaked; }
    function thisValue() { return eval('this'); }
    function args() { let n = 0; const v = eval('1', n++, n++); return [v, n]; }
    function nonString() { const o = { k: 1 }; return eval(o) === o && eval() === undefined; }
    function spread() { const rate = 3; return eval(...['typeof rate']); }
    result = [scope(), sloppy(), strict(), thisValue.call('self') == 'self', args(), nonString(), spread()];
  `;

  it('local scope, strictness, this, argument evaluation, non-strings and spread calls are unchanged', () => {
    const original = run(PROGRAM);
    const rewritten = rewrite(PROGRAM)!;
    expect(rewritten).toContain(`${CHECK}(`);
    const routed = run(rewritten);
    expect(routed.result).toEqual(original.result);
    expect(original.result).toEqual([42, 'number', 'undefined', true, [1, 2], true, 'undefined']);
    // Every direct call passed its first argument through the check; the spread call did not.
    expect(routed.checked).toEqual(['rate * 21', 'var leaked = 1', 'var leaked = 1', 'this', '1', { k: 1 }, undefined]);
  });

  it('a refusing check throws where the eval would have run, before anything is evaluated', () => {
    const context = vm.createContext({
      [CHECK]: () => {
        throw new Error('refused');
      },
      ran: false,
    });
    expect(() => vm.runInContext(rewrite('eval("ran = true")')!, context)).toThrow('refused');
    expect(context.ran).toBe(false);
  });
});
