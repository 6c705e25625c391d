/**
 * hooks/child-process.ts: every child_process entry point, with and without a shell.
 *
 * Each call form runs twice — outside any request, where the wrapper passes straight through, and inside
 * `runWithContext` with benign input — and both runs must observe the same thing. Attack input makes each
 * form fail the way child_process fails (callback error, 'error' event, throw, spawnSync result, rejection);
 * a marker file the injected command would create proves nothing ran, and the same call outside a request
 * proves that it would have.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ChildProcessModule from 'node:child_process';
import type * as UtilModule from 'node:util';
import { REPO } from '../helpers/app.js';
import { startAgentInProcess } from '../helpers/agent.js';
import { BLOCKED, kindOf } from '../helpers/observe.js';

const require = createRequire(import.meta.url);

const BENIGN = 'hello';

let cp: typeof ChildProcessModule;
let util: typeof UtilModule;
let runWithContext: <R>(input: { query: Record<string, string> }, fn: () => R) => R;
let isWrapped: (fn: unknown) => boolean;
let originalOf: <F>(fn: F) => F;
const asRequest = <R>(q: string, fn: () => R): R => runWithContext({ query: { q } }, fn);

let dir: string;
let forkChild: string;

beforeAll(() => {
  ({ runWithContext, isWrapped, originalOf } = startAgentInProcess());
  cp = require('node:child_process') as typeof ChildProcessModule;
  util = require('node:util') as typeof UtilModule;
  dir = mkdtempSync(join(tmpdir(), 'sg-child-process-'));
  forkChild = join(dir, 'fork-child.cjs');
  writeFileSync(forkChild, "process.send({ argv: process.argv.slice(2) }, () => process.exit(0));\n");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- what a caller can observe ------------------------------------------------------------------------


const text = (value: unknown) => (Buffer.isBuffer(value) ? { buffer: value.toString() } : value);

function errorShape(err: unknown) {
  const e = err as { code?: unknown; status?: unknown; signal?: unknown; errno?: unknown; syscall?: unknown; path?: unknown; stdout?: unknown; stderr?: unknown };
  return { class: kindOf(err), code: e.code, status: e.status, signal: e.signal, errno: e.errno, syscall: e.syscall, path: e.path, stdout: text(e.stdout), stderr: text(e.stderr) };
}

/** What a form must show; the two runs are compared in full. */
type Expected = { [K in keyof Observation]?: unknown };

interface Observation {
  returned?: string;
  err?: ReturnType<typeof errorShape> | null;
  stdout?: unknown;
  stderr?: unknown;
  exit?: unknown[];
  message?: unknown;
  result?: unknown;
}

/** exec/execFile with a callback: what the callback got and what the call returned. */
function viaCallback(call: (cb: (err: Error | null, stdout: unknown, stderr: unknown) => void) => unknown): Promise<Observation> {
  return new Promise((resolve) => {
    let returned: unknown;
    returned = call((err, stdout, stderr) => {
      setImmediate(() => resolve({ returned: kindOf(returned), err: err && errorShape(err), stdout: text(stdout), stderr: text(stderr) }));
    });
  });
}

/** spawn/fork: output, the first IPC message, 'error' and the 'exit' arguments, collected until 'close'. */
function viaChild(call: () => ChildProcessModule.ChildProcess): Promise<Observation> {
  return new Promise((resolve) => {
    const child = call();
    let stdout = '';
    let err: Error | null = null;
    let exit: unknown[] | undefined;
    let message: unknown;
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('message', (m) => (message ??= m));
    child.on('error', (e) => (err = e));
    child.on('exit', (...args) => (exit = args));
    child.on('close', () => resolve({ returned: kindOf(child), err: err && errorShape(err), stdout, exit, ...(message === undefined ? {} : { message }) }));
  });
}

function viaSync(call: () => unknown): Observation {
  try {
    return { result: text(call()) };
  } catch (err) {
    return { err: errorShape(err) };
  }
}

