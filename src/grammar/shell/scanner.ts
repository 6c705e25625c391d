import { CharFlag, SyntaxClass } from './syntax.js';
import { HeredocScanner } from './heredoc.js';
import { addTo, isDigit, isNameChar, isWordBreak, type Frame, type WordState } from './state.js';
import { spendWork } from '../work-budget.js';

/**
 * Open constructs (quotes, substitutions, expansions) followed at most. No real command nests anywhere near
 * this deep, and following any depth would let one request build a parse stack as long as itself (every
 * level is live until the end: 100 KB of `"$(` cost 30-70 ms, most of it garbage collection, growing faster
 * than the input). Deeper than this, the rest of the command is marked as shell syntax (`opaqueRest`): an
 * input there is judged as changing the command's structure, which is what such an input does anyway.
 */
export const MAX_OPEN_CONSTRUCTS = 256;

/** Reserved words after which the next word is again a command name. */
const LEADS_TO_COMMAND = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', '{', 'time']);

/**
 * The program level: blanks, separators, operators, redirections, comments and unquoted words, at the top
 * and inside `$(…)`, `<(…)` and backquotes; `run()` drives every frame kind to the end of the input.
 */
export class Scanner extends HeredocScanner {
  /** Start of an fd number that turned out to prefix a redirection (`2>`), -1 if none. */
  private fdStart = -1;

  run(): void {
    this.stack.push(this.frame('program', 0, 0, null, null));
    while (this.i < this.n) {
      spendWork();
      if (this.stack.length > MAX_OPEN_CONSTRUCTS) {
        this.opaqueRest();
        break;
      }
      const f = this.top();
      switch (f.kind) {
        case 'program':
        case 'cmdsub':
        case 'backtick':
        case 'procsub':
          this.stepProgram(f);
          break;
        case 'single':
          this.stepSingle(f);
          break;
        case 'ansi':
          this.stepAnsi(f);
          break;
        case 'double':
          this.stepDouble(f);
          break;
        case 'param':
          this.stepParam(f);
          break;
        case 'arith':
          this.stepArith(f);
          break;
        case 'heredoc':
          this.stepHeredoc(f);
          break;
      }
    }
    // End of input: whatever is still open is unterminated (the outermost program frame is not).
    while (this.stack.length > 0) this.abandon(this.stack.pop()!, this.stack.length > 0);
  }

  /** Everything from the cursor on is syntax the scanner did not follow (see MAX_OPEN_CONSTRUCTS). */
  private opaqueRest(): void {
    this.syntax.fill(SyntaxClass.Substitution, this.i);
    this.i = this.n;
  }

  protected abandon(f: Frame, unterminated: boolean): void {
    if (f.word) this.finishWord(f);
    if (f.kind === 'backtick') this.btDepth--;
    if (f.kind === 'heredoc' && f.owner) {
      f.owner.token.end = this.i;
      f.owner.token.text = this.src.slice(f.owner.token.start, this.i);
      f.owner.token.unterminated = true;
    }
    if (f.part) f.part.end = this.i;
    if (unterminated && f.owner) f.owner.token.unterminated = true;
  }

  // --- program level: words, operators, redirections, comments -----------------------------------------------

  protected stepProgram(f: Frame): void {
    const src = this.src;
    const i = this.i;
    const c = src[i]!;

    // A backquote inside a backquoted command always ends it (POSIX: the closing backquote is found before
    // the inner text is parsed, quotes notwithstanding).
    if (c === '`' && this.btDepth > 0) {
      this.closeBacktick();
      return;
    }

    if (f.word) {
      if (isWordBreak(c)) {
        this.endWord(f, c);
        return;
      }
      this.wordChar(f, f.word);
      return;
    }

    const next = src[i + 1];
    switch (c) {
      case ' ':
      case '\t':
        this.syntax[i] = SyntaxClass.Gap;
        this.i++;
        return;
      case '\n':
        this.simpleToken('separator', i, i + 1, SyntaxClass.Separator, f.depth);
        this.newCommand(f);
        this.i++;
        this.startPendingHeredoc(f);
        return;
      case '#':
        this.comment(f);
        return;
      case '\\':
        if (next === '\n') {
          // Line continuation between tokens: the shell deletes it.
          this.syntax[i] = SyntaxClass.Gap;
          this.syntax[i + 1] = SyntaxClass.Gap;
          this.i += 2;
          return;
        }
        break;
      case ';': {
        let len = 1;
        if (next === ';') len = src[i + 2] === '&' ? 3 : 2; // ;; and bash's ;;&
        else if (next === '&') len = 2; // bash's ;&
        this.simpleToken('separator', i, i + len, SyntaxClass.Separator, f.depth);
        this.newCommand(f);
        this.i += len;
        return;
      }
      case '&':
        if (next === '&') {
          this.simpleToken('operator', i, i + 2, SyntaxClass.Operator, f.depth);
          this.newCommand(f);
          this.i += 2;
        } else if (next === '>') {
          // bash: &> and &>> redirect stdout and stderr.
          this.redirect(f, i, src[i + 2] === '>' ? 3 : 2, 1, false);
        } else {
          this.simpleToken('separator', i, i + 1, SyntaxClass.Separator, f.depth);
          this.newCommand(f);
          this.i++;
        }
        return;
      case '|': {
        const len = next === '|' || next === '&' ? 2 : 1;
        this.simpleToken('operator', i, i + len, SyntaxClass.Operator, f.depth);
        this.newCommand(f);
        this.i += len;
        return;
      }
      case '(':
        this.simpleToken('operator', i, i + 1, SyntaxClass.Operator, f.depth);
        f.parens++;
        this.newCommand(f);
        this.i++;
        return;
      case ')':
        if (f.parens === 0 && (f.kind === 'cmdsub' || f.kind === 'procsub')) {
          this.closeSubstitution(f, 1);
          return;
        }
        if (f.parens > 0) f.parens--;
        this.simpleToken('operator', i, i + 1, SyntaxClass.Operator, f.depth);
        // After `)` of a case pattern a command follows; after a subshell it is a syntax error anyway.
        this.newCommand(f);
        this.i++;
        return;
      case '<':
      case '>':
        if (next === '(') break; // process substitution starts a word
        this.redirectOperator(f, c);
        return;
    }
    // Anything else starts a word; consume its first character now (`<(` would otherwise end it at once).
    this.startWord(f);
    this.wordChar(f, f.word!);
  }

  /** After a separator or operator: a command name may follow; a dangling redirection is forgotten. */
  protected newCommand(f: Frame): void {
    f.expectCommand = true;
    f.pendingTarget = 0;
  }

  protected redirectOperator(f: Frame, c: string): void {
    const src = this.src;
    const i = this.i;
    const start = this.fdStart >= 0 ? this.fdStart : i;
    this.fdStart = -1;
    const n1 = src[i + 1];
    let len = 1;
    let target: 1 | 2 = 1;
    let strip = false;
    if (c === '<') {
      if (n1 === '<') {
        const n2 = src[i + 2];
        if (n2 === '-') {
          len = 3;
          target = 2;
          strip = true;
        } else if (n2 === '<') {
          len = 3; // bash here-string: the next word is data
        } else {
          len = 2;
          target = 2;
        }
      } else if (n1 === '&' || n1 === '>') len = 2;
    } else if (n1 === '>' || n1 === '&' || n1 === '|') len = 2;
    this.i = start;
    this.redirect(f, start, i + len - start, target, strip);
  }

  protected redirect(f: Frame, start: number, len: number, target: 1 | 2, strip: boolean): void {
    this.simpleToken('redirect', start, start + len, SyntaxClass.Redirect, f.depth);
    f.pendingTarget = target;
    f.pendingStripTabs = strip;
    this.i = start + len;
  }

  protected comment(f: Frame): void {
    const src = this.src;
    const start = this.i;
    let end = start + 1;
    // The comment runs to the newline — or to a backquote that ends an enclosing backquoted command.
    while (end < this.n && src[end] !== '\n' && !(this.btDepth > 0 && src[end] === '`')) end++;
    const idx = this.pushToken('comment', start, end, f.depth);
    this.syntax[start] = SyntaxClass.Comment;
    for (let k = start; k < end; k++) this.tokenOf[k] = idx;
    this.i = end;
  }

  protected startWord(f: Frame): void {
    const idx = this.pushToken('word', this.i, this.i, f.depth);
    f.word = this.wordState(idx);
  }

  /** The open word of `f` ends before character `c` (not consumed). */
  protected endWord(f: Frame, c: string): void {
    const w = f.word!;
    if (w.allDigits && w.token.parts.length === 0 && (c === '<' || c === '>') && this.src[this.i + 1] !== '(') {
      // `2>` — the digits are the redirection's fd number, not a word.
      this.tokens.pop();
      for (let k = w.token.start; k < this.i; k++) this.flags[k] = 0;
      this.fdStart = w.token.start;
      f.word = null;
      return;
    }
    this.finishWord(f);
  }

  protected finishWord(f: Frame): void {
    const w = f.word!;
    const t = w.token;
    f.word = null;
    t.end = this.i;
    t.text = this.src.slice(t.start, t.end);
    this.endSegment(w);
    if (w.braceStage === 3) {
      // A brace-expansion pattern (bash): its braces and commas are syntax.
      const braces = w.braceChars!;
      for (const p of braces) this.syntax[p] = SyntaxClass.Expansion;
      addTo(t, { kind: 'brace', start: braces[0]!, end: braces[braces.length - 1]! + 1 });
      t.parts.sort((a, b) => a.start - b.start);
    }
    if (f.pendingTarget !== 0) {
      // Here-document delimiter.
      if (f.pendingTarget === 2) this.queueHeredoc(t.text, f.pendingStripTabs);
      f.pendingTarget = 0;
    } else if (f.expectCommand && !w.assignment) {
      t.commandWord = true;
      f.expectCommand = t.parts.length === 0 && LEADS_TO_COMMAND.has(t.text);
    }
  }

  /** One step inside an unquoted word of program frame `f`. */
  protected wordChar(f: Frame, w: WordState): void {
    const src = this.src;
    const i = this.i;
    const c = src[i]!;
    const tildeOk = w.tildeOk;
    w.tildeOk = false;
    if (!isDigit(c)) w.allDigits = false;
    // Assignment words (`NAME=value`) before the command name are not the command name.
    if (w.nameSoFar && !w.assignment) {
      if (c === '=' && i > w.token.start) w.assignment = true;
      else if (!(isNameChar(c) && (i > w.token.start || !isDigit(c)))) w.nameSoFar = false;
    }

    switch (c) {
      case "'": {
        w.nameSoFar = false;
        const region = this.newRegion(i);
        this.delimiter(i, w, region, CharFlag.Delimiter);
        const part = this.addPart(w, 'single-quote', i, i);
        this.stack.push(this.frame('single', f.depth, region, w, part));
        this.i++;
        return;
      }
      case '"': {
        w.nameSoFar = false;
        const region = this.newRegion(i);
        this.delimiter(i, w, region, CharFlag.Delimiter);
        const part = this.addPart(w, 'double-quote', i, i);
        this.stack.push(this.frame('double', f.depth, region, w, part));
        this.i++;
        return;
      }
      case '\\':
        w.nameSoFar = false;
        this.escape(w, 0, true);
        return;
      case '$':
        w.nameSoFar = false;
        this.dollar(f.depth, w, 0, true);
        return;
      case '`':
        w.nameSoFar = false;
        this.openBacktick(f.depth, w);
        return;
      case '<':
      case '>':
        // Only reached at word start with `(` next (see stepProgram): bash process substitution.
        this.openSubstitution('procsub', 'process-sub', f.depth, w, 2);
        return;
      case '*':
      case '?':
      case '[':
        this.addPart(w, 'glob', i, i + 1);
        this.hard(i, 1, SyntaxClass.Expansion, w);
        this.i++;
        return;
      case '~':
        if (tildeOk) {
          this.addPart(w, 'tilde', i, i + 1);
          this.hard(i, 1, SyntaxClass.Expansion, w);
          this.i++;
          return;
        }
        break;
      case '{':
        (w.braceChars ??= []).push(i);
        if (w.braceStage === 0) w.braceStage = 1;
        break;
      case ',':
        (w.braceChars ??= []).push(i);
        if (w.braceStage === 1) w.braceStage = 2;
        break;
      case '.':
        if (src[i + 1] === '.' && w.braceStage >= 1) {
          (w.braceChars ??= []).push(i, i + 1);
          if (w.braceStage === 1) w.braceStage = 2;
        }
        break;
      case '}':
        (w.braceChars ??= []).push(i);
        if (w.braceStage === 2) w.braceStage = 3;
        break;
      case '=':
      case ':':
        w.tildeOk = true;
        break;
    }
    this.content(i, w, 0);
    this.i++;
  }
}
