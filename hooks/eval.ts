import type * as ModuleNs from 'node:module';
import { resolve, sep } from 'node:path';
import { defineHook, wrap, inspect, shouldInspect, warnOnce, whileAgentLoads, rewriteDirectEval, EVAL_CHECK_NAME, type CodeEvent } from '../src/hook-kit.js';

/**
 * SINK code: direct `eval(…)` in the app's own CommonJS files (src/instrument/eval-rewrite.ts says how the
 * call stays direct). `Module.prototype._compile` is wrapped: a file outside `node_modules` and outside the
 * agent whose text contains `eval(` has each call's arguments routed through `__stepguardEval`, a
 * non-enumerable global that judges the string and returns its first argument unchanged. The rewritten file
 * is compiled once first (outside any request's judgement); on a syntax error the original is used and one
 * warning names the file. Packages under `node_modules` are never rewritten (their evals are the package's
 * own business, and rewriting them would touch every install); ES modules are not rewritten (they load
 * through the ESM loader, not `_compile`) — see the README.
 */

/** The agent's compiled files (dist/); installed, they are under node_modules anyway. */
const OWN_ROOT = resolve(__dirname, '..') + sep;
const NODE_MODULES = `${sep}node_modules${sep}`;
const MAY_CALL_EVAL = /\beval\s*\(/;

function checkEvalArgument(code?: unknown): unknown {
  // Only a string is compiled by eval; anything else is returned unchanged by eval itself.
  if (typeof code !== 'string' || !shouldInspect()) return code;
  const event: CodeEvent = { kind: 'code', op: 'eval', source: code };
  const verdict = inspect(event);
  if (verdict) throw verdict.error;
  return code;
}

// Node 22+ passes a third argument (the format: 'commonjs', or 'module' for `require()` of an ES module).
type Compile = (this: ModuleNs, content: string, filename: string, ...rest: unknown[]) => unknown;

export const directEval = defineHook({
  module: 'module',
  builtin: true,
  patch(exports) {
    const Module = exports as unknown as { prototype: { _compile: Compile } };
    if (typeof Module.prototype?._compile !== 'function') return exports;
    Object.defineProperty(globalThis, EVAL_CHECK_NAME, { value: checkEvalArgument, enumerable: false, configurable: true, writable: false });
    wrap(Module.prototype, '_compile', (original) =>
      function _compile(this: ModuleNs, content: string, filename: string, ...rest: unknown[]) {
        let text = content;
        // The file name first: most modules are packages, whose text is then never scanned. A source compiled
        // as an ES module (`require()` of one, Node 22+) is left alone, like every ES module.
        if (rest[0] !== 'module' && typeof filename === 'string' && !filename.includes(NODE_MODULES) && !filename.startsWith(OWN_ROOT) && typeof content === 'string' && MAY_CALL_EVAL.test(content)) {
          text = rewritten(content, filename);
        }
        return (original as Compile).call(this, text, filename, ...rest);
      },
    );
    return exports;
  },
});

/** The rewritten source when it compiles; the original otherwise (never an error of ours). */
function rewritten(content: string, filename: string): string {
  try {
    const source = rewriteDirectEval(content);
    if (source === undefined) return content;
    whileAgentLoads(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- only for files that call eval
      const { compileFunction } = require('node:vm') as typeof import('node:vm');
      // Compiled as the CommonJS loader compiles it, not run: a syntax error is found before the module runs.
      compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename });
    });
    return source;
  } catch (error) {
    warnOnce(`eval-rewrite:${filename}`, `direct eval in ${filename} is not judged: its calls could not be rewritten (${error instanceof Error ? error.message : String(error)})`);
    return content;
  }
}
