import { CharFlag, SyntaxClass, type ShellPartKind, type ShellTokenKind } from './syntax.js';

/**
 * What every part of the shell scanner shares: the input, the cursor, the frame stack, the per-character
 * arrays being filled, and the helpers that mark one character as data, quote delimiter or syntax and keep
 * the path-segment bookkeeping of the word it belongs to. The scanner is split by concern on top of this:
 * quoting.ts (quotes, escapes, `$…` expansions, substitutions), heredoc.ts (here-document bodies) and
 * scanner.ts (the program level: words, operators, redirections, comments).
 */

export interface MutablePart {
  kind: ShellPartKind;
  start: number;
  end: number;
}

export interface MutableToken {
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
export interface WordState {
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

export type FrameKind =
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

export interface Heredoc {
  delimiter: string;
  /** The delimiter has no newline, so some line can equal it. */
  terminable: boolean;
  stripTabs: boolean;
  expand: boolean;
}

export interface Frame {
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
export const NO_PARTS: MutablePart[] = [];
export const addTo = (t: MutableToken, part: MutablePart): void => {
  if (t.parts === NO_PARTS) t.parts = [part];
  else t.parts.push(part);
};

export const isNameStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
export const isDigit = (c: string): boolean => c >= '0' && c <= '9';
export const isNameChar = (c: string): boolean => isNameStart(c) || isDigit(c);
/** Characters that end an unquoted word. */
export const isWordBreak = (c: string): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === ';' || c === '&' || c === '|' || c === '<' || c === '>' || c === '(' || c === ')';
/** Special parameters: `$@`, `$?`, … (and `$0`-`$9`, handled as digits). */
export const SPECIAL_PARAMS = '@*#?-$!';

export abstract class ScanState {
  protected readonly src: string;
  protected readonly n: number;
  protected i = 0;
  protected readonly stack: Frame[] = [];
  /** How many backquoted commands are open: an unescaped backquote then closes the innermost one. */
  protected btDepth = 0;

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

  // --- frames --------------------------------------------------------------------------------------------

  protected frame(kind: FrameKind, depth: number, region: number, owner: WordState | null, part: MutablePart | null): Frame {
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

  protected top(): Frame {
    return this.stack[this.stack.length - 1]!;
  }

  /** Close `f` at end of input or when a backquote cuts it short. */
  protected abstract abandon(f: Frame, unterminated: boolean): void;

  /** The open word of program frame `f` ends at the cursor. */
  protected abstract finishWord(f: Frame): void;

  protected newRegion(open: number): number {
    this.quoteOpen.push(open);
    this.quoteClose.push(this.n); // until the closing delimiter is found
    return this.quoteOpen.length - 1;
  }

  protected addPart(w: WordState | null, kind: ShellPartKind, start: number, end: number): MutablePart {
    const part: MutablePart = { kind, start, end };
    if (w) addTo(w.token, part);
    return part;
  }

  // --- character marking ---------------------------------------------------------------------------------

  /** Data character of word `w`, optionally inside quote region `region`. */
  protected content(pos: number, w: WordState | null, region: number): void {
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
  protected delimiter(pos: number, w: WordState | null, region: number, flag: number): void {
    this.flags[pos]! |= flag;
    if (region !== 0) this.quoteOf[pos] = region;
    if (!w) return;
    this.tokenOf[pos] = w.index;
    if (w.segPending) this.flags[pos]! |= CharFlag.SegmentStart;
    if (w.trailFrom < 0) w.trailFrom = pos;
    w.trailTo = pos;
  }

  /** Syntax characters [pos, pos+len) of class `cls`, belonging to token `w` (if any). */
  protected hard(pos: number, len: number, cls: SyntaxClass, w: WordState | null): void {
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
  protected endSegment(w: WordState): void {
    if (w.lastContent >= 0) this.flags[w.lastContent]! |= CharFlag.SegmentEnd;
    if (w.trailFrom >= 0) {
      // Only delimiters of this word lie in that span: anything else (syntax, a nested token) ends the segment first.
      for (let p = w.trailFrom; p <= w.trailTo; p++) {
        if (this.tokenOf[p] === w.index && (this.flags[p]! & (CharFlag.Delimiter | CharFlag.Escape)) !== 0) this.flags[p]! |= CharFlag.SegmentEnd;
      }
      w.trailFrom = -1;
    }
  }

  protected pushToken(kind: ShellTokenKind, start: number, end: number, depth: number): number {
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

  protected simpleToken(kind: ShellTokenKind, start: number, end: number, cls: SyntaxClass, depth: number): void {
    const idx = this.pushToken(kind, start, end, depth);
    for (let k = start; k < end; k++) {
      this.syntax[k] = cls;
      this.tokenOf[k] = idx;
    }
  }

  protected wordState(idx: number): WordState {
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
}
