import type { ExecEvent, UserInput } from '../events.js';
import type { Detector, Finding } from './types.js';
import { CharFlag, scanShell, SyntaxClass, type ShellScan, type ShellToken } from '../grammar/shell-tokenizer.js';
import { forEachOccurrence } from '../grammar/occurrences.js';
import { NESTING_PROGRAMS, programName, shellScriptOf, WRAPPER_NAMES, wrappedPrograms } from './shell-programs.js';
import { DANGEROUS_OPTIONS, dangerousOption, dangerousScript } from './dangerous-options.js';
import { isCoincidence, isProgramCoincidence } from './coincidence.js';
import { spendWork } from '../grammar/work-budget.js';

/**
 * Shell command injection: find each request value inside the command line a shell will parse, and ask the
 * shell grammar whether that occurrence is data or syntax (Su & Wassermann's criterion).
 *
 * An occurrence is *data* — a `vulnerability`, reported but never blocked — when it lies inside one word,
 * contains no shell syntax of its own (operators, separators, redirections, comments, substitutions,
 * unquoted glob/tilde/brace characters) and neither leaves nor opens a quote it does not also close.
 * Quoting that the input brings *and closes itself* (`'a b'`, `a\ b`) is data: it cannot change structure.
 * Anything else is an `attack`, and so is an occurrence that names the program of a command.
 *
 * Nested shells: the operand of `sh -c`, the arguments of `eval` and here-documents/strings fed to a shell
 * are command lines too. They are judged again after quote removal (up to 3 levels), so `sh -c "ls {}"`
 * with `x; id` is an attack although the outer shell only sees a quoted word.
 *
 * Whether a shell is involved at all is decided here, from the call's raw data (shell-programs.ts): the
 * `shell` option, a shell program in argv (`sh -c`, `su -c`), or a wrapper around one (`sudo`, `env`,
 * `xargs`, `busybox`, `nice`, `timeout` …). Offsets are into that command line (`targetOf(event)`).
 * No shell: argv cannot change structure, so never an attack; a value that *is* the program run is
 * reported as a vulnerability (`program`, offsets into `event.file`).
 *
 * Cost: the command is scanned once, lazily (only when some input occurs in it, or it may nest a shell);
 * each occurrence is then judged in O(1) from per-character tables and prefix sums. Occurrences are found
 * with indexOf (periodic values included, see occurrences.ts), so the check is linear in the command length
 * per distinct input value.
 */

export type CommandInjectionReason =
  // vulnerability: the input only adds or changes arguments
  | 'word' // inside one unquoted (or self-quoted) word
  | 'quoted' // inside one quoted region of the command ('…', "…", $'…', here-document body)
  | 'program' // no shell: the input is the program that is executed (or the one a wrapper runs)
  | 'words' // several words: more arguments
  | 'expansion' // unquoted * ? [ ~ {a,b}: a word becomes file names or several words
  | 'parameter' // $0…$9: a positional parameter (empty or the script's own arguments)
  | 'comment' // a # that starts a comment: the rest of the line is dropped
  | 'unbalanced-quote' // opens or closes a quote, but the command after it keeps its structure (or fails to parse)
  | 'parenthesis' // a lone ( or ) (`:)`): the shell fails to parse, nothing more runs
  // attack: the input adds a command, an operator, a substitution, a redirection or an option that runs code
  | 'breaks-quote' // closes/opens a quote so that the app's own text after it becomes commands or operators
  | 'substitution' // $( ) ` ` $(( )) ${ } $name
  | 'separator' // ; & newline ;;
  | 'operator' // && || | |& ( )
  | 'redirection' // < > >> << >& …
  | 'command-word' // names the program of a command (or the program a wrapper such as sudo runs)
  | 'option'; // an option that runs code or writes files (dangerous-options.ts), or such an awk/sed script

/** At most this many findings of each kind are reported per input (an input can occur very many times). */
export const MAX_FINDINGS_PER_INPUT = 16;

