import { commandLine, type ExecEvent } from '../events.js';

/**
 * Which programs make a shell parse text: the one list the command-injection detector uses, both for an
 * argv handed to `execFile`/`spawn` (hooks pass it raw) and for commands nested inside a shell command line.
 *
 * Four families:
 * - **shells**: `sh bash dash zsh ksh mksh ash yash posh rbash fish csh tcsh` — the operand of `-c`
 *   (`-lc`, `-ec`, `sh -c -x '…'`) is a command line;
 * - **programs with a command option** that they hand to a shell: `su`/`runuser` (`-c`, `--command`),
 *   `flock … -c`, `script -c`;
 * - **wrappers** that run the rest of their argv as a program, whatever they do around it: `env`, `sudo`,
 *   `doas`, `nice`, `nohup`, `timeout`, `stdbuf`, `setsid`, `chroot`, `ionice`, `taskset`, `time`,
 *   `xargs`, `busybox` (its first operand is the applet), `command`, `exec`. The wrapped program is judged
 *   again: `sudo -u app sh -c '…'`, `env FOO=1 busybox sh -c '…'`, `nice -n 5 su -c '…'`.
 * - **remote or deferred command lines**: `ssh host cmd…` and `watch cmd…` join their remaining
 *   arguments with blanks and a shell parses the result.
 * Beyond the list, any argv word that names a shell and is followed by a `-c` option (`docker exec c
 * bash -lc '…'`, `kubectl exec p -- sh -c '…'`) starts a command line too.
 */

export const SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'yash', 'posh', 'rbash', 'fish', 'csh', 'tcsh']);

/** Programs whose `-c`/`--command` value is a command line for a shell. */
export const COMMAND_OPTION_PROGRAMS: ReadonlySet<string> = new Set(['su', 'runuser', 'flock', 'script']);

interface WrapperSpec {
  /** Short options that take the next argument as their value (`-u user`). */
  readonly valueOptions: string;
  /** Long options that take the next argument as their value when not written `--name=value`. */
  readonly longValueOptions?: readonly string[];
  /** Operands before the wrapped program (`timeout DURATION cmd`, `chroot ROOT cmd`). */
  readonly operands?: number;
  /** `NAME=value` words before the program are environment assignments (`env`). */
  readonly assignments?: boolean;
}

const WRAPPERS: ReadonlyMap<string, WrapperSpec> = new Map<string, WrapperSpec>([
  ['env', { valueOptions: 'uCS', longValueOptions: ['--unset', '--chdir', '--split-string'], assignments: true }],
  ['sudo', { valueOptions: 'ugpChDrtTUR', longValueOptions: ['--user', '--group', '--prompt', '--close-from', '--host', '--chdir', '--role', '--type', '--command-timeout', '--other-user', '--chroot'] }],
  ['doas', { valueOptions: 'uC' }],
  ['nice', { valueOptions: 'n', longValueOptions: ['--adjustment'] }],
  ['nohup', { valueOptions: '' }],
  ['timeout', { valueOptions: 'sk', longValueOptions: ['--signal', '--kill-after'], operands: 1 }],
  ['stdbuf', { valueOptions: 'ioe', longValueOptions: ['--input', '--output', '--error'] }],
  ['setsid', { valueOptions: '' }],
  ['chroot', { valueOptions: '', longValueOptions: ['--userspec', '--groups'], operands: 1 }],
  ['ionice', { valueOptions: 'cnp', longValueOptions: ['--class', '--classdata', '--pid'] }],
  ['taskset', { valueOptions: '', operands: 1 }],
  ['time', { valueOptions: 'fo', longValueOptions: ['--format', '--output'] }],
  ['xargs', { valueOptions: 'adEILnPs', longValueOptions: ['--arg-file', '--delimiter', '--max-lines', '--max-args', '--max-procs', '--max-chars', '--process-slot-var'] }],
  ['busybox', { valueOptions: '' }],
  ['command', { valueOptions: '' }],
  ['exec', { valueOptions: 'a' }],
]);

/** Names of the programs that run the rest of their argv as a program. */
export const WRAPPER_NAMES: readonly string[] = [...WRAPPERS.keys()];

/** Programs that join their remaining operands into one command line for a shell. */
const JOINING: ReadonlyMap<string, WrapperSpec> = new Map<string, WrapperSpec>([
  ['ssh', { valueOptions: 'BbcDEeFIiJLlmOopQRSWw', operands: 1 }],
  ['watch', { valueOptions: 'nq', longValueOptions: ['--interval', '--equexit'] }],
]);

const C_OPTION = /^-[A-Za-z]*c[A-Za-z]*$/;
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** How deep `sudo env nice sh -c` is followed. */
const MAX_WRAPPERS = 8;

export function programName(file: string): string {
  const slash = Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\'));
  return file.slice(slash + 1).replace(/\.exe$/i, '');
}

/**
 * A command line found in an argv: the arguments `[first, last]` it spans, joined by one blank each;
 * `skip` characters of the first one are its option (`--command=`).
 */
interface ArgvScript {
  readonly first: number;
  readonly last: number;
  readonly skip?: number;
}

const COMMAND_EQUALS = ['--command=', '--session-command='];

function commandEquals(arg: string, at: number): ArgvScript | undefined {
  const prefix = COMMAND_EQUALS.find((p) => arg.startsWith(p));
  return prefix === undefined ? undefined : { first: at, last: at, skip: prefix.length };
}

