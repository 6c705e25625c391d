/**
 * A single-pass POSIX `sh` tokenizer built for *structure comparison*, not for execution.
 *
 * The command-injection detector needs to know, for any span [start, end) of a command line, whether that
 * span is plain data inside one word or whether it carries shell syntax. So besides the token list (words,
 * operators, redirections, comments, here-document bodies) the scan records, per character:
 *
 * - `syntax`: the syntax class of the character (literal, blank between tokens, separator, operator,
 *   redirection, comment start, substitution/expansion delimiters, unquoted glob/tilde/brace characters);
 * - `flags`: quote delimiter, escaping backslash, quoted content, path-segment boundaries of its word;
 * - `tokenOf`: the innermost token the character belongs to;
 * - `quoteOf`: the quoted region (single, double, `$'…'`, here-document body) it is content or delimiter of.
 *
 * `count(cls, start, end)` then answers "how many characters of class `cls` lie in [start, end)" in O(1)
 * from prefix sums, so checking any number of occurrences stays linear.
 *
 * Design choices:
 * - Nesting (`$(…)`, backquotes, `${…}`, `$((…))`, quotes inside them) is handled with an explicit frame
 *   stack, never recursion: 100 KB of `$(` must not overflow the JS stack.
 * - Where bash and dash disagree we follow the reading that exposes *more* syntax, so the detector errs
 *   towards "attack" (brace expansion, `$'…'`, `<(…)`, `|&`, `&>` are bash-only but are all marked).
 * - Malformed input never throws: unterminated constructs run to the end of the string and are flagged.
 */

/** Syntax class of one character. `Literal` is data; every other class is shell syntax. */
export const SyntaxClass = {
  /** Data: word content, quoted content, comment text, here-document text. Quote delimiters too (see flags). */
  Literal: 0,
  /** Blank between two tokens (or a line continuation between tokens). */
  Gap: 1,
  /** Ends a command: `;`, `&`, newline, `;;`, `;&`. */
  Separator: 2,
  /** Joins or groups commands: `&&`, `||`, `|`, `|&`, `(`, `)`. */
  Operator: 3,
  /** Redirection operator, including its fd number: `2>`, `>>`, `<<`, `>&`, `&>`, … */
  Redirect: 4,
  /** The `#` that starts a comment (the comment text itself is `Literal`). */
  Comment: 5,
  /** Runs code or reads state: `$(`/`)`, backquotes, `$((`/`))` and arithmetic operators, `${`/`}`, `$name`'s `$`. */
  Substitution: 6,
  /** Unquoted pathname/tilde/brace expansion characters: `*`, `?`, `[`, leading `~`, `{`/`,`/`}` of a brace pattern. */
  Expansion: 7,
  /** Ends a quoted region in a way a quote pair can't express: a here-document terminator line, `\'` inside `$'…'`. */
  QuoteBreak: 8,
} as const;
export type SyntaxClass = (typeof SyntaxClass)[keyof typeof SyntaxClass];

const CLASS_COUNT = 8; // classes 1..8 get prefix sums

/** Per-character flag bits. */
export const CharFlag = {
  /** An opening or closing quote delimiter (`'`, `"`, the `$'` of `$'…'`). */
  Delimiter: 1,
  /** A backslash that escapes the next character (the escaped character is content). */
  Escape: 2,
  /** Content of a quoted region or here-document body. */
  Quoted: 4,
  /** First character of a path segment of its word (word start, or just after `/`); delimiters before it too. */
  SegmentStart: 8,
  /** Last character of the last path segment or of a name before `.` (or before syntax); delimiters after it too. */
  SegmentEnd: 16,
} as const;

export type ShellTokenKind = 'word' | 'operator' | 'separator' | 'redirect' | 'comment' | 'heredoc';

export type ShellPartKind =
  | 'single-quote'
  | 'double-quote'
  | 'ansi-c-quote'
  | 'escape'
  | 'command-sub'
  | 'backtick'
  | 'process-sub'
  | 'arithmetic'
  | 'parameter'
  | 'glob'
  | 'tilde'
  | 'brace';

/** A quoting or expansion construct inside a word (or here-document body). Half-open offsets. */
export interface ShellPart {
  readonly kind: ShellPartKind;
  readonly start: number;
  readonly end: number;
}