/** spawnSync's result object, buffers as text, the pid (which differs per run) as a type. */
function spawnSyncShape(result: ChildProcessModule.SpawnSyncReturns<Buffer>) {
  return { ...result, pid: typeof result.pid, output: result.output?.map(text), stdout: text(result.stdout), stderr: text(result.stderr), error: result.error && errorShape(result.error) };
}

async function viaPromise(call: () => Promise<unknown>): Promise<Observation> {
  const returned = call();
  try {
    return { returned: kindOf(returned), result: await returned };
  } catch (err) {
    return { returned: kindOf(returned), err: errorShape(err) };
  }
}

// ---- the tests ---------------------------------------------------------------------------------------------

describe('child_process is patched', () => {
  it("exec, execFile, spawn, fork and the sync forms are wrapped, with the originals' name and length", () => {
    for (const name of ['exec', 'execSync', 'execFile', 'execFileSync', 'spawn', 'spawnSync', 'fork'] as const) {
      const fn = cp[name] as (...args: unknown[]) => unknown;
      const original = originalOf(fn);
      expect(isWrapped(fn), name).toBe(true);
      expect(original, name).not.toBe(fn);
      expect(fn.name, name).toBe(original.name);
      expect(fn.length, name).toBe(original.length);
    }
  });

  it('exec and execFile keep a util.promisify.custom of their own', () => {
    for (const name of ['exec', 'execFile'] as const) {
      const custom = (cp[name] as unknown as Record<symbol, unknown>)[util.promisify.custom];
      expect(typeof custom, name).toBe('function');
      expect(util.promisify(cp[name])).toBe(custom);
    }
  });
});

