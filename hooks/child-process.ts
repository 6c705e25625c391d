import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import type * as ChildProcessModule from 'node:child_process';
import { defineHook, wrap, inspect, shouldInspect, type AnyFunction, type ExecEvent, type Verdict } from '../src/hook-kit.js';

/**
 * SINK exec: child_process. The public functions are wrapped so a refused call fails in the shape its
 * caller expects (callback error, 'error' event, thrown error, spawnSync result object); the same judgement
 * on `ChildProcess.prototype.spawn` is the safety net for paths that bypass the exports (e.g. the
 * promisified execFile), and costs nothing extra thanks to the per-request verdict cache.
 */

function stringArgs(value: unknown): string[] {
  return Array.isArray(value) ? value.map((v) => String(v)) : [];
}

/**
 * Builds the event for `spawn`/`execFile`-style calls: (file, args?, options?). The call's data as given;
 * whether a shell parses any of it is the detector's decision.
 */
function fileEvent(op: string, file: string, args: string[], options: unknown): ExecEvent {
  return { kind: 'exec', op, file, args, shell: shellOption(options) };
}

function shellOption(options: unknown): boolean | string | undefined {
  const shell = (options as { shell?: unknown } | null | undefined)?.shell;
  return typeof shell === 'string' || typeof shell === 'boolean' ? shell : shell ? true : undefined;
}

function parseFileArgs(callArgs: unknown[]): { file: string; args: string[]; options: unknown } | undefined {
  const file = callArgs[0];
  if (typeof file !== 'string') return undefined;
  const hasArgs = Array.isArray(callArgs[1]);
  const options = hasArgs ? callArgs[2] : callArgs[1];
  return { file, args: hasArgs ? stringArgs(callArgs[1]) : [], options: typeof options === 'object' ? options : undefined };
}

function judgeFileCall(op: string, callArgs: unknown[]): Verdict {
  const parsed = parseFileArgs(callArgs);
  return parsed ? inspect(fileEvent(op, parsed.file, parsed.args, parsed.options)) : undefined;
}

function judgeShellCall(op: string, command: unknown, options: unknown): Verdict {
  if (typeof command !== 'string') return undefined;
  // Node runs `exec(command)` as `spawn(command, { shell: options.shell if a string, else true })`.
  const shell = shellOption(options);
  return inspect({ kind: 'exec', op, file: command, args: [], shell: typeof shell === 'string' && shell !== '' ? shell : true });
}

/**
 * A child that never ran: empty streams, the error delivered to the callback or to 'error' listeners
 * (never thrown into an event loop turn with nobody listening), then 'exit'/'close' like a failed spawn.
 */
function refusedChild(cp: typeof ChildProcessModule, error: Error, callback: AnyFunction | undefined): ChildProcessModule.ChildProcess {
  // Not `new ChildProcess()`: its constructor allocates a native process handle, and `kill()` on a handle
  // that never spawned signals a pid that was never set (seen: 0, the app's own process group). Without
  // a handle, `kill()` returns false as for a child that has exited. The fields are the constructor's.
  const child = Reflect.construct(EventEmitter, [], cp.ChildProcess) as ChildProcessModule.ChildProcess;
  const stdio = [new PassThrough(), new PassThrough(), new PassThrough()];
  Object.assign(child, {
    _closesNeeded: 1,
    _closesGot: 0,
    _handle: null,
    connected: false,
    signalCode: null,
    exitCode: null,
    killed: false,
    spawnfile: null,
    stdin: stdio[0],
    stdout: stdio[1],
    stderr: stdio[2],
    stdio: [...stdio, null, null],
  });
  process.nextTick(() => {
    stdio[1]!.end();
    stdio[2]!.end();
    if (callback) callback(error, '', '');
    else if (child.listenerCount('error') > 0) child.emit('error', error);
    child.emit('exit', null, null);
    child.emit('close', null, null);
  });
  return child;
}

function lastFunction(args: unknown[]): AnyFunction | undefined {
  const last = args[args.length - 1];
  return typeof last === 'function' ? (last as AnyFunction) : undefined;
}

/**
 * Judges what `fork(modulePath, args?, options?)` runs: `execPath …execArgv modulePath …args` (Node forces
 * `shell: false`, but `execPath` may itself be a shell). The same argv the prototype safety net sees.
 */
function judgeFork(callArgs: unknown[]): Verdict {
  const modulePath = callArgs[0];
  if (typeof modulePath !== 'string') return undefined;
  const hasArgs = Array.isArray(callArgs[1]);
  const options = (hasArgs ? callArgs[2] : callArgs[1]) as { execPath?: unknown; execArgv?: unknown } | null | undefined;
  const file = typeof options?.execPath === 'string' && options.execPath !== '' ? options.execPath : process.execPath;
  const execArgv = Array.isArray(options?.execArgv) ? stringArgs(options.execArgv) : process.execArgv;
  const args = [...execArgv, modulePath, ...(hasArgs ? stringArgs(callArgs[1]) : [])];
  return inspect({ kind: 'exec', op: 'child_process.fork', file, args, shell: undefined });
}