export interface ShellToken {
  readonly kind: ShellTokenKind;
  /** Half-open offsets into the command. */
  readonly start: number;
  readonly end: number;
  /** The source text of the token, quotes and all. */
  readonly text: string;
  /** 0 at top level; +1 inside each `$(…)`, backquote pair or `<(…)`. */
  readonly depth: number;
  /** Words only: this word names the program of a simple command (reserved words included). */
  readonly commandWord: boolean;
  /** Constructs at this token's own level, in source order; nested tokens of `$(…)` are separate tokens. */
  readonly parts: readonly ShellPart[];
  /** Ran off the end of the input (unterminated quote, substitution or here-document). */
  readonly unterminated: boolean;
}

export interface ShellScan {
  readonly source: string;
  /** All tokens of all nesting levels, ordered by start offset. */
  readonly tokens: readonly ShellToken[];
  /** `SyntaxClass` per character. */
  readonly syntax: Uint8Array;
  /** `CharFlag` bits per character. */
  readonly flags: Uint8Array;
  /** Index into `tokens` of the innermost token holding the character; -1 for blanks between tokens. */
  readonly tokenOf: Int32Array;
  /** Quoted region id (1-based) the character is content or delimiter of; 0 when unquoted. */
  readonly quoteOf: Int32Array;
  /** By region id: offset of the opening delimiter (for a here-document: the newline before the body). */
  readonly quoteOpen: readonly number[];
  /** By region id: offset of the closing delimiter (here-document: its terminator line); source length if unterminated. */
  readonly quoteClose: readonly number[];
  /** Number of characters of class `cls` in [start, end). O(1). */
  count(cls: Exclude<SyntaxClass, 0>, start: number, end: number): number;
}

// ---------------------------------------------------------------------------------------------------------

interface MutablePart {
  kind: ShellPartKind;
  start: number;
  end: number;
}

interface MutableToken {
  kind: ShellTokenKind;
  start: number;
  end: number;
  text: string;
  depth: number;
  commandWord: boolean;
  parts: MutablePart[];
  unterminated: boolean;
}

/** Bookkeeping for a word (or here-document body) being read. */
interface WordState {
  token: MutableToken;
  index: number;
  /** The next content character starts a path segment. */
  segPending: boolean;
  /** Last content character of the current segment, -1 if none. */
  lastContent: number;
  /** Span of the delimiters seen after `lastContent` (they share its segment end); -1 when none. */
  trailFrom: number;
  trailTo: number;
  /** Only unquoted digits so far: `2` in `2>file` is an fd number. */
  allDigits: boolean;
  /** Only `[A-Za-z_][A-Za-z0-9_]*` so far, unquoted: an `=` now makes an assignment word. */
  nameSoFar: boolean;
  assignment: boolean;
  /** An unquoted `~` here would start a tilde prefix (word start, after `=` or `:`). */
  tildeOk: boolean;
  /** Unquoted `{`, `,`, `}` and `..` positions (allocated on first use), and how far a `{ … , … }` pattern has progressed (3 = complete). */
  braceChars: number[] | null;
  braceStage: number;
}

type FrameKind =
  | 'program'
  | 'cmdsub'
  | 'backtick'
  | 'procsub'
  | 'single'
  | 'ansi'
  | 'double'
  | 'param'
  | 'arith'
  | 'heredoc';

interface Heredoc {
  delimiter: string;
  stripTabs: boolean;
  expand: boolean;
}

interface Frame {
  kind: FrameKind;
  /** Program nesting depth the frame's content belongs to. */
  depth: number;
  /** Quote region of content characters (0 = unquoted). */
  region: number;
  /** The word/heredoc this construct belongs to (for program frames: the word enclosing the substitution). */
  owner: WordState | null;
  /** The part this frame closes. */
  part: MutablePart | null;
  // Program frames.
  word: WordState | null;
  expectCommand: boolean;
  /** 1: next word is a redirection target; 2: a here-document delimiter. */
  pendingTarget: 0 | 1 | 2;
  pendingStripTabs: boolean;
  /** Open `(` (program frames) or `(`/`[` (arithmetic). */
  parens: number;
  /** Arithmetic: `)` for `$((…))`, `]` for `$[…]`. */
  closer: string;
  // Here-document frames.
  heredoc: Heredoc | null;
  atLineStart: boolean;
}

/** Shared by tokens without parts until their first part. */
const NO_PARTS: MutablePart[] = [];
const addTo = (t: MutableToken, part: MutablePart): void => {
  if (t.parts === NO_PARTS) t.parts = [part];
  else t.parts.push(part);
};