describe('unpatched behaviour is preserved, outside and inside a request with benign input', () => {
  const hello = { stdout: 'hello\n', stderr: '' };
  const exited = { returned: 'ChildProcess', err: null, stdout: 'hello\n', exit: [0, null] };

  const forms: Array<{ form: string; run: () => Observation | Promise<Observation>; expected: Expected }> = [
    { form: 'exec(command, cb)', run: () => viaCallback((cb) => cp.exec(`echo ${BENIGN}`, cb)), expected: { returned: 'ChildProcess', err: null, ...hello } },
    {
      form: "exec(command, { shell: '/bin/bash', encoding: 'buffer' }, cb)",
      run: () => viaCallback((cb) => cp.exec(`echo ${BENIGN}`, { shell: '/bin/bash', encoding: 'buffer' }, cb)),
      expected: { returned: 'ChildProcess', err: null, stdout: { buffer: 'hello\n' }, stderr: { buffer: '' } },
    },
    {
      form: 'exec(failing command, cb)',
      run: () => viaCallback((cb) => cp.exec('echo out; echo err >&2; exit 3', cb)),
      expected: { returned: 'ChildProcess', err: { class: 'Error', code: 3, signal: null }, stdout: 'out\n', stderr: 'err\n' },
    },
    { form: 'execSync(command)', run: () => viaSync(() => cp.execSync(`echo ${BENIGN}`)), expected: { result: { buffer: 'hello\n' } } },
    { form: "execSync(command, { encoding: 'utf8' })", run: () => viaSync(() => cp.execSync(`echo ${BENIGN}`, { encoding: 'utf8' })), expected: { result: 'hello\n' } },
    {
      form: 'execSync(failing command)',
      run: () => viaSync(() => cp.execSync('exit 3', { stdio: 'pipe' })),
      expected: { err: { class: 'Error', status: 3, signal: null, stdout: { buffer: '' }, stderr: { buffer: '' } } },
    },
    { form: 'execFile(file, args, cb)', run: () => viaCallback((cb) => cp.execFile('echo', [BENIGN], cb)), expected: { returned: 'ChildProcess', err: null, ...hello } },
    {
      form: 'execFile(file, args, { shell: true }, cb)',
      run: () => viaCallback((cb) => cp.execFile('echo', [BENIGN], { shell: true }, cb)),
      expected: { returned: 'ChildProcess', err: null, ...hello },
    },
    {
      form: 'execFile(missing file, cb)',
      run: () => viaCallback((cb) => cp.execFile('/no/such/program', [], cb)),
      expected: { returned: 'ChildProcess', err: { class: 'Error', code: 'ENOENT', syscall: 'spawn /no/such/program', path: '/no/such/program' } },
    },
    { form: 'execFileSync(file, args)', run: () => viaSync(() => cp.execFileSync('echo', [BENIGN])), expected: { result: { buffer: 'hello\n' } } },
    {
      form: 'execFileSync(file, args, { shell: true })',
      run: () => viaSync(() => cp.execFileSync('echo', [BENIGN], { shell: true, encoding: 'utf8' })),
      expected: { result: 'hello\n' },
    },
    { form: 'spawn(file, args)', run: () => viaChild(() => cp.spawn('echo', [BENIGN])), expected: exited },
    { form: 'spawn(command, { shell: true })', run: () => viaChild(() => cp.spawn(`echo ${BENIGN}`, { shell: true })), expected: exited },
    {
      form: 'spawn(missing file)',
      run: () => viaChild(() => cp.spawn('/no/such/program')),
      expected: { returned: 'ChildProcess', err: { class: 'Error', code: 'ENOENT', errno: -2, syscall: 'spawn /no/such/program' }, stdout: '' },
    },
    {
      form: 'spawnSync(file, args)',
      run: () => ({ result: spawnSyncShape(cp.spawnSync('echo', [BENIGN])) }),
      expected: { result: { status: 0, signal: null, pid: 'number', stdout: { buffer: 'hello\n' }, stderr: { buffer: '' } } },
    },
    {
      form: 'spawnSync(command, { shell: true })',
      run: () => ({ result: spawnSyncShape(cp.spawnSync(`echo ${BENIGN}`, { shell: true })) }),
      expected: { result: { status: 0, signal: null, pid: 'number', stdout: { buffer: 'hello\n' } } },
    },
    {
      form: 'spawnSync(missing file)',
      run: () => ({ result: spawnSyncShape(cp.spawnSync('/no/such/program')) }),
      expected: { result: { status: null, error: { class: 'Error', code: 'ENOENT', syscall: 'spawnSync /no/such/program' } } },
    },
    {
      form: 'fork(module, args)',
      run: () => viaChild(() => cp.fork(forkChild, [BENIGN], { silent: true })),
      expected: { returned: 'ChildProcess', err: null, message: { argv: [BENIGN] }, exit: [0, null] },
    },
    { form: 'util.promisify(exec)(command)', run: () => viaPromise(() => util.promisify(cp.exec)(`echo ${BENIGN}`)), expected: { returned: 'Promise', result: hello } },
    {
      form: 'util.promisify(execFile)(file, args)',
      run: () => viaPromise(() => util.promisify(cp.execFile)('echo', [BENIGN])),
      expected: { returned: 'Promise', result: hello },
    },
    {
      form: 'util.promisify(exec)(failing command)',
      run: () => viaPromise(() => util.promisify(cp.exec)('echo out; exit 4')),
      expected: { returned: 'Promise', err: { class: 'Error', code: 4, stdout: 'out\n', stderr: '' } },
    },
  ];

  it.each(forms)('$form', async ({ run, expected }) => {
    const outside = await run();
    const inside = await asRequest(BENIGN, run);
    expect(outside).toMatchObject(expected);
    expect(inside).toEqual(outside);
  });

  it('the promisified forms expose the running child as `.child`, as Node does', async () => {
    const outside = util.promisify(cp.exec)(`echo ${BENIGN}`) as Promise<unknown> & { child?: unknown };
    const inside = asRequest(BENIGN, () => util.promisify(cp.execFile)('echo', [BENIGN])) as Promise<unknown> & { child?: unknown };
    expect(outside.child).toBeInstanceOf(cp.ChildProcess);
    expect(inside.child).toBeInstanceOf(cp.ChildProcess);
    await Promise.all([outside, inside]);
  });
});

