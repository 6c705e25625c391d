/**
 * Programs that hand an argument to a shell (`su -c`, `env … sh -c`, `nice`, `timeout`, `xargs` …) reached
 * through execFile/spawn without the `shell` option: the hook passes the raw argv, the detector decides a
 * shell parses it. In block mode the call is refused and a marker file proves the command never ran; the
 * same call outside a request proves that it would have.
 *
 * `su` itself needs a password or root: a stand-in named `su` (same `-c` contract) runs the command instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ChildProcessModule from 'node:child_process';
import { startAgentInProcess } from '../helpers/agent.js';
import { BLOCKED } from '../helpers/observe.js';

const require = createRequire(import.meta.url);

let cp: typeof ChildProcessModule;
let runWithContext: <R>(input: { query: Record<string, string> }, fn: () => R) => R;
let dir: string;
let su: string;

beforeAll(() => {
  ({ runWithContext } = startAgentInProcess());
  cp = require('node:child_process') as typeof ChildProcessModule;
  dir = mkdtempSync(join(tmpdir(), 'sg-shell-programs-'));
  su = join(dir, 'su');
  writeFileSync(su, '#!/bin/sh\n# stand-in for su: `su -c CMD` runs CMD in a shell\n[ "$1" = "-c" ] && exec /bin/sh -c "$2"\nexit 1\n');
  chmodSync(su, 0o755);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cases: Array<[string, (command: string) => [string, string[]]]> = [
  ['su -c', (command) => [su, ['-c', command]]],
  ['env FOO=1 sh -c', (command) => ['env', ['FOO=1', 'sh', '-c', command]]],
  ['nice -n 5 sh -c', (command) => ['nice', ['-n', '5', 'sh', '-c', command]]],
  ['timeout 10 sh -c', (command) => ['timeout', ['10', 'sh', '-c', command]]],
  ['nohup sh -c', (command) => ['nohup', ['sh', '-c', command]]],
  ['stdbuf -oL sh -c', (command) => ['stdbuf', ['-oL', 'sh', '-c', command]]],
  ['setsid sh -c', (command) => ['setsid', ['sh', '-c', command]]],
];

describe.each(cases)('execFileSync via %s', (_name, call) => {
  it('refuses `hi; touch MARKER` from the request without running it; outside a request it runs', () => {
    const marker = join(dir, `marker-${Math.random().toString(36).slice(2)}`);
    const input = `hi; touch ${marker}`;
    const [file, args] = call(`echo ${input}`);

    let error: unknown;
    runWithContext({ query: { q: input } }, () => {
      try {
        cp.execFileSync(file, args, { stdio: 'ignore' });
      } catch (e) {
        error = e;
      }
    });
    expect((error as { code?: string } | undefined)?.code).toBe(BLOCKED);
    expect(existsSync(marker)).toBe(false);

    cp.execFileSync(file, args, { stdio: 'ignore' });
    expect(existsSync(marker)).toBe(true);
  });

  it('benign input runs as usual', () => {
    const [file, args] = call('echo hello');
    const out = runWithContext({ query: { q: 'hello' } }, () => cp.execFileSync(file, args, { encoding: 'utf8' }));
    expect(out).toBe('hello\n');
  });
});

it("spawn('xargs', ['sh', '-c', …]) with input from the request: 'error' gets the refusal, the child never runs", async () => {
  const marker = join(dir, 'marker-xargs');
  const input = `hi; touch ${marker}`;
  const error = await new Promise<unknown>((resolve) => {
    runWithContext({ query: { q: input } }, () => {
      const child = cp.spawn('xargs', ['sh', '-c', `echo ${input}`]);
      child.on('error', resolve);
      child.on('close', () => resolve(undefined));
    });
  });
  expect((error as { code?: string } | undefined)?.code).toBe(BLOCKED);
  expect(existsSync(marker)).toBe(false);
});
