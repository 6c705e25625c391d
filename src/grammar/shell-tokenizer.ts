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

/**
 * Per-class prefix counts in 1 byte per character: `low[k]` counts the class's characters in [block start, k)
 * (at most 255 inside a 256-character block) and `base[k >> 8]` those before the block, so
 * count(0, k) = base[k >> 8] + low[k], exact and O(1). Built on the first query of each class (a benign span
 * queries every class, an attack stops at the first class found): at most 8 bytes per character in all,
 * against 32 for one Int32 row of 8 counts per character.
 */
interface ClassCounts {
  readonly low: Uint8Array;
  readonly base: Int32Array;
}

function classCounts(syntax: Uint8Array, cls: number): ClassCounts {
  const n = syntax.length;
  const low = new Uint8Array(n + 1);
  const base = new Int32Array((n >>> 8) + 1);
  let total = 0;
  let blockStart = 0;
  for (let k = 0; k <= n; k++) {
    if ((k & 255) === 0) {
      base[k >>> 8] = total;
      blockStart = total;
    }
    low[k] = total - blockStart;
    if (k < n && syntax[k] === cls) total++;
  }
  return { low, base };
}

/** Scan a command line once. Never throws; linear in its length. */
export function scanShell(command: string): ShellScan {
  const s = new Scanner(command);
  s.run();
  const { syntax } = s;
  const byClass: Array<ClassCounts | undefined> = [];
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
      const c = (byClass[cls] ??= classCounts(syntax, cls));
      return c.base[end >>> 8]! + c.low[end]! - (c.base[start >>> 8]! + c.low[start]!);
    },
  };
}

/** Tokens of a command line (all nesting levels, by start offset). */
export function tokenizeShell(command: string): readonly ShellToken[] {
  return scanShell(command).tokens;
}
