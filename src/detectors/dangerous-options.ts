/**
 * Programs whose *options* run code or write files. Request input that only adds or changes arguments of a
 * command is a vulnerability (reported); input that puts one of these options in front of one of these
 * programs is an attack (refused), quoted or not, with or without a shell (`execFile('git', ['clone', url])`
 * with `url = "--upload-pack=touch /tmp/x"` runs the command).
 *
 * The data is this table and nothing else, so adding a program is one line. Matching (see `dangerousOption`):
 * - `short`: letters of single-dash options, bundled or not (`-o`, `-sSo`, `-ofile`);
 * - `long`: `--name`, `--name=value` and any unambiguous abbreviation GNU getopt accepts (`--upload-p`);
 * - `single`: single-dash long options matched whole (find's `-exec`);
 * - `valued`: an option whose *value* decides (`ssh -o ProxyCommand=…`, `-oProxyCommand …`);
 * - `script`: the program's script operand is code (`awk` with `system(`, `sed` with the `e` command/flag).
 */

export interface DangerousOptions {
  readonly short?: string;
  readonly long?: readonly string[];
  readonly single?: readonly string[];
  readonly valued?: { readonly option: string; readonly values: readonly string[] };
  readonly script?: 'awk' | 'sed';
}

const TAR: DangerousOptions = {
  short: 'I',
  long: ['--checkpoint-action', '--to-command', '--use-compress-program', '--info-script', '--new-volume-script', '--rsh-command'],
};
const SSH: DangerousOptions = { valued: { option: 'o', values: ['proxycommand', 'localcommand', 'permitlocalcommand', 'knownhostscommand', 'proxyusefdpass'] } };
const AWK: DangerousOptions = { script: 'awk' };
const SED: DangerousOptions = { script: 'sed' };

export const DANGEROUS_OPTIONS: ReadonlyMap<string, DangerousOptions> = new Map<string, DangerousOptions>([
  ['find', { single: ['-exec', '-execdir', '-ok', '-okdir', '-delete', '-fprint', '-fprint0', '-fprintf', '-fls'] }],
  ['tar', TAR],
  ['gtar', TAR],
  ['bsdtar', TAR],
  ['git', { short: 'cu', long: ['--upload-pack', '--receive-pack', '--exec', '--config', '--config-env', '--exec-path', '--output'] }],
  ['ssh', SSH],
  ['scp', { ...SSH, short: 'S' }],
  ['sftp', { ...SSH, short: 'S' }],
  ['curl', { short: 'oOKDc', long: ['--output', '--output-dir', '--remote-name', '--config', '--dump-header', '--cookie-jar', '--trace', '--trace-ascii', '--stderr', '--libcurl', '--etag-save', '--hsts', '--alt-svc'] }],
  ['wget', { short: 'OoaeP', long: ['--output-document', '--output-file', '--append-output', '--execute', '--directory-prefix', '--config'] }],
  ['rsync', { short: 'e', long: ['--rsh', '--rsync-path', '--log-file', '--write-batch', '--only-write-batch'] }],
  ['zip', { short: 'T', long: ['--unzip-command', '--test'] }],
  ['awk', AWK],
  ['gawk', AWK],
  ['mawk', AWK],
  ['nawk', AWK],
  ['sed', SED],
  ['gsed', SED],
]);

/**
 * Is word `i` of `words` (the program's arguments after its name, literal text) an option of `spec` that runs
 * code or writes files? `next` is the following word (for `-o ProxyCommand=…`).
 */
export function dangerousOption(spec: DangerousOptions, word: string, next: string | undefined): boolean {
  if (word.length < 2 || word.charCodeAt(0) !== 45 /* - */) return false;
  if (word.charCodeAt(1) === 45) {
    if (!spec.long || word.length < 4) return false;
    const eq = word.indexOf('=');
    const name = (eq < 0 ? word : word.slice(0, eq)).toLowerCase();
    return spec.long.some((o) => o.startsWith(name));
  }
  if (spec.single?.includes(word)) return true;
  if (spec.valued) {
    const { option, values } = spec.valued;
    if (word[1] === option) {
      const value = (word.length > 2 ? word.slice(2) : next ?? '').toLowerCase();
      if (values.some((v) => value.startsWith(v))) return true;
    }
  }
  if (spec.short) {
    // A bundle of flags: letters until the first non-letter (`-o/tmp/x` is `-o` with a value).
    for (let k = 1; k < word.length; k++) {
      const c = word[k]!;
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) break;
      if (spec.short.includes(c)) return true;
    }
  }
  return false;
}

/**
 * Does request text placed in the script operand of awk or sed make the script run commands or write
 * files? awk: `system`, `getline` (from a command), a pipe or an output redirection; sed: the `e` command
 * or the `e`/`w` flag of `s`, the `w`/`W` commands. Loose on purpose: benign field values do not look like
 * awk or sed programs, and a false alarm here needs such a program typed into a field.
 */
export function dangerousScript(kind: 'awk' | 'sed', text: string): boolean {
  if (kind === 'awk') return text.includes('system') || text.includes('getline') || text.includes('|') || text.includes('>');
  return SED_COMMAND.test(text) || SED_FLAG.test(text);
}
/** `e cmd`, `w file`, `W file` as a command (at the start, after `;`, a newline or a brace). Linear. */
const SED_COMMAND = /(?:^|[;\n{}])[ \t]*(?:[0-9$]+[ \t]*)?[ewW](?:[ \t]|$)/;
/** A flag run after the last delimiter of `s/a/b/…` holding `e` or `w`. Flags and [ew] do not overlap: linear. */
const SED_FLAG = /\/[gpiImM0-9]*[ew]/;