describe('refusal in child_process\'s own shape (attack input, block mode)', () => {
  let seq = 0;

  /**
   * `attempt(input)` makes the call with a command that embeds `input`; it resolves with the error the
   * caller saw (or undefined). Outside a request the command must run and create the marker; inside an
   * attack request the error must be the refusal and the marker must stay absent.
   */
  async function expectRefused(attempt: (input: string) => unknown): Promise<Error & { code?: string }> {
    const marker = join(dir, `ran-${++seq}`);
    const input = `${BENIGN}; touch ${marker}`;

    const control = await attempt(input);
    expect(control, 'outside a request the call succeeds').toBeUndefined();
    expect(existsSync(marker), 'outside a request the injected command runs').toBe(true);
    rmSync(marker);

    const error = (await asRequest(input, () => attempt(input))) as (Error & { code?: string }) | undefined;
    // Give a child that was wrongly started time to act before looking for its trace.
    await new Promise((r) => setTimeout(r, 150));
    expect(existsSync(marker), 'inside the attack request nothing runs').toBe(false);
    expect(error?.code).toBe(BLOCKED);
    return error!;
  }

  /** Callback forms: the error (or null) and whether it arrived synchronously. */
  const callbackError = (call: (cb: (err: Error | null) => void) => unknown) =>
    new Promise<Error | undefined>((resolve, reject) => {
      let sync = true;
      const returned = call((err) => (sync ? reject(new Error('the callback ran synchronously')) : resolve(err ?? undefined)));
      sync = false;
      if (!(returned instanceof cp.ChildProcess)) reject(new Error(`returned ${kindOf(returned)}, not a ChildProcess`));
    });

  /** Event forms: the 'error' listener's error; 'exit' and 'close' must both follow. */
  const childError = (call: () => ChildProcessModule.ChildProcess) =>
    new Promise<Error | undefined>((resolve, reject) => {
      const child = call();
      if (!(child instanceof cp.ChildProcess)) return reject(new Error(`returned ${kindOf(child)}, not a ChildProcess`));
      let error: Error | undefined;
      let exited = false;
      child.on('error', (e) => (error = e));
      child.on('exit', () => (exited = true));
      child.on('close', () => (exited ? resolve(error) : reject(new Error("'close' without 'exit'"))));
    });

  const thrown = (call: () => unknown): Error | undefined => {
    try {
      call();
      return undefined;
    } catch (err) {
      return err as Error;
    }
  };

  it('exec(command, cb) → the callback gets the error on a later tick; a ChildProcess is returned', async () => {
    await expectRefused((input) => callbackError((cb) => cp.exec(`echo ${input}`, cb)));
  });

  it("exec(command, { shell: '/bin/bash' }, cb) → the callback gets the error", async () => {
    await expectRefused((input) => callbackError((cb) => cp.exec(`echo ${input}`, { shell: '/bin/bash' }, cb)));
  });

  it("exec(command) without a callback → 'error' listeners get it, then 'exit' and 'close'", async () => {
    await expectRefused((input) => childError(() => cp.exec(`echo ${input}`)));
  });

  it("execFile('sh', ['-c', command], cb) → the callback gets the error", async () => {
    await expectRefused((input) => callbackError((cb) => cp.execFile('sh', ['-c', `echo ${input}`], cb)));
  });

  it('execFile(file, args, { shell: true }, cb) → the callback gets the error', async () => {
    await expectRefused((input) => callbackError((cb) => cp.execFile('echo', [input], { shell: true }, cb)));
  });

  it("spawn('sh', ['-c', command]) → 'error' listeners get it, then 'exit' and 'close'; stdout ends empty", async () => {
    await expectRefused(async (input) => {
      let out = '';
      const error = await childError(() => {
        const child = cp.spawn('sh', ['-c', `echo ${input}`]);
        child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
        return child;
      });
      expect(out).toBe(error ? '' : `${BENIGN}\n`);
      return error;
    });
  });

  it("spawn(command, { shell: true }) → 'error', 'exit', 'close'", async () => {
    await expectRefused((input) => childError(() => cp.spawn(`echo ${input}`, { shell: true })));
  });

  it("fork through a shell (execPath: '/bin/sh') → 'error', 'exit', 'close'", async () => {
    await expectRefused((input) => childError(() => cp.fork('-c', [`echo ${input}`], { execPath: '/bin/sh', execArgv: [], silent: true })));
  });

  it('execSync(command) → throws', async () => {
    await expectRefused((input) => thrown(() => cp.execSync(`echo ${input}`, { stdio: 'pipe' })));
  });

  it("execFileSync('sh', ['-c', command]) and execFileSync(file, args, { shell: true }) → throw", async () => {
    await expectRefused((input) => thrown(() => cp.execFileSync('sh', ['-c', `echo ${input}`])));
    await expectRefused((input) => thrown(() => cp.execFileSync('echo', [input], { shell: true })));
  });

  it("spawnSync('sh', ['-c', command]) and spawnSync(command, { shell: true }) → return { error }", async () => {
    for (const call of [(input: string) => cp.spawnSync('sh', ['-c', `echo ${input}`]), (input: string) => cp.spawnSync(`echo ${input}`, { shell: true })]) {
      await expectRefused((input) => {
        const result = call(input);
        if (!result.error) expect(result.status).toBe(0);
        else expect(result).toMatchObject({ status: null, stdout: null, stderr: null, output: null });
        return result.error;
      });
    }
  });

  it('util.promisify(exec) → rejects (with stdout/stderr and .child, as Node does), never throws', async () => {
    await expectRefused(async (input) => {
      const promise = util.promisify(cp.exec)(`echo ${input}`) as Promise<unknown> & { child?: unknown };
      expect(promise).toBeInstanceOf(Promise);
      expect(promise.child).toBeInstanceOf(cp.ChildProcess);
      return promise.then(
        () => undefined,
        (err: Error & { stdout?: unknown; stderr?: unknown }) => {
          expect(err).toMatchObject({ stdout: '', stderr: '' });
          return err;
        },
      );
    });
  });

  it("util.promisify(execFile)('sh', ['-c', command]) → rejects, never throws", async () => {
    await expectRefused(async (input) => {
      const promise = util.promisify(cp.execFile)('sh', ['-c', `echo ${input}`]) as Promise<unknown> & { child?: unknown };
      expect(promise).toBeInstanceOf(Promise);
      expect(promise.child).toBeInstanceOf(cp.ChildProcess);
      return promise.then(() => undefined, (err: Error) => err);
    });
  });

  it('a refused child has no native process handle (kill() on a never-spawned handle signals an unset pid)', () => {
    const child = asRequest(`${BENIGN}; true`, () => cp.spawn('sh', ['-c', `echo ${BENIGN}; true`]));
    child.on('error', () => {});
    expect(child).toBeInstanceOf(cp.ChildProcess);
    expect(child.pid).toBeUndefined();
    // ChildProcess#kill() signals through `_handle`; an exited child has none either.
    expect(Reflect.get(child, '_handle')).toBeNull();
  });

  it('a refused child behaves as an exited one: kill() returns false and signals nobody', async () => {
    // Run in a child process group of its own: a kill() that reached the whole group must not hit vitest.
    const script = `
      const agent = require(${JSON.stringify(join(REPO, 'dist/src/agent.js'))});
      agent.start({ ...process.env, STEPGUARD_MODE: 'block', STEPGUARD_TELEMETRY: 'false', STEPGUARD_LOG_FINDINGS: 'false', STEPGUARD_RULES: '' });
      const { runWithContext } = require(${JSON.stringify(join(REPO, 'dist/src/index.js'))});
      const { spawn } = require('node:child_process');
      process.on('SIGTERM', () => console.log('SIGTERM received'));
      const input = 'x; touch /dev/null';
      runWithContext({ query: { q: input } }, () => {
        const child = spawn('sh', ['-c', 'echo ' + input]);
        child.on('error', (err) => console.log('error ' + err.code));
        console.log('kill ' + child.kill() + ' pid ' + child.pid);
      });
      setTimeout(() => console.log('done'), 300);
    `;
    const child = cp.spawn(process.execPath, ['-e', script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(out).toContain('kill false pid undefined');
    expect(out).toContain(`error ${BLOCKED}`);
    expect(out).toContain('done');
    expect(out).not.toContain('SIGTERM received');
  });
});
