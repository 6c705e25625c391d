/**
 * The vocabulary of the shell tokenizer: per-character syntax classes and flags, tokens and their parts.
 * Kept apart from the scanner so both the scanner's files and the public entry point can import it.
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