/** Attack reasons by syntax class, in the order they are reported when several apply. */
const ATTACK_CLASSES: readonly [Exclude<SyntaxClass, 0>, CommandInjectionReason][] = [
  [SyntaxClass.QuoteBreak, 'breaks-quote'],
  [SyntaxClass.Substitution, 'substitution'],
  [SyntaxClass.Separator, 'separator'],
  [SyntaxClass.Operator, 'operator'],
  [SyntaxClass.Redirect, 'redirection'],
];
/** Syntax that only changes arguments: reported, in this order, as the vulnerability's reason. */
const ARGUMENT_CLASSES: readonly [Exclude<SyntaxClass, 0>, CommandInjectionReason][] = [
  [SyntaxClass.Comment, 'comment'],
  [SyntaxClass.Gap, 'words'],
  [SyntaxClass.Expansion, 'expansion'],
];
/** Classes that, appearing in the app's own text because of a quote the input broke, make it an attack. */
const STRUCTURE = new Set<number>([SyntaxClass.Separator, SyntaxClass.Operator, SyntaxClass.Redirect, SyntaxClass.Substitution, SyntaxClass.QuoteBreak]);

export interface ShellSpanVerdict {
  readonly attack: boolean;
  readonly reason: CommandInjectionReason;
  /** The span is the whole program name of a command: an attack unless the value is the app's own text (see detect). */
  readonly programWord?: boolean;
}

/** How many occurrences per command get the re-scan that decides whether a broken quote changed the rest. */
const MAX_RESCANS = 16;

/** Per-command state shared by the occurrences judged in it. */
export class ShellJudge {
  private rescans = 0;
  private words: boolean | undefined;
  constructor(readonly scan: ShellScan) {}

  /** Worth looking at programs and options: the command names a wrapper or a program with dangerous options. */
  mayPickProgram(): boolean {
    return (this.words ??= MAY_PICK_PROGRAM.test(this.scan.source));
  }

  /**
   * Does replacing [s, e) with inert text change the structure of the rest of the command? The input broke a
   * quote; what matters is whether the app's own text after it now holds commands, operators, redirections
   * or substitutions. One re-scan per occurrence, at most MAX_RESCANS per command (then: yes).
   */
  changesRest(s: number, e: number): boolean {
    if (this.rescans++ >= MAX_RESCANS) return true;
    const { scan } = this;
    const src = scan.source;
    const base = scanShell(src.slice(0, s) + 'a'.repeat(e - s) + src.slice(e));
    for (let p = 0; p < src.length; p++) {
      if (p === s) {
        p = e - 1;
        continue;
      }
      const cls = scan.syntax[p]!;
      if (cls !== base.syntax[p] && STRUCTURE.has(cls)) return true;
      const t = scan.tokenOf[p]!;
      if (t >= 0 && scan.tokens[t]!.start === p && scan.tokens[t]!.commandWord) {
        const b = base.tokenOf[p]!;
        if (!(b >= 0 && base.tokens[b]!.start === p && base.tokens[b]!.commandWord)) return true;
      }
    }
    return false;
  }
}

const MAY_PICK_PROGRAM = new RegExp(
  `(?:^|[\\s/;&|(\`'"])(?:${[...DANGEROUS_OPTIONS.keys(), ...WRAPPER_NAMES].join('|')})(?:$|[\\s;&|)\`'"])`,
);

/**
 * Judge the occurrence [s, e) of some input inside the scanned command.
 * Exported for tests and for other detectors that embed shell text.
 */