/**
 * The command line a shell parses for this call: with the `shell` option, the argv joined (as Node does);
 * otherwise the argument(s) a shell program or wrapper in argv hands to a shell. Undefined when no shell is
 * involved: then argv cannot change structure.
 */
export function shellScriptOf(event: ExecEvent): string | undefined {
  if (event.shell) return commandLine(event);
  const found = scriptFrom(event.file, event.args, 0, 0);
  if (!found) return undefined;
  const text = found.first === found.last ? event.args[found.first]! : event.args.slice(found.first, found.last + 1).join(' ');
  return found.skip ? text.slice(found.skip) : text;
}

function scriptFrom(file: string, args: readonly string[], from: number, depth: number): ArgvScript | undefined {
  const name = programName(file);
  if (SHELLS.has(name)) return shellOperand(args, from);
  if (COMMAND_OPTION_PROGRAMS.has(name)) {
    const found = commandOption(args, from);
    if (found) return found;
  } else if (depth < MAX_WRAPPERS) {
    const wrapper = WRAPPERS.get(name);
    if (wrapper) {
      const program = programIndex(args, from, wrapper);
      return program === undefined ? undefined : scriptFrom(args[program]!, args, program + 1, depth + 1);
    }
    const joining = JOINING.get(name);
    if (joining && !(name === 'watch' && args.slice(from).some((a) => a === '-x' || a === '--exec'))) {
      const first = programIndex(args, from, joining);
      if (first !== undefined) return { first, last: args.length - 1 };
    }
  }
  // Unknown programs: a later word naming a shell right before its `-c` option.
  for (let i = from; i + 1 < args.length; i++) {
    if (SHELLS.has(programName(args[i]!)) && C_OPTION.test(args[i + 1]!)) return shellOperand(args, i + 1);
  }
  return undefined;
}

/** `sh [options] -c [options] script [name args…]`: the first operand after a `-c` option is the script. */
function shellOperand(args: readonly string[], from: number): ArgvScript | undefined {
  let sawC = false;
  for (let i = from; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return sawC && i + 1 < args.length ? { first: i + 1, last: i + 1 } : undefined;
    if (arg === '--command' || arg === '-C') {
      // fish: `--command CMD`; `--command=CMD` is handled below.
      return i + 1 < args.length ? { first: i + 1, last: i + 1 } : undefined;
    }
    const inline = commandEquals(arg, i);
    if (inline) return inline;
    if (C_OPTION.test(arg)) {
      sawC = true;
      continue;
    }
    if (arg === '-o' || arg === '+o' || arg === '-O' || arg === '+O') {
      i++;
      continue;
    }
    if (arg.startsWith('-') || arg.startsWith('+')) continue;
    // The first operand: the script with `-c`, a script file without.
    return sawC ? { first: i, last: i } : undefined;
  }
  return undefined;
}

/** `su [options] [user] -c CMD`, `flock FILE -c CMD`, `script -c CMD`: the option's value, wherever it is. */
function commandOption(args: readonly string[], from: number): ArgvScript | undefined {
  for (let i = from; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return undefined;
    const inline = commandEquals(arg, i);
    if (inline) return inline;
    if ((arg === '--command' || arg === '--session-command' || C_OPTION.test(arg)) && i + 1 < args.length) return { first: i + 1, last: i + 1 };
  }
  return undefined;
}

/** Index of the wrapped program in `args`: after options (and their values), assignments and operands. */
function programIndex(args: readonly string[], from: number, spec: WrapperSpec): number | undefined {
  let operands = spec.operands ?? 0;
  for (let i = from; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      while (operands > 0 && i < args.length) {
        operands--;
        i++;
      }
      return i < args.length ? i : undefined;
    }
    if (arg.startsWith('--') && arg.length > 2) {
      if (!arg.includes('=') && spec.longValueOptions?.includes(arg)) i++;
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // getopt: in `-Eu user` / `-uuser` the first letter that takes a value ends the bundle, and the value
      // is the next word only when nothing follows that letter. `nice -10` has no such letter.
      for (let k = 1; k < arg.length; k++) {
        if (spec.valueOptions.includes(arg[k]!)) {
          if (k === arg.length - 1) i++;
          break;
        }
      }
      continue;
    }
    if (spec.assignments && ASSIGNMENT.test(arg)) continue;
    if (operands > 0) {
      operands--;
      continue;
    }
    return i;
  }
  return undefined;
}

/**
 * Indices in `args` of the programs a wrapper chain starting at `file` runs: for `sudo -u x env A=1 find .`
 * the indices of `env` and `find`. Empty when `file` wraps nothing. The last one is the program whose
 * options matter (dangerous-options.ts); an input that *is* one of them picks the program that runs.
 */
export function wrappedPrograms(file: string, args: readonly string[]): number[] {
  const out: number[] = [];
  let name = programName(file);
  let from = 0;
  for (let depth = 0; depth < MAX_WRAPPERS; depth++) {
    const spec = WRAPPERS.get(name);
    if (!spec) break;
    const i = programIndex(args, from, spec);
    if (i === undefined) break;
    out.push(i);
    name = programName(args[i]!);
    from = i + 1;
  }
  return out;
}

/** Names, for a cheap pre-check of a command line that may nest a shell (`sudo su -c '…'` inside `sh -c`). */
export const NESTING_PROGRAMS: readonly string[] = [...SHELLS, ...COMMAND_OPTION_PROGRAMS];