/**
 * `util.promisify(exec|execFile)` uses the function's `promisify.custom`, which Node binds to its internal
 * exec/execFile: left as copied, the promisified form would bypass the wrapper and a refusal would surface
 * as a synchronous throw from the `ChildProcess.prototype.spawn` safety net instead of a rejection. Defined
 * on the wrapper before `wrap` copies the original's properties, so it is the one kept.
 */
function keepPromisified(
  cp: typeof ChildProcessModule,
  wrapper: AnyFunction,
  original: AnyFunction,
  judge: (args: unknown[]) => Verdict,
): void {
  const custom = (original as unknown as Record<symbol, unknown>)[promisify.custom];
  if (typeof custom !== 'function') return;
  Object.defineProperty(wrapper, promisify.custom, {
    enumerable: false,
    value: function (this: unknown, ...args: unknown[]) {
      if (!shouldInspect()) return (custom as AnyFunction).apply(this, args);
      const verdict = judge(args);
      if (!verdict) return (custom as AnyFunction).apply(this, args);
      // Node's shape: the promise rejects with the callback's error (stdout/stderr attached) and carries `.child`.
      let child: ChildProcessModule.ChildProcess | undefined;
      const promise = new Promise((_resolve, reject) => {
        child = refusedChild(cp, verdict.error, (error: Error, stdout: string, stderr: string) => reject(Object.assign(error, { stdout, stderr })));
      });
      return Object.assign(promise, { child });
    },
  });
}

export const childProcess = defineHook({
  module: 'child_process',
  builtin: true,
  patch(exports) {
    const cp = exports as typeof ChildProcessModule;

    const judgeExec = (args: unknown[]) => judgeShellCall('child_process.exec', args[0], typeof args[1] === 'object' ? args[1] : undefined);
    wrap(cp, 'exec', (original) => {
      const exec = function exec(this: unknown, ...args: unknown[]) {
        if (!shouldInspect()) return original.apply(this, args);
        const verdict = judgeExec(args);
        return verdict ? refusedChild(cp, verdict.error, lastFunction(args)) : original.apply(this, args);
      };
      keepPromisified(cp, exec, original, judgeExec);
      return exec;
    });
    const judgeExecFile = (args: unknown[]) => judgeFileCall('child_process.execFile', args);
    wrap(cp, 'execFile', (original) => {
      const execFile = function execFile(this: unknown, ...args: unknown[]) {
        if (!shouldInspect()) return original.apply(this, args);
        const verdict = judgeExecFile(args);
        return verdict ? refusedChild(cp, verdict.error, lastFunction(args)) : original.apply(this, args);
      };
      keepPromisified(cp, execFile, original, judgeExecFile);
      return execFile;
    });
    for (const name of ['spawn', 'fork'] as const) {
      wrap(cp, name, (original) =>
        function (this: unknown, ...args: unknown[]) {
          if (!shouldInspect()) return original.apply(this, args);
          const verdict = name === 'fork' ? judgeFork(args) : judgeFileCall('child_process.spawn', args);
          return verdict ? refusedChild(cp, verdict.error, undefined) : original.apply(this, args);
        },
      );
    }
    // Synchronous forms throw on failure natively (non-zero exit, ENOENT): a refusal throws too.
    wrap(cp, 'execSync', (original) =>
      function execSync(this: unknown, ...args: unknown[]) {
        if (!shouldInspect()) return original.apply(this, args);
        const verdict = judgeShellCall('child_process.execSync', args[0], args[1]);
        if (verdict) throw verdict.error;
        return original.apply(this, args);
      },
    );
    wrap(cp, 'execFileSync', (original) =>
      function execFileSync(this: unknown, ...args: unknown[]) {
        if (!shouldInspect()) return original.apply(this, args);
        const verdict = judgeFileCall('child_process.execFileSync', args);
        if (verdict) throw verdict.error;
        return original.apply(this, args);
      },
    );
    // spawnSync reports failures in its result object, as it does for ENOENT.
    wrap(cp, 'spawnSync', (original) =>
      function spawnSync(this: unknown, ...args: unknown[]) {
        if (!shouldInspect()) return original.apply(this, args);
        const verdict = judgeFileCall('child_process.spawnSync', args);
        if (verdict) return { error: verdict.error, status: null, signal: null, output: null, pid: 0, stdout: null, stderr: null };
        return original.apply(this, args);
      },
    );

    const proto = cp.ChildProcess?.prototype as unknown as { spawn: AnyFunction } | undefined;
    if (proto) {
      wrap(proto, 'spawn', (original) =>
        function spawn(this: unknown, ...args: unknown[]) {
          if (!shouldInspect()) return original.apply(this, args);
          const options = args[0] as { file?: unknown; args?: unknown } | undefined;
          if (options && typeof options.file === 'string') {
            const argv = stringArgs(options.args);
            // Node has normalized the call by now: `shell: true` became `/bin/sh -c …` in argv.
            const verdict = inspect({ kind: 'exec', op: 'child_process.spawn', file: options.file, args: argv.slice(1), shell: undefined });
            if (verdict) throw verdict.error;
          }
          return original.apply(this, args);
        },
      );
    }
  },
});