export function classifyShellSpan(scanOrJudge: ShellScan | ShellJudge, s: number, e: number): ShellSpanVerdict {
  const judge = scanOrJudge instanceof ShellJudge ? scanOrJudge : new ShellJudge(scanOrJudge);
  const scan = judge.scan;
  const { flags, quoteOf, quoteOpen, syntax } = scan;

  // 0. Blanks at the edges that only widen a gap the command already has (`report.pdf ` before a blank,
  //    an operator or the end) change nothing: padded form values are common. Not before `#` (would start
  //    a comment) nor a redirection (`2 >` is not `2>`).
  const widens = (cls: number | undefined): boolean =>
    cls === undefined || cls === SyntaxClass.Gap || cls === SyntaxClass.Separator || cls === SyntaxClass.Operator;
  while (e > s && syntax[e - 1] === SyntaxClass.Gap && widens(syntax[e])) e--;
  while (s < e && syntax[s] === SyntaxClass.Gap && widens(syntax[s - 1])) s++;
  if (s === e) return { attack: false, reason: 'word' };

  // 1. Shell syntax inside the span that adds a command, an operator, a redirection or a substitution.
  //    `$1` is a positional parameter: `$5` in a price, data (reported below).
  //    A parenthesis alone (`:)`, `:(`) runs nothing: the shell fails to parse. It is an attack only when a
  //    word after it becomes a command (step 2) or the app's text after it changes structure (step 3).
  let parens = false;
  for (const [cls, reason] of ATTACK_CLASSES) {
    if (scan.count(cls, s, e) === 0) continue;
    if (cls === SyntaxClass.Substitution && onlyPositional(scan, s, e)) continue;
    if (cls === SyntaxClass.Operator && onlyParentheses(scan, s, e)) {
      parens = true;
      continue;
    }
    return { attack: true, reason };
  }

  // 2. The input reaches a command position: a word that starts inside the span is the program of a command
  //    (`FOO={} cmd` with `x id`), or the span is a whole path segment (`{}`, `/usr/bin/{}`, `./{}.sh`) of a
  //    command word. Partial segments (`no` in `node`) are left as data: they are far more often a chance
  //    match of a short value than an attack, and can't pick an arbitrary program.
  const first = scan.tokenOf[s]!;
  if (first >= 0) {
    const token = scan.tokens[first]!;
    if (token.commandWord && (flags[s]! & CharFlag.SegmentStart) !== 0 && (scan.tokenOf[e - 1] !== first || (flags[e - 1]! & CharFlag.SegmentEnd) !== 0)) {
      return { attack: true, reason: 'command-word', programWord: scan.tokenOf[e - 1] === first };
    }
  }
  if (parens || scan.count(SyntaxClass.Gap, s, e) > 0) {
    let from = first;
    for (let p = s; from < 0 && p < e; p++) from = scan.tokenOf[p]!;
    for (let t = Math.max(from, 0); t < scan.tokens.length && scan.tokens[t]!.start < e; t++) {
      const token = scan.tokens[t]!;
      if (token.start > s && token.commandWord) return { attack: true, reason: 'command-word' };
    }
  }

  // 3. Quote boundaries (see `crossesQuote`). An app that quotes correctly writes a `'` inside single
  //    quotes as '\'' or '"'"'; a value with a quote at its edge ('90s, James') then matches the text with
  //    one of those delimiters instead of the escaped quote. Trimming such an edge delimiter recovers the
  //    occurrence the app actually wrote. A quote the input really breaks (`O'Brien` unquoted) is an attack
  //    only when the app's own text after it changes structure (`echo {} '; rm x'` with `'`).
  let qs = s;
  let unbalanced = false;
  if (crossesQuote(scan, s, e)) {
    const lead = idiomaticQuote(scan, s) ? 1 : 0;
    const trail = e - 1 > s && idiomaticQuote(scan, e - 1) ? 1 : 0;
    const candidates: [number, number][] = [];
    if (lead) candidates.push([s + 1, e]);
    if (trail) candidates.push([s, e - 1]);
    if (lead && trail && e - s > 2) candidates.push([s + 1, e - 1]);
    const ok = candidates.find(([a, b]) => !crossesQuote(scan, a, b));
    if (ok) qs = ok[0];
    else unbalanced = true;
  }
  // A trailing backslash that escapes the command's next character (a closing quote, a blank, a newline).
  // `\\` is exempt: that is how an app escapes a backslash, and the value's `\` is then the escaped one.
  if ((flags[e - 1]! & CharFlag.Escape) !== 0 && scan.source[e] !== '\\') unbalanced = true;
  if ((unbalanced || parens) && judge.changesRest(s, e)) return { attack: true, reason: unbalanced ? 'breaks-quote' : 'operator' };

  // 4. Options that run code or write files, and programs run by a wrapper (`sudo {}`), in the words the
  //    input starts.
  if (judge.mayPickProgram()) {
    const risk = wordRisk(scan, s, e);
    if (risk) return { attack: true, reason: risk };
  }

  // 5. Data. The reason says what the input does to the command's arguments.
  if (unbalanced) return { attack: false, reason: 'unbalanced-quote' };
  if (parens) return { attack: false, reason: 'parenthesis' };
  for (const [cls, reason] of ARGUMENT_CLASSES) if (scan.count(cls, s, e) > 0) return { attack: false, reason };
  if (scan.count(SyntaxClass.Substitution, s, e) > 0) return { attack: false, reason: 'parameter' };
  const q = quoteOf[qs]!;
  return { attack: false, reason: q !== 0 && quoteOpen[q]! < qs ? 'quoted' : 'word' };
}

/** Every operator character in [s, e) is a parenthesis. */
function onlyParentheses(scan: ShellScan, s: number, e: number): boolean {
  for (let p = s; p < e; p++) if (scan.syntax[p] === SyntaxClass.Operator && scan.source[p] !== '(' && scan.source[p] !== ')') return false;
  return true;
}

