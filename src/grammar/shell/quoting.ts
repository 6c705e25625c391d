import { CharFlag, SyntaxClass, type ShellPartKind } from './syntax.js';
import { isDigit, isNameChar, isNameStart, ScanState, SPECIAL_PARAMS, type Frame, type WordState } from './state.js';

/**
 * Quoting and expansion: backslash escapes, single, double and `$'…'` quotes, `$name`/`${…}` parameters,
 * `$((…))` arithmetic, and the opening and closing of `$(…)`, `<(…)` and backquoted commands (their
 * content is read by the program level, scanner.ts).
 */
export abstract class QuotingScanner extends ScanState {
  /**
   * A backslash at `this.i`. `always`: escapes any character (unquoted, `$'…'`); otherwise (double quotes,
   * here-documents) only `$`, backquote, `"`, `\` and newline — elsewhere it is a literal backslash.
   */
  protected escape(w: WordState | null, region: number, always: boolean, dquote = true): void {
    const i = this.i;
    const next = this.src[i + 1];
    if (next === undefined) {
      // A trailing backslash is literal.
      this.content(i, w, region);
      this.i++;
      return;
    }
    if (!always && !(next === '$' || next === '`' || next === '\\' || next === '\n' || (dquote && next === '"'))) {
      this.content(i, w, region);
      this.i++;
      return;
    }
    this.addPart(w, 'escape', i, i + 2);
    this.delimiter(i, w, region, CharFlag.Escape);
    this.content(i + 1, w, region);
    if (this.btDepth > 0 && (next === '`' || next === '$')) {
      // Inside backquotes, \` and \$ become ` and $ for the inner command: a nested substitution.
      this.syntax[i] = SyntaxClass.Substitution;
      this.syntax[i + 1] = SyntaxClass.Substitution;
    }
    this.i += 2;
  }

  /**
   * A `$` at `this.i`, in word `w`, quote region `region`. `unquoted`: `$'…'` is ANSI-C quoting here
   * (bash; dash reads `$` + `'…'`, which has the same boundaries except for `\'`, flagged separately).
   */
  protected dollar(depth: number, w: WordState | null, region: number, unquoted: boolean): void {
    const src = this.src;
    const i = this.i;
    const next = src[i + 1] ?? '';
    if (next === '(') {
      if (src[i + 2] === '(') {
        const part = this.addPart(w, 'arithmetic', i, i);
        this.hard(i, 3, SyntaxClass.Substitution, w);
        const fr = this.frame('arith', depth, region, w, part);
        fr.closer = ')';
        this.stack.push(fr);
        this.i += 3;
      } else {
        this.openSubstitution('cmdsub', 'command-sub', depth, w, 2);
      }
      return;
    }
    if (next === '[') {
      // bash's obsolete $[ … ] arithmetic.
      const part = this.addPart(w, 'arithmetic', i, i);
      this.hard(i, 2, SyntaxClass.Substitution, w);
      const fr = this.frame('arith', depth, region, w, part);
      fr.closer = ']';
      this.stack.push(fr);
      this.i += 2;
      return;
    }
    if (next === '{') {
      const part = this.addPart(w, 'parameter', i, i);
      this.hard(i, 2, SyntaxClass.Substitution, w);
      this.stack.push(this.frame('param', depth, region, w, part));
      this.i += 2;
      return;
    }
    if (next === "'" && unquoted) {
      const r = this.newRegion(i);
      this.delimiter(i, w, r, CharFlag.Delimiter);
      this.delimiter(i + 1, w, r, CharFlag.Delimiter);
      const part = this.addPart(w, 'ansi-c-quote', i, i);
      this.stack.push(this.frame('ansi', depth, r, w, part));
      this.i += 2;
      return;
    }
    if (isNameStart(next)) {
      // $name: the `$` is syntax; the name stays data of the word (an input equal to a variable name that
      // happens to follow a `$` of the template is not itself an expansion).
      this.hard(i, 1, SyntaxClass.Substitution, w);
      let k = i + 1;
      while (k < this.n && isNameChar(src[k]!)) this.content(k++, w, region);
      this.addPart(w, 'parameter', i, k);
      this.i = k;
      return;
    }
    if (isDigit(next) || (next !== '' && SPECIAL_PARAMS.includes(next))) {
      this.addPart(w, 'parameter', i, i + 2);
      this.hard(i, 2, SyntaxClass.Substitution, w);
      this.i += 2;
      return;
    }
    // A lone `$` is literal.
    this.content(i, w, region);
    this.i++;
  }

  protected openSubstitution(kind: 'cmdsub' | 'procsub', partKind: ShellPartKind, depth: number, w: WordState | null, len: number): void {
    const part = this.addPart(w, partKind, this.i, this.i);
    this.hard(this.i, len, SyntaxClass.Substitution, w);
    this.stack.push(this.frame(kind, depth + 1, 0, w, part));
    this.i += len;
  }

  protected openBacktick(depth: number, w: WordState | null): void {
    const part = this.addPart(w, 'backtick', this.i, this.i);
    this.hard(this.i, 1, SyntaxClass.Substitution, w);
    this.stack.push(this.frame('backtick', depth + 1, 0, w, part));
    this.btDepth++;
    this.i++;
  }

