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
 *
 * Layout: shell/syntax.ts (this vocabulary), shell/state.ts (shared scan state, character marking),
 * shell/quoting.ts, shell/heredoc.ts and shell/scanner.ts (the program level and the driver loop).
 */

import { Scanner } from './shell/scanner.js';
import type { ShellScan, ShellToken } from './shell/syntax.js';

export {
  CharFlag,
  SyntaxClass,
  type ShellPart,
  type ShellPartKind,
  type ShellScan,
  type ShellToken,
  type ShellTokenKind,
} from './shell/syntax.js';

const CLASS_COUNT = 8; // classes 1..8 get prefix sums

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
