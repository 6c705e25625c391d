import { tokenizeJs, type JsToken } from '../grammar/js-tokenizer.js';

/**
 * Direct `eval(x)` in the app's own files, made visible to the agent without changing what it means.
 *
 * A call `eval(…)` is a *direct* eval — it sees the caller's local variables, `this` and strictness — only
 * when its callee is the identifier `eval` resolving to the realm's %eval%. Replacing the global would turn
 * every such call into an indirect one; so the global is left alone and the call's *arguments* are routed
 * through a check instead, at load time:
 *
 *     eval(a, b)   →   eval(__stepguardEval(a, b))      (the name is the caller's)
 *
 * The callee is still the identifier `eval`, so the call stays direct. The arguments are evaluated in the same
 * order as before, and the check returns its first argument unchanged (eval reads only its first argument, and
 * returns a non-string unchanged), so the program computes exactly what it did — unless the check refuses the
 * string, by throwing where the eval would have run. `eval()` keeps its meaning the same way. A call with spread
 * arguments is left alone: V8 runs `eval(...args)` as an indirect eval, which a routed call would not be.
 *
 * What is rewritten: an identifier `eval` followed by `(`, not after `.`/`?.` (a method of some object), not
 * declared (`function eval(`), and not a method definition (`{ eval(x) { … } }`, class bodies): when the
 * matching `)` is followed by `{` and the name stands where a member name can, it is left alone — a rewrite
 * there would be a syntax error. Strings, comments, templates and regular expressions are tokens of their own,
 * so `"eval("` is never touched. The caller still compiles the result before using it and keeps the original
 * on any syntax error, so a misreading costs the check, never the app.
 */

/** Cheap pre-filter: only sources that can contain a call are tokenized. */
const MAY_CALL_EVAL = /\beval\s*\(/;

/** The source with every direct call site routed through `checkName`; undefined when there is none. */
export function rewriteDirectEval(source: string, checkName: string): string | undefined {
  if (!MAY_CALL_EVAL.test(source)) return undefined;
  const tokens = tokenizeJs(source).tokens.filter((t) => t.type !== 'comment');
  const text = (t: JsToken | undefined): string => (t ? source.slice(t.start, t.end) : '');
  const isPunct = (t: JsToken | undefined, p: string): boolean => t?.type === 'punctuator' && text(t) === p;

  // Matching parentheses in one pass: for each `(` token index, the index of its `)`.
  const closeOf = new Map<number, number>();
  const open: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (isPunct(tokens[i], '(')) open.push(i);
    else if (isPunct(tokens[i], ')')) {
      const o = open.pop();
      if (o !== undefined) closeOf.set(o, i);
    }
  }

  const edits: Array<{ at: number; insert: string }> = [];
  for (let i = 0; i + 1 < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type !== 'identifier' || text(t) !== 'eval' || !isPunct(tokens[i + 1], '(')) continue;
    const before = tokens[i - 1];
    if (isPunct(before, '.') || isPunct(before, '?.') || isPunct(before, '#')) continue;
    if (before?.type === 'keyword' && (text(before) === 'function' || text(before) === 'new')) continue;
    const close = closeOf.get(i + 1);
    if (close === undefined) continue; // unbalanced: leave the file as it is
    if (isPunct(tokens[close + 1], '{') && mayBeMemberName(before, text)) continue;
    // V8 makes a call with spread arguments (`eval(...args)`) an indirect eval; routed, it would become direct.
    if (hasSpread(tokens, i + 2, close, isPunct)) continue;
    // The tokenizer's known misreading — a regular expression after `if (…)` or a block's `}` read as division —
    // would put this "call" inside a regex, where the rewrite compiles and silently changes the pattern. A
    // regex cannot span lines, so a division on both sides on the same line leaves the site alone.
    if (divisionOnLine(tokens, i, close, source, text)) continue;
    edits.push({ at: tokens[i + 1]!.end, insert: `${checkName}(` }, { at: tokens[close]!.start, insert: ')' });
  }
  if (edits.length === 0) return undefined;
  edits.sort((a, b) => a.at - b.at);
  let out = '';
  let from = 0;
  for (const edit of edits) {
    out += source.slice(from, edit.at) + edit.insert;
    from = edit.at;
  }
  return out + source.slice(from);
}

function divisionOnLine(tokens: readonly JsToken[], at: number, close: number, source: string, text: (t: JsToken | undefined) => string): boolean {
  const isDivision = (t: JsToken | undefined): boolean => t?.type === 'punctuator' && (text(t) === '/' || text(t) === '/=');
  const lineStart = lastLineBreak(source, tokens[at]!.start);
  const lineEnd = nextLineBreak(source, tokens[close]!.end);
  let before = false;
  for (let k = at - 1; k >= 0 && tokens[k]!.end > lineStart && !before; k--) before = isDivision(tokens[k]);
  if (!before) return false;
  for (let k = close + 1; k < tokens.length && tokens[k]!.start < lineEnd; k++) if (isDivision(tokens[k])) return true;
  return false;
}

function lastLineBreak(source: string, from: number): number {
  for (let k = from - 1; k >= 0; k--) {
    const c = source.charCodeAt(k);
    if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) return k;
  }
  return -1;
}

function nextLineBreak(source: string, from: number): number {
  for (let k = from; k < source.length; k++) {
    const c = source.charCodeAt(k);
    if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) return k;
  }
  return source.length;
}

function hasSpread(tokens: readonly JsToken[], from: number, to: number, isPunct: (t: JsToken | undefined, p: string) => boolean): boolean {
  for (let k = from; k < to; k++) if (isPunct(tokens[k], '...')) return true;
  return false;
}

/** Whether a name after `before` can be a method name in an object literal or a class body. */
function mayBeMemberName(before: JsToken | undefined, text: (t: JsToken | undefined) => string): boolean {
  if (!before) return true;
  const b = text(before);
  if (before.type === 'punctuator') return b === '{' || b === ',' || b === '}' || b === ';' || b === '*';
  return before.type === 'keyword' && (b === 'static' || b === 'async' || b === 'get' || b === 'set');
}