  /** `)` of `$(…)`/`<(…)` at this.i. */
  protected closeSubstitution(f: Frame, len: number): void {
    if (f.word) this.finishWord(f);
    this.stack.pop();
    this.hard(this.i, len, SyntaxClass.Substitution, f.owner);
    this.i += len;
    if (f.part) f.part.end = this.i;
  }

  /** An unescaped backquote while a backquoted command is open: close it and anything opened inside it. */
  protected closeBacktick(): void {
    for (;;) {
      const f = this.stack.pop()!;
      if (f.kind === 'backtick') {
        if (f.word) this.finishWord(f);
        this.btDepth--;
        this.hard(this.i, 1, SyntaxClass.Substitution, f.owner);
        this.i++;
        if (f.part) f.part.end = this.i;
        return;
      }
      this.abandon(f, true);
    }
  }

  /** A backquote inside quotes, `${…}`, arithmetic or a here-document. */
  protected backtick(depth: number, w: WordState | null): void {
    if (this.btDepth > 0) this.closeBacktick();
    else this.openBacktick(depth, w);
  }

  // --- quoted regions --------------------------------------------------------------------------------------

  protected closeQuote(f: Frame, len: number): void {
    for (let k = this.i; k < this.i + len; k++) this.delimiter(k, f.owner, f.region, CharFlag.Delimiter);
    this.quoteClose[f.region] = this.i;
    this.stack.pop();
    this.i += len;
    if (f.part) f.part.end = this.i;
  }

  protected stepSingle(f: Frame): void {
    const c = this.src[this.i];
    if (c === "'") this.closeQuote(f, 1);
    else if (c === '`' && this.btDepth > 0) this.closeBacktick();
    else this.content(this.i++, f.owner, f.region);
  }

  protected stepAnsi(f: Frame): void {
    const c = this.src[this.i];
    if (c === "'") this.closeQuote(f, 1);
    else if (c === '`' && this.btDepth > 0) this.closeBacktick();
    else if (c === '\\') {
      if (this.src[this.i + 1] === "'") {
        // bash reads \' as a quote character; dash (no $'…') ends the string here. Either way the quoting
        // means different things to different shells: syntax.
        this.syntax[this.i] = SyntaxClass.QuoteBreak;
        this.syntax[this.i + 1] = SyntaxClass.QuoteBreak;
      }
      this.escape(f.owner, f.region, true);
    } else this.content(this.i++, f.owner, f.region);
  }

  protected stepDouble(f: Frame): void {
    const c = this.src[this.i];
    switch (c) {
      case '"':
        this.closeQuote(f, 1);
        return;
      case '\\':
        this.escape(f.owner, f.region, false);
        return;
      case '$':
        this.dollar(f.depth, f.owner, f.region, false);
        return;
      case '`':
        this.backtick(f.depth, f.owner);
        return;
    }
    this.content(this.i++, f.owner, f.region);
  }

  /** Inside `${…}`: quotes, escapes and expansions work as in a word; the first unquoted `}` closes. */
  protected stepParam(f: Frame): void {
    const i = this.i;
    const c = this.src[i];
    const w = f.owner;
    switch (c) {
      case '}':
        this.stack.pop();
        this.hard(i, 1, SyntaxClass.Substitution, w);
        this.i++;
        if (f.part) f.part.end = this.i;
        return;
      case '\\':
        this.escape(w, f.region, f.region === 0);
        return;
      case '$':
        this.dollar(f.depth, w, f.region, f.region === 0);
        return;
      case '`':
        this.backtick(f.depth, w);
        return;
      case "'":
      case '"': {
        if (c === "'" && f.region !== 0) break; // a single quote is literal inside "${…}"
        const region = this.newRegion(i);
        this.delimiter(i, w, region, CharFlag.Delimiter);
        const part = this.addPart(w, c === "'" ? 'single-quote' : 'double-quote', i, i);
        this.stack.push(this.frame(c === "'" ? 'single' : 'double', f.depth, region, w, part));
        this.i++;
        return;
      }
    }
    this.content(this.i++, w, f.region);
  }

  /** Inside `$((…))` / `$[…]`: names, digits and blanks are data; operators, brackets and quotes are syntax. */
  protected stepArith(f: Frame): void {
    const src = this.src;
    const i = this.i;
    const c = src[i]!;
    const w = f.owner;
    const open = f.closer === ')' ? '(' : '[';
    if (c === open) {
      f.parens++;
      this.hard(i, 1, SyntaxClass.Substitution, w);
      this.i++;
      return;
    }
    if (c === f.closer) {
      if (f.parens > 0) {
        f.parens--;
        this.hard(i, 1, SyntaxClass.Substitution, w);
        this.i++;
        return;
      }
      const len = f.closer === ')' && src[i + 1] === ')' ? 2 : 1;
      this.stack.pop();
      this.hard(i, len, SyntaxClass.Substitution, w);
      this.i += len;
      if (f.part) f.part.end = this.i;
      return;
    }
    switch (c) {
      case '$':
        this.dollar(f.depth, w, f.region, false);
        return;
      case '`':
        this.backtick(f.depth, w);
        return;
    }
    if (isNameChar(c) || c === ' ' || c === '\t' || c === '\n') this.content(this.i++, w, f.region);
    else {
      this.hard(i, 1, SyntaxClass.Substitution, w);
      this.i++;
    }
  }
}