/** Reserved words after which the next word is again a command name. */
const LEADS_TO_COMMAND = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', '{', 'time']);

const isNameStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isNameChar = (c: string): boolean => isNameStart(c) || isDigit(c);
/** Characters that end an unquoted word. */
const isWordBreak = (c: string): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === ';' || c === '&' || c === '|' || c === '<' || c === '>' || c === '(' || c === ')';
/** Special parameters: `$@`, `$?`, … (and `$0`-`$9`, handled as digits). */
const SPECIAL_PARAMS = '@*#?-$!';

class Scanner {
  private readonly src: string;
  private readonly n: number;
  private i = 0;
  private readonly stack: Frame[] = [];
  private btDepth = 0;
  private readonly heredocQueue: Heredoc[] = [];
  private heredocNext = 0;
  /** Start of an fd number that turned out to prefix a redirection (`2>`), -1 if none. */
  private fdStart = -1;

  readonly tokens: MutableToken[] = [];
  readonly syntax: Uint8Array;
  readonly flags: Uint8Array;
  readonly tokenOf: Int32Array;
  readonly quoteOf: Int32Array;
  readonly quoteOpen: number[] = [-1];
  readonly quoteClose: number[] = [-1];

  constructor(src: string) {
    this.src = src;
    this.n = src.length;
    this.syntax = new Uint8Array(this.n);
    this.flags = new Uint8Array(this.n);
    this.tokenOf = new Int32Array(this.n).fill(-1);
    this.quoteOf = new Int32Array(this.n);
  }

  run(): void {
    this.stack.push(this.frame('program', 0, 0, null, null));
    while (this.i < this.n) {
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

  // --- frames --------------------------------------------------------------------------------------------

  private frame(kind: FrameKind, depth: number, region: number, owner: WordState | null, part: MutablePart | null): Frame {
    return {
      kind,
      depth,
      region,
      owner,
      part,
      word: null,
      expectCommand: true,
      pendingTarget: 0,
      pendingStripTabs: false,
      parens: 0,
      closer: ')',
      heredoc: null,
      atLineStart: false,
    };
  }

  private top(): Frame {
    return this.stack[this.stack.length - 1]!;
  }

  /** Close `f` at end of input or when a backquote cuts it short. */
  private abandon(f: Frame, unterminated: boolean): void {
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

  private newRegion(open: number): number {
    this.quoteOpen.push(open);
    this.quoteClose.push(this.n); // until the closing delimiter is found
    return this.quoteOpen.length - 1;
  }

  private addPart(w: WordState | null, kind: ShellPartKind, start: number, end: number): MutablePart {
    const part: MutablePart = { kind, start, end };
    if (w) addTo(w.token, part);
    return part;
  }

  // --- character marking ---------------------------------------------------------------------------------

  /** Data character of word `w`, optionally inside quote region `region`. */
  private content(pos: number, w: WordState | null, region: number): void {
    const c = this.src[pos]!;
    if (region !== 0) {
      this.flags[pos]! |= CharFlag.Quoted;
      this.quoteOf[pos] = region;
    }
    if (!w) return;
    this.tokenOf[pos] = w.index;
    // `.` ends a name segment (`{}.sh`); `/` starts a new one without ending the previous: a directory of
    // the program path (`bin` in `/usr/bin/git`) is not the program.
    if (c === '.') this.endSegment(w);
    else if (c === '/') {
      w.lastContent = -1;
      w.trailFrom = -1;
    }
    if (w.segPending) this.flags[pos]! |= CharFlag.SegmentStart;
    w.segPending = c === '/';
    w.lastContent = pos;
  }

  /** Quote delimiter or escaping backslash of word `w`. */
  private delimiter(pos: number, w: WordState | null, region: number, flag: number): void {
    this.flags[pos]! |= flag;
    if (region !== 0) this.quoteOf[pos] = region;
    if (!w) return;
    this.tokenOf[pos] = w.index;
    if (w.segPending) this.flags[pos]! |= CharFlag.SegmentStart;
    if (w.trailFrom < 0) w.trailFrom = pos;
    w.trailTo = pos;
  }

  /** Syntax characters [pos, pos+len) of class `cls`, belonging to token `w` (if any). */
  private hard(pos: number, len: number, cls: SyntaxClass, w: WordState | null): void {
    if (w) this.endSegment(w);
    for (let k = pos; k < pos + len && k < this.n; k++) {
      this.syntax[k] = cls;
      if (w) this.tokenOf[k] = w.index;
    }
    if (w) {
      w.segPending = false;
      w.lastContent = -1;
    }
  }

  /** The current path segment of `w` ends here. */
  private endSegment(w: WordState): void {
    if (w.lastContent >= 0) this.flags[w.lastContent]! |= CharFlag.SegmentEnd;
    if (w.trailFrom >= 0) {
      // Only delimiters of this word lie in that span: anything else (syntax, a nested token) ends the segment first.
      for (let p = w.trailFrom; p <= w.trailTo; p++) {
        if (this.tokenOf[p] === w.index && (this.flags[p]! & (CharFlag.Delimiter | CharFlag.Escape)) !== 0) this.flags[p]! |= CharFlag.SegmentEnd;
      }
      w.trailFrom = -1;
    }
  }

  private pushToken(kind: ShellTokenKind, start: number, end: number, depth: number): number {
    this.tokens.push({
      kind,
      start,
      end,
      text: this.src.slice(start, end),
      depth,
      commandWord: false,
      parts: NO_PARTS,
      unterminated: false,
    });
    return this.tokens.length - 1;
  }

  private simpleToken(kind: ShellTokenKind, start: number, end: number, cls: SyntaxClass, depth: number): void {
    const idx = this.pushToken(kind, start, end, depth);
    for (let k = start; k < end; k++) {
      this.syntax[k] = cls;
      this.tokenOf[k] = idx;
    }
  }

  // --- program level: words, operators, redirections, comments -----------------------------------------------

  private stepProgram(f: Frame): void {
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
  private newCommand(f: Frame): void {
    f.expectCommand = true;
    f.pendingTarget = 0;
  }

  private redirectOperator(f: Frame, c: string): void {
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

  private redirect(f: Frame, start: number, len: number, target: 1 | 2, strip: boolean): void {
    this.simpleToken('redirect', start, start + len, SyntaxClass.Redirect, f.depth);
    f.pendingTarget = target;
    f.pendingStripTabs = strip;
    this.i = start + len;
  }

  private comment(f: Frame): void {
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

  private startWord(f: Frame): void {
    const idx = this.pushToken('word', this.i, this.i, f.depth);
    f.word = this.wordState(idx);
  }

  private wordState(idx: number): WordState {
    return {
      token: this.tokens[idx]!,
      index: idx,
      segPending: true,
      lastContent: -1,
      trailFrom: -1,
      trailTo: -1,
      allDigits: true,
      nameSoFar: true,
      assignment: false,
      tildeOk: true,
      braceChars: null,
      braceStage: 0,
    };
  }

  /** The open word of `f` ends before character `c` (not consumed). */
  private endWord(f: Frame, c: string): void {
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

  private finishWord(f: Frame): void {
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
      if (f.pendingTarget === 2) {
        // Here-document delimiter: quote removal gives the terminator; any quoting disables expansion.
        const quoted = /['"\\]/.test(t.text);
        this.heredocQueue.push({
          delimiter: quoted ? t.text.replace(/['"\\]/g, '') : t.text,
          stripTabs: f.pendingStripTabs,
          expand: !quoted,
        });
      }
      f.pendingTarget = 0;
    } else if (f.expectCommand && !w.assignment) {
      t.commandWord = true;
      f.expectCommand = t.parts.length === 0 && LEADS_TO_COMMAND.has(t.text);
    }
  }

  /** One step inside an unquoted word of program frame `f`. */
  private wordChar(f: Frame, w: WordState): void {
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

  /**
   * A backslash at `this.i`. `always`: escapes any character (unquoted, `$'…'`); otherwise (double quotes,
   * here-documents) only `$`, backquote, `"`, `\` and newline — elsewhere it is a literal backslash.
   */
  private escape(w: WordState | null, region: number, always: boolean, dquote = true): void {
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
  private dollar(depth: number, w: WordState | null, region: number, unquoted: boolean): void {
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

  private openSubstitution(kind: 'cmdsub' | 'procsub', partKind: ShellPartKind, depth: number, w: WordState | null, len: number): void {
    const part = this.addPart(w, partKind, this.i, this.i);
    this.hard(this.i, len, SyntaxClass.Substitution, w);
    this.stack.push(this.frame(kind, depth + 1, 0, w, part));
    this.i += len;
  }

  private openBacktick(depth: number, w: WordState | null): void {
    const part = this.addPart(w, 'backtick', this.i, this.i);
    this.hard(this.i, 1, SyntaxClass.Substitution, w);
    this.stack.push(this.frame('backtick', depth + 1, 0, w, part));
    this.btDepth++;
    this.i++;
  }

  /** `)` of `$(…)`/`<(…)` at this.i. */
  private closeSubstitution(f: Frame, len: number): void {
    if (f.word) this.finishWord(f);
    this.stack.pop();
    this.hard(this.i, len, SyntaxClass.Substitution, f.owner);
    this.i += len;
    if (f.part) f.part.end = this.i;
  }

  /** An unescaped backquote while a backquoted command is open: close it and anything opened inside it. */
  private closeBacktick(): void {
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
  private backtick(depth: number, w: WordState | null): void {
    if (this.btDepth > 0) this.closeBacktick();
    else this.openBacktick(depth, w);
  }

  // --- quoted regions --------------------------------------------------------------------------------------

  private closeQuote(f: Frame, len: number): void {
    for (let k = this.i; k < this.i + len; k++) this.delimiter(k, f.owner, f.region, CharFlag.Delimiter);
    this.quoteClose[f.region] = this.i;
    this.stack.pop();
    this.i += len;
    if (f.part) f.part.end = this.i;
  }

  private stepSingle(f: Frame): void {
    const c = this.src[this.i];
    if (c === "'") this.closeQuote(f, 1);
    else if (c === '`' && this.btDepth > 0) this.closeBacktick();
    else this.content(this.i++, f.owner, f.region);
  }

  private stepAnsi(f: Frame): void {
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

  private stepDouble(f: Frame): void {
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
  private stepParam(f: Frame): void {
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
  private stepArith(f: Frame): void {
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

  // --- here-documents --------------------------------------------------------------------------------------

  /** After a newline: start the body of the next queued here-document, if any. */
  private startPendingHeredoc(f: Frame): void {
    if (this.heredocNext >= this.heredocQueue.length || this.i >= this.n) return;
    const doc = this.heredocQueue[this.heredocNext++]!;
    const idx = this.pushToken('heredoc', this.i, this.i, f.depth);
    const w = this.wordState(idx);
    const region = this.newRegion(this.i - 1);
    const fr = this.frame('heredoc', f.depth, region, w, null);
    fr.heredoc = doc;
    fr.atLineStart = true;
    this.stack.push(fr);
  }

  private stepHeredoc(f: Frame): void {
    const src = this.src;
    const doc = f.heredoc!;
    const w = f.owner!;
    if (f.atLineStart) {
      f.atLineStart = false;
      let j = this.i;
      if (doc.stripTabs) while (src[j] === '\t') j++;
      const after = j + doc.delimiter.length;
      if (src.startsWith(doc.delimiter, j) && (after === this.n || src[after] === '\n')) {
        // Terminator line: ends the quoted body.
        const lineEnd = after < this.n ? after + 1 : after;
        for (let k = this.i; k < lineEnd; k++) {
          this.syntax[k] = SyntaxClass.QuoteBreak;
          this.tokenOf[k] = w.index;
        }
        this.quoteClose[f.region] = this.i;
        this.i = lineEnd;
        w.token.end = lineEnd;
        w.token.text = src.slice(w.token.start, lineEnd);
        this.stack.pop();
        this.startPendingHeredoc(this.top());
        return;
      }
    }
    const c = src[this.i]!;
    if (c === '\n') {
      this.content(this.i++, w, f.region);
      f.atLineStart = true;
      return;
    }
    if (doc.expand) {
      if (c === '\\') {
        this.escape(w, f.region, false, false);
        return;
      }
      if (c === '$') {
        this.dollar(f.depth, w, f.region, false);
        return;
      }
      if (c === '`') {
        this.backtick(f.depth, w);
        return;
      }
    }
    this.content(this.i++, w, f.region);
  }
}

/** Scan a command line once. Never throws; linear in its length. */
export function scanShell(command: string): ShellScan {
  const s = new Scanner(command);
  s.run();
  const { syntax } = s;
  const n = command.length;
  let prefix: Int32Array | undefined;
  const build = (): Int32Array => {
    // Row k holds, for each class 1..8, how many characters before offset k have that class.
    const p = new Int32Array((n + 1) * CLASS_COUNT);
    for (let k = 0; k < n; k++) {
      const row = k * CLASS_COUNT;
      for (let c = 0; c < CLASS_COUNT; c++) p[row + CLASS_COUNT + c] = p[row + c]!;
      const cls = syntax[k]!;
      if (cls !== 0) p[row + CLASS_COUNT + cls - 1]!++;
    }
    return p;
  };
  return {
    source: command,
    tokens: s.tokens,
    syntax,
    flags: s.flags,
    tokenOf: s.tokenOf,
    quoteOf: s.quoteOf,
    quoteOpen: s.quoteOpen,
    quoteClose: s.quoteClose,
    count(cls, start, end) {
      prefix ??= build();
      return prefix[end * CLASS_COUNT + cls - 1]! - prefix[start * CLASS_COUNT + cls - 1]!;
    },
  };
}

/** Tokens of a command line (all nesting levels, by start offset). */
export function tokenizeShell(command: string): readonly ShellToken[] {
  return scanShell(command).tokens;
}