/** Every substitution character in [s, e) is the `$` of `$0`…`$9` (not `${1}`: braces may hold code). */
function onlyPositional(scan: ShellScan, s: number, e: number): boolean {
  const { source, syntax } = scan;
  for (let p = s; p < e; p++) {
    if (syntax[p] !== SyntaxClass.Substitution) continue;
    // The scanner marks both characters of `$5`.
    const digitAt = (k: number): boolean => source.charCodeAt(k) >= 48 && source.charCodeAt(k) <= 57;
    if (source[p] === '$' && digitAt(p + 1)) p++;
    else if (!(digitAt(p) && source[p - 1] === '$' && syntax[p - 1] === SyntaxClass.Substitution)) return false;
  }
  return true;
}

const MAX_WALK = 512;

/**
 * The words of the simple command holding token `t` (its program first), after quote removal, with for each
 * the offset of its first content character. Redirection targets and nested commands are left out.
 */
function simpleCommand(scan: ShellScan, t: number): { texts: string[]; starts: number[]; ends: number[] } {
  const { tokens } = scan;
  const depth = tokens[t]!.depth;
  let first = t;
  // Bounded: a simple command longer than this many tokens is judged from its last MAX_WALK ones.
  for (let k = t; k >= 0 && t - k < MAX_WALK; k--) {
    const tok = tokens[k]!;
    if (tok.depth !== depth || tok.kind === 'heredoc' || tok.kind === 'comment') continue;
    if (tok.kind === 'separator' || tok.kind === 'operator') break;
    if (tok.kind === 'word') first = k;
    if (tok.commandWord) break;
  }
  const texts: string[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  let skip = false;
  for (let k = first; k < tokens.length && k - first < 4 * MAX_WALK && texts.length < 256; k++) {
    const tok = tokens[k]!;
    if (tok.depth !== depth || tok.kind === 'heredoc' || tok.kind === 'comment') continue;
    if (tok.kind === 'separator' || tok.kind === 'operator') break;
    if (tok.kind === 'redirect') {
      skip = true;
      continue;
    }
    if (skip) {
      skip = false;
      continue;
    }
    // Options and program names are short; a long word is neither (and unquoting it would cost).
    const lit = tok.end - tok.start <= 4096 ? literalText(scan, tok, k) : undefined;
    texts.push(lit?.text ?? '');
    starts.push(lit !== undefined && lit.map.length > 0 ? lit.map[0]! : tok.start);
    ends.push(tok.end);
  }
  return { texts, starts, ends };
}

/** What the input does to the words it starts: picks a wrapped program, or adds a dangerous option. */
function wordRisk(scan: ShellScan, s: number, e: number): 'command-word' | 'option' | undefined {
  let t = scan.tokenOf[s]!;
  if (t < 0) {
    // The span starts with a blank: the first token inside it.
    for (let p = s; p < e && t < 0; p++) t = scan.tokenOf[p]!;
    if (t < 0) return undefined;
  }
  const { texts, starts, ends } = simpleCommand(scan, t);
  const value = scan.source.slice(s, e);
  return argvRisk(
    texts,
    (i) => starts[i]! >= s && starts[i]! < e,
    (i) => ends[i]! > s && starts[i]! < e,
    value,
  );
}

/**
 * An argv (program first) where the request controls some words: `controls(i)` when it writes word i's first
 * character, `touches(i)` when it writes any of it. `command-word`: it names a program a wrapper runs;
 * `option`: it adds an option of dangerous-options.ts, or code to an awk/sed script. Shared by the shell and
 * the no-shell paths.
 */
export function argvRisk(
  words: readonly string[],
  controls: (i: number) => boolean,
  touches: (i: number) => boolean,
  value: string,
): 'command-word' | 'option' | undefined {
  if (words.length < 2) return undefined;
  const chain = wrappedPrograms(words[0]!, words.slice(1)).map((i) => i + 1);
  if (chain.some(controls)) return 'command-word';
  const at = chain.length > 0 ? chain[chain.length - 1]! : 0;
  const spec = DANGEROUS_OPTIONS.get(programName(words[at]!));
  if (!spec) return undefined;
  for (let i = at + 1; i < words.length; i++) {
    if (controls(i) && dangerousOption(spec, words[i]!, words[i + 1])) return 'option';
    // `-o ProxyCommand=…` where the request wrote only the value.
    if (spec.valued && controls(i) && i > at + 1 && words[i - 1] === `-${spec.valued.option}` && dangerousOption(spec, words[i - 1]!, words[i])) return 'option';
    if (spec.script && touches(i) && !words[i]!.startsWith('-') && dangerousScript(spec.script, value)) return 'option';
  }
  return undefined;
}

/**
 * Does [s, e) leave or enter a quoted region without the other delimiter? Inside a span free of
 * substitutions (anything else is an attack anyway) quoted regions cannot nest, so only the regions
 * holding the first and the last character can cross the span's edges.
 */
function crossesQuote(scan: ShellScan, s: number, e: number): boolean {
  const { quoteOf, quoteOpen, quoteClose } = scan;
  const first = quoteOf[s]!;
  if (first !== 0 && quoteOpen[first]! < s && quoteClose[first]! < e) return true;
  const last = quoteOf[e - 1]!;
  return last !== 0 && quoteOpen[last]! >= s && quoteClose[last]! >= e;
}

/** A `'` delimiter within two characters of a quoted or escaped `'`: part of '\'' or '"'"'. */
function idiomaticQuote(scan: ShellScan, p: number): boolean {
  if (scan.source[p] !== "'" || (scan.flags[p]! & CharFlag.Delimiter) === 0) return false;
  return contentQuoteNear(scan, p - 1, -1) || contentQuoteNear(scan, p + 1, 1);
}

function contentQuoteNear(scan: ShellScan, p: number, dir: 1 | -1): boolean {
  const { source, flags, syntax } = scan;
  for (let k = 0; k < 3 && p >= 0 && p < source.length; k++, p += dir) {
    const f = flags[p]!;
    if (source[p] === "'" && (f & CharFlag.Delimiter) === 0 && syntax[p] === SyntaxClass.Literal) return true;
    if ((f & (CharFlag.Delimiter | CharFlag.Escape)) === 0) return false;
  }
  return false;
}

/** Worth searching for: Zen's limits — one-character values match everywhere, except `~` (home directory). */
function worthChecking(value: string, haystack: string): boolean {
  return (value.length >= 2 || value === '~') && value.length <= haystack.length;
}

interface Occurrence {
  readonly start: number;
  readonly end: number;
  readonly verdict: ShellSpanVerdict;
}

/** How deep `sh -c "sh -c '…'"` is followed. */
const MAX_NESTING = 3;

/** Programs in a command line whose `-c` operand is a command line for a shell (`sudo sh -c`, `su -c` too). */
const TAKES_COMMAND: ReadonlySet<string> = new Set(NESTING_PROGRAMS);
/** `-c`, `-lc`, `-ec`…: one dash, letters only, one of them `c`. A loop, not a regex: `-ccc…c1` backtracked. */
function isShellCOption(word: string): boolean {
  if (word.length < 2 || word.charCodeAt(0) !== 45) return false;
  let c = false;
  for (let i = 1; i < word.length; i++) {
    const l = word.charCodeAt(i) | 0x20;
    if (l < 97 || l > 122) return false;
    if (word.charCodeAt(i) === 99) c = true;
  }
  return c;
}
/**
 * Cheap pre-check: could the command hold code for a nested shell? The app writes those names plainly
 * (an attacker who has to obfuscate them has already broken out). Linear: literals only, no backtracking.
 */
const MAY_NEST = new RegExp(`\\b(?:eval|${NESTING_PROGRAMS.join('|')})\\b|<<`);

/**
 * Judge every occurrence of every value in `command`, then — because a value that is data here can be code
 * for a nested shell — do the same inside each code fragment (`sh -c '…'`, `eval …`, a here-document fed
 * to a shell) after quote removal, mapping offsets back. Same span found at both levels: attack wins.
 */
function judgeCommand(command: string, values: readonly string[], depth: number, seen: FragmentMemo = new Map()): Map<string, Occurrence[]> {
  const result = new Map<string, Occurrence[]>();
  let scan: ShellScan | undefined;
  let shellJudge: ShellJudge | undefined;
  for (const value of values) {
    if (!worthChecking(value, command)) continue;
    const first = command.indexOf(value);
    if (first < 0) continue;
    scan ??= scanShell(command);
    shellJudge ??= new ShellJudge(scan);
    const found: Occurrence[] = [];
    let attacks = 0;
    let data = 0;
    const shell = shellJudge;
    forEachOccurrence(command, value, first, (start) => {
      const end = start + value.length;
      const verdict = classifyShellSpan(shell, start, end);
      if (verdict.attack ? attacks++ < MAX_FINDINGS_PER_INPUT : data++ < MAX_FINDINGS_PER_INPUT) found.push({ start, end, verdict });
      // Stop once nothing more would be reported.
      if (attacks >= MAX_FINDINGS_PER_INPUT && data >= MAX_FINDINGS_PER_INPUT) return false;
      // Occurrences inside one plain argument word (no quotes, escapes, expansions; not a program name) are
      // judged alike: the same characters and the same word touched; one that starts the word can only add
      // risk (argvRisk), so after a data verdict the rest of them are skipped (`echo aaaa…` with a long run of
      // one letter as input judged each overlapping occurrence).
      if (!verdict.attack) {
        const word = plainWordAround(shell.scan, start, end);
        if (word !== undefined && word.end - value.length + 1 > start + 1) return word.end - value.length + 1;
      }
      return true;
    });
    result.set(value, found);
  }
  if (depth >= MAX_NESTING || !MAY_NEST.test(command)) return result;
  scan ??= scanShell(command);
  // Index of each value's occurrences by span (start·(n+1)+end), built once per value (not once per fragment:
  // thousands of `sh -c` fragments would make that quadratic).
  const spansOf = new Map<string, Map<number, number>>();
  const key = (start: number, end: number): number => start * (command.length + 1) + end;
  for (const fragment of codeFragments(scan)) {
    spendWork();
    // The same fragment text at the same depth judges the same way: `sh -c "…" -c "…"` repeated thousands
    // of times is judged once per distinct text.
    const memoKey = `${depth}\u0000${fragment.text}`;
    let judged = seen.get(memoKey);
    if (judged === undefined) {
      judged = judgeCommand(fragment.text, values, depth + 1, seen);
      seen.set(memoKey, judged);
    }
    for (const [value, inner] of judged) {
      const outer = result.get(value) ?? [];
      let bySpan = spansOf.get(value);
      if (bySpan === undefined) {
        bySpan = new Map(outer.map((o, k) => [key(o.start, o.end), k]));
        spansOf.set(value, bySpan);
      }
      for (const o of inner) {
        const start = fragment.map[o.start]!;
        const end = fragment.map[o.end - 1]! + 1;
        const same = bySpan.get(key(start, end));
        if (same === undefined) {
          bySpan.set(key(start, end), outer.length);
          outer.push({ start, end, verdict: o.verdict });
        } else if (o.verdict.attack && !outer[same]!.verdict.attack) outer[same] = { start, end, verdict: o.verdict };
      }
      result.set(value, outer);
    }
  }
  return result;
}

/** The plain argument word that holds [s, e), or undefined. */
function plainWordAround(scan: ShellScan, s: number, e: number): ShellToken | undefined {
  const t = scan.tokenOf[s]!;
  if (t < 0) return undefined;
  const token = scan.tokens[t]!;
  if (token.kind !== 'word' || token.commandWord || token.parts.length > 0 || s < token.start || e > token.end) return undefined;
  return token;
}

/** Judgements of nested fragments by depth and text, for one top-level command. */
type FragmentMemo = Map<string, Map<string, Occurrence[]>>;

/** Text a nested shell will parse, with the offset in the outer command of each of its characters. */
interface Fragment {
  readonly text: string;
  readonly map: Int32Array;
}

interface CommandState {
  eval: boolean;
  shell: boolean;
  afterC: boolean;
  /** The next word is a redirection target; `codeTarget`: a here-string for a shell. */
  skipNext: boolean;
  codeTarget: boolean;
  /** Token indexes of the arguments of `eval` so far. */
  evalArgs: number[] | null;
}

const freshState = (): CommandState => ({ eval: false, shell: false, afterC: false, skipNext: false, codeTarget: false, evalArgs: null });
const reset = (st: CommandState): CommandState => {
  st.eval = st.shell = st.afterC = st.skipNext = st.codeTarget = false;
  st.evalArgs = null;
  return st;
};

/**
 * Code fragments of a scanned command: the operand of `-c` given to a shell, the arguments of `eval`
 * (joined by blanks, as eval does), here-documents and here-strings whose command is a shell.
 * Not followed: `| sh` (stdin of a pipe), `ssh host cmd`, `find -exec`, `xargs`, interpreters (`python -c`).
 */
function codeFragments(scan: ShellScan): Fragment[] {
  const out: Fragment[] = [];
  const states: CommandState[] = []; // by nesting depth: tokens of nested $(…) interleave with outer ones
  const heredocIsCode: boolean[] = [];
  let heredocs = 0;
  const flush = (st: CommandState): void => {
    if (st.evalArgs === null) return;
    // eval joins its arguments with one blank, empty ones included.
    let capacity = 0;
    for (const index of st.evalArgs) capacity += scan.tokens[index]!.end - scan.tokens[index]!.start + 1;
    const joined = new FragmentBuilder(capacity);
    st.evalArgs.forEach((index, k) => {
      const t = scan.tokens[index]!;
      // The blank stands for the gap before the argument: it points at the argument's first character, so
      // the map stays ascending (an empty '' has no character of its own to point at: its start).
      const blank = k > 0 ? joined.add(' ', t.start) : -1;
      const first = joined.length;
      joined.literal(scan, t, index);
      if (blank >= 0 && joined.length > first) joined.map[blank] = joined.map[first]!;
    });
    out.push(joined.done());
    st.evalArgs = null;
  };
  // Fragments nest (`sh -c "$(sh -c …)"`); only the outermost are taken — judging one re-scans it and
  // finds the inner ones — so the fragments of one level are disjoint and the whole walk stays linear.
  let coveredUntil = 0;
  const take = (f: Fragment, end: number): void => {
    out.push(f);
    coveredUntil = end;
  };
  scan.tokens.forEach((t, index) => {
    if (t.start < coveredUntil) return;
    const st = (states[t.depth] ??= freshState());
    switch (t.kind) {
      case 'separator':
      case 'operator':
        flush(st);
        reset(st);
        return;
      case 'redirect':
        st.skipNext = true;
        if (t.text.endsWith('<<<')) st.codeTarget = st.shell;
        else if (/<<-?$/.test(t.text)) heredocIsCode.push(st.shell);
        return;
      case 'heredoc':
        if (heredocIsCode[heredocs++]) take(literalText(scan, t, index), t.end);
        return;
      case 'comment':
        return;
      case 'word':
        break;
    }
    if (st.skipNext) {
      if (st.codeTarget) take(literalText(scan, t, index), t.end);
      st.skipNext = st.codeTarget = false;
      return;
    }
    if (st.eval) {
      (st.evalArgs ??= []).push(index);
      coveredUntil = t.end;
      return;
    }
    if (st.afterC) {
      take(literalText(scan, t, index), t.end);
      st.afterC = false;
      return;
    }
    // Program names and options are short; a long word is neither (and unquoting it would cost).
    const word = t.parts.length === 0 ? t.text : t.end - t.start <= 256 ? literalText(scan, t, index).text : '';
    const name = word.slice(word.lastIndexOf('/') + 1);
    if (t.commandWord) {
      flush(st);
      reset(st);
      st.eval = name === 'eval';
      st.shell = TAKES_COMMAND.has(name);
    } else if (st.shell && isShellCOption(word)) st.afterC = true;
    else if (TAKES_COMMAND.has(name)) st.shell = true;
  });
  for (const st of states) if (st) flush(st);
  return out;
}

/**
 * The value of token `t` after quote removal: its own delimiters, escaping backslashes, line continuations
 * and here-document terminator dropped; nested substitutions kept as written (their output is unknown).
 */
function literalText(scan: ShellScan, t: ShellToken, index: number): Fragment {
  return new FragmentBuilder(t.end - t.start).literal(scan, t, index).done();
}

/**
 * Builds a fragment from runs of the outer command: each run kept is one slice (not one string per
 * character) and the map is a typed array sized up front (the caller knows an upper bound).
 */
class FragmentBuilder {
  readonly map: Int32Array;
  length = 0;
  private readonly pieces: string[] = [];

  constructor(capacity: number) {
    this.map = new Int32Array(capacity);
  }

  /** Appends `text` (one character) standing for outer offset `at`; returns its index in the fragment. */
  add(text: string, at: number): number {
    this.pieces.push(text);
    this.map[this.length] = at;
    return this.length++;
  }

  literal(scan: ShellScan, t: ShellToken, index: number): this {
    const { source, flags, tokenOf, syntax } = scan;
    let runStart = t.start;
    for (let k = t.start; k < t.end; k++) {
      if (tokenOf[k] !== index) continue;
      const dropped =
        (flags[k]! & (CharFlag.Delimiter | CharFlag.Escape)) !== 0 || (syntax[k] === SyntaxClass.QuoteBreak && t.kind === 'heredoc');
      if (!dropped) continue;
      this.run(source, runStart, k);
      // A line continuation drops the newline too.
      if ((flags[k]! & CharFlag.Escape) !== 0 && source[k + 1] === '\n') k++;
      runStart = k + 1;
    }
    this.run(source, runStart, t.end);
    return this;
  }

  done(): Fragment {
    return { text: this.pieces.length === 1 ? this.pieces[0]! : this.pieces.join(''), map: this.map.subarray(0, this.length) };
  }

  private run(source: string, from: number, to: number): void {
    if (to <= from) return;
    this.pieces.push(source.slice(from, to));
    for (let k = from; k < to; k++) this.map[this.length++] = k;
  }
}

/**
 * No shell: argv can't change structure. If an input *is* the program (or its last path segment), or the
 * program a wrapper runs (`execFile('sudo', ['-u', 'app', prog])`), the request chooses which binary runs —
 * reported as a vulnerability (`program`), offsets into `event.file`. An input that starts an argument with
 * an option that runs code or writes files (`git clone --upload-pack=…`, dangerous-options.ts) is an attack
 * (`option`), offsets into the argv joined by blanks.
 */
function detectProgram(event: ExecEvent, inputs: readonly UserInput[]): Finding[] {
  const file = event.file;
  const findings: Finding[] = [];
  const seen = new Set<UserInput>();
  const words = [file, ...event.args];
  for (const input of inputs) {
    const v = input.value;
    if (v.length < 2 || seen.has(input)) continue;
    seen.add(input);
    const risk = argvRisk(words, (i) => i > 0 && words[i]!.startsWith(v), (i) => i > 0 && words[i]!.includes(v), v);
    if (risk === 'option') {
      // The first argument the input starts (or touches, for a script) holds the offsets.
      const i = words.findIndex((w, k) => k > 0 && w.startsWith(v));
      const arg = i > 0 ? i : Math.max(1, words.findIndex((w, k) => k > 0 && w.includes(v)));
      // Offsets into the argv joined by blanks (`targetOf(event)` without a shell).
      let start = words[arg]!.indexOf(v);
      for (let k = 0; k < arg; k++) start += words[k]!.length + 1;
      findings.push({ detector: 'command-injection', kind: 'attack', input, start, end: start + v.length, reason: 'option' });
      continue;
    }
    if (isCoincidence(input, false)) continue;
    const start = file.length - v.length;
    if (v.length <= file.length && file.endsWith(v) && (start === 0 || file[start - 1] === '/' || file[start - 1] === '\\')) {
      findings.push({ detector: 'command-injection', kind: 'vulnerability', input, start, end: file.length, reason: 'program' });
    } else if (risk === 'command-word' && !isProgramCoincidence(input, false)) {
      const i = words.findIndex((w, k) => k > 0 && w.startsWith(v));
      let at = 0;
      for (let k = 0; k < i; k++) at += words[k]!.length + 1;
      findings.push({ detector: 'command-injection', kind: 'vulnerability', input, start: at, end: at + v.length, reason: 'program' });
    }
  }
  return findings;
}

export const commandInjection: Detector<ExecEvent> = {
  id: 'command-injection',
  kinds: ['exec'],
  detect(event: ExecEvent, inputs: readonly UserInput[]): Finding[] {
    const command = shellScriptOf(event);
    if (command === undefined) return detectProgram(event, inputs);

    // Distinct (source, path, value) inputs; each distinct value is judged once.
    const unique = new Map<string, UserInput>();
    for (const input of inputs) {
      if (input.value.length >= 2 || input.value === '~') unique.set(`${input.source}\u0000${input.path}\u0000${input.value}`, input);
    }
    if (unique.size === 0) return [];
    const judged = judgeCommand(command, [...new Set([...unique.values()].map((i) => i.value))], 0);

    const attacks: Finding[] = [];
    const vulns: Finding[] = [];
    for (const input of unique.values()) {
      let a = 0;
      let v = 0;
      const occurrences = judged.get(input.value) ?? [];
      const alsoData = occurrences.some((o) => !o.verdict.attack);
      for (const o of occurrences) {
        const attack = o.verdict.attack;
        if (!attack && isCoincidence(input, o.verdict.reason === 'word')) continue;
        if (o.verdict.programWord && isProgramCoincidence(input, alsoData)) continue;
        if (attack ? a++ >= MAX_FINDINGS_PER_INPUT : v++ >= MAX_FINDINGS_PER_INPUT) continue;
        (attack ? attacks : vulns).push({
          detector: 'command-injection',
          kind: attack ? 'attack' : 'vulnerability',
          input,
          start: o.start,
          end: o.end,
          reason: o.verdict.reason,
        });
      }
    }
    return attacks.concat(vulns);
  },
};
