import { describe, expect, it } from 'vitest';
import { shellScriptOf } from '../../../src/detectors/shell-programs.js';
import { commandInjection } from '../../../src/detectors/command-injection.js';
import { targetOf } from '../../../src/rules/engine.js';
import type { ExecEvent, UserInput } from '../../../src/events.js';

const argv = (file: string, ...args: string[]): ExecEvent => ({ kind: 'exec', op: 'child_process.execFile', file, args, shell: undefined });
const input = (value: string): UserInput => ({ source: 'query', path: 'query.q', value });

describe('shell-programs: which argv makes a shell parse text', () => {
  it.each([
    // shells and their -c operand
    [['sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['/bin/bash', '-lc', 'echo hi; id'], 'echo hi; id'],
    [['bash', '-e', '-c', 'echo hi; id', 'name', 'arg'], 'echo hi; id'],
    [['sh', '-c', '-x', 'echo hi; id'], 'echo hi; id'],
    [['sh', '-o', 'errexit', '-c', 'echo hi; id'], 'echo hi; id'],
    [['dash', '-c', '--', 'echo hi; id'], 'echo hi; id'],
    [['fish', '--command', 'echo hi; id'], 'echo hi; id'],
    [['fish', '--command=echo hi; id'], 'echo hi; id'],
    [['zsh', '-c', 'echo hi; id'], 'echo hi; id'],
    // programs with a command option
    [['su', '-c', 'echo hi; id'], 'echo hi; id'],
    [['su', '-', 'app', '-c', 'echo hi; id'], 'echo hi; id'],
    [['su', '--command=echo hi; id', 'app'], 'echo hi; id'],
    [['runuser', '-l', 'app', '-c', 'echo hi; id'], 'echo hi; id'],
    [['runuser', '-u', 'app', '--', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['flock', '/tmp/lock', '-c', 'echo hi; id'], 'echo hi; id'],
    [['script', '-q', '-c', 'echo hi; id', '/dev/null'], 'echo hi; id'],
    // wrappers around a shell
    [['env', 'FOO=1', '-u', 'BAR', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['env', '-i', '/bin/sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['busybox', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['xargs', '-I', '{}', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['sudo', '-u', 'app', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['sudo', '-Eu', 'app', 'su', '-c', 'echo hi; id'], 'echo hi; id'],
    [['doas', '-u', 'app', 'bash', '-c', 'echo hi; id'], 'echo hi; id'],
    [['nice', '-n', '5', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['nice', '-10', 'su', '-c', 'echo hi; id'], 'echo hi; id'],
    [['timeout', '-s', 'KILL', '5s', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['nohup', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['stdbuf', '-o', 'L', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['stdbuf', '-oL', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['setsid', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['chroot', '/srv/jail', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['ionice', '-c', '3', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['taskset', '0x1', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    [['sudo', 'env', 'nice', 'timeout', '5', 'busybox', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
    // command lines joined from the remaining arguments
    [['ssh', '-p', '22', 'host', 'echo', 'hi;', 'id'], 'echo hi; id'],
    [['watch', '-n', '1', 'echo', 'hi;', 'id'], 'echo hi; id'],
    // unknown programs: a shell followed by its -c option
    [['docker', 'exec', 'c1', 'bash', '-lc', 'echo hi; id'], 'echo hi; id'],
    [['kubectl', 'exec', 'pod', '--', 'sh', '-c', 'echo hi; id'], 'echo hi; id'],
  ])('%j → a shell parses %j', (call, script) => {
    const [file, ...args] = call as string[];
    expect(shellScriptOf(argv(file!, ...args))).toBe(script);
  });

  it.each([
    [['ls', '-la', 'echo hi; id']],
    [['sh', 'script.sh', '-c', 'x']], // a script file, then its own arguments
    [['sh', '--', '-c', 'x']],
    [['su', 'app']],
    [['sudo', '-u', 'app', 'ls', '-c', 'x']],
    [['env', 'FOO=1', 'printenv']],
    [['watch', '-x', 'echo', 'hi; id']], // -x: exec, no shell
    [['grep', '-c', 'sh', 'file']],
    [['timeout', '5']],
  ])('%j → no shell', (call) => {
    const [file, ...args] = call as string[];
    expect(shellScriptOf(argv(file!, ...args))).toBeUndefined();
  });

  it('the shell option: the argv joined as Node does, whatever the program', () => {
    expect(shellScriptOf({ kind: 'exec', op: 'child_process.exec', file: 'echo hi; id', args: [], shell: true })).toBe('echo hi; id');
    expect(shellScriptOf({ kind: 'exec', op: 'child_process.spawn', file: 'echo', args: ['hi;', 'id'], shell: '/bin/bash' })).toBe('echo hi; id');
    expect(shellScriptOf({ kind: 'exec', op: 'child_process.spawn', file: 'echo', args: ['hi;', 'id'], shell: false })).toBeUndefined();
  });

  it('targetOf (spans, policy rules, the verdict cache) is the command line a shell parses, else argv joined', () => {
    expect(targetOf(argv('su', '-c', 'echo hi; id'))).toBe('echo hi; id');
    expect(targetOf(argv('ls', '-la', '/tmp'))).toBe('ls -la /tmp');
  });
});

describe('command-injection judges what those programs hand to a shell', () => {
  it("execFileSync('su', ['-c', 'echo hi; id']) with `hi; id` from the request is an attack", () => {
    const findings = commandInjection.detect(argv('su', '-c', 'echo hi; id'), [input('hi; id')]);
    expect(findings).toEqual([expect.objectContaining({ kind: 'attack', reason: 'separator', start: 5, end: 11 })]);
  });

  it.each([
    ['runuser', ['-u', 'app', '--', 'sh', '-c', 'echo hi; id']],
    ['env', ['sh', '-c', 'echo hi; id']],
    ['busybox', ['sh', '-c', 'echo hi; id']],
    ['xargs', ['sh', '-c', 'echo hi; id']],
    ['sudo', ['sh', '-c', 'echo hi; id']],
    ['nice', ['su', '-c', 'echo hi; id']],
    ['timeout', ['5', 'sh', '-c', 'echo hi; id']],
    ['nohup', ['bash', '-c', 'echo hi; id']],
    ['stdbuf', ['-oL', 'sh', '-c', 'echo hi; id']],
  ])('%s %j: attack', (file, args) => {
    expect(commandInjection.detect(argv(file, ...args), [input('hi; id')])[0]).toMatchObject({ kind: 'attack' });
  });

  it('the same value as a plain argument of a program that is no shell is data', () => {
    expect(commandInjection.detect(argv('echo', 'hi; id'), [input('hi; id')])).toEqual([]);
    expect(commandInjection.detect(argv('sudo', 'echo', 'hi; id'), [input('hi; id')])).toEqual([]);
  });

  it('inside a shell command line, a nested su -c is followed too', () => {
    const event: ExecEvent = { kind: 'exec', op: 'child_process.exec', file: `su -c "echo hi; id"`, args: [], shell: true };
    expect(commandInjection.detect(event, [input('hi; id')])[0]).toMatchObject({ kind: 'attack', reason: 'separator' });
  });
});
