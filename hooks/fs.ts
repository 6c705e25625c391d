import { constants as FS } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as FsModule from 'node:fs';
import { defineHook, wrap, inspect, shouldInspect, type AnyFunction, type FsEvent, type Verdict } from '../src/hook-kit.js';

/**
 * SINK fs: every `fs` and `fs/promises` function that takes a path (string, Buffer or `file:` URL), in its
 * callback, Sync and promise forms, plus the streams. The path is judged before the original runs; a
 * refused call fails the way that form fails: callback error on a later tick, thrown error (Sync), rejected
 * promise, or a real ReadStream/WriteStream whose open fails (so it emits 'error' then 'close').
 *
 * Hot path: `fs` is called constantly (static files, templates, module loading). Outside a request the
 * wrapper is one AsyncLocalStorage read and `original.apply(this, arguments)` (V8 forwards `arguments` to
 * apply without materialising it). Calls that Node itself makes through the public functions (writeFile →
 * open, exists → access, a stream → open, cp → stat) are judged again, mostly answered from the
 * per-request verdict cache. fs calls the agent makes while judging are not judged.
 */

type Fs = typeof FsModule;
type Shape = 'callback' | 'sync' | 'promise';
/** Whether a path argument is written to: fixed, or decided by the open flags (argument 1). */
type Write = boolean | 'flags';

interface PathFunction {
  readonly name: string;
  /** How many leading arguments are paths (rename, copyFile, cp, link, symlink take two). */
  readonly paths: 1 | 2;
  /** Per path argument. */
  readonly write: readonly [Write] | readonly [Write, Write];
}

const fn = (name: string, ...write: [Write] | [Write, Write]): PathFunction => ({ name, paths: write.length as 1 | 2, write });

/** Present in all three forms (`name`, `nameSync`, `promises.name`) unless missing on this Node/platform. */
const PATH_FUNCTIONS: readonly PathFunction[] = [
  fn('readFile', false),
  fn('writeFile', true),
  fn('appendFile', true),
  fn('open', 'flags'),
  fn('opendir', false),
  fn('stat', false),
  fn('lstat', false),
  fn('statfs', false),
  fn('readdir', false),
  fn('access', false),
  fn('realpath', false),
  fn('readlink', false),
  fn('unlink', true),
  fn('rmdir', true),
  fn('rm', true),
  fn('mkdir', true),
  fn('mkdtemp', true),
  fn('truncate', true),
  fn('chmod', true),
  fn('lchmod', true),
  fn('chown', true),
  fn('lchown', true),
  fn('utimes', true),
  fn('lutimes', true),
  fn('rename', true, true),
  fn('copyFile', false, true),
  fn('cp', false, true),
  fn('link', false, true),
  // symlink(target, path): the target is what the new link will point to.
  fn('symlink', false, true),
];

/** Set while a call is being judged: fs calls the agent makes itself meanwhile (stores, logs) are not judged. */
let judging = false;

/**
 * The wrapper every patched function gets. Its only use of `arguments` is forwarding it to `apply`, which
 * V8 optimises without materialising an arguments object, so an uninspected call allocates nothing; the
 * judging half (`judged`) takes rest parameters and runs only inside a request.
 */
function gate(original: AnyFunction, judged: AnyFunction): AnyFunction {
  return function (this: unknown) {
    // eslint-disable-next-line prefer-rest-params -- see above
    if (judging || !shouldInspect()) return original.apply(this, arguments as unknown as unknown[]);
    // eslint-disable-next-line prefer-rest-params -- see above
    return judged.apply(this, arguments as unknown as unknown[]);
  };
}

/** The path Node would use, as text; undefined for fds, FileHandles and anything Node would reject. */
function pathOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  if (value !== null && typeof value === 'object') {
    // Node's own test for URL objects (`isURL`): href and protocol, not a legacy url.parse() result.
    const url = value as { href?: unknown; protocol?: unknown; auth?: unknown; path?: unknown };
    if (url.href && url.protocol === 'file:' && url.auth === undefined && url.path === undefined) {
      try {
        return fileURLToPath(value as URL);
      } catch {
        return undefined; // Node throws the same error when the original runs
      }
    }
  }
  return undefined;
}

const WRITE_FLAGS = /[wa+]/;
const WRITE_BITS = FS.O_WRONLY | FS.O_RDWR | FS.O_CREAT | FS.O_TRUNC | FS.O_APPEND;

function isWrite(write: Write, flags: unknown): boolean {
  if (write !== 'flags') return write;
  if (typeof flags === 'string') return WRITE_FLAGS.test(flags);
  return typeof flags === 'number' && (flags & WRITE_BITS) !== 0;
}

/** Judges the path arguments of one call; the first refusal wins. Never throws. */
function judge(op: string, spec: PathFunction, args: readonly unknown[]): Verdict {
  judging = true;
  try {
    for (let i = 0; i < spec.paths; i++) {
      const path = pathOf(args[i]);
      if (path === undefined) continue;
      const event: FsEvent = { kind: 'fs', op, path, write: isWrite(spec.write[i]!, args[1]) };
      const verdict = inspect(event);
      if (verdict) return verdict;
    }
    return undefined;
  } catch {
    return undefined; // fail open: the agent never breaks a file operation
  } finally {
    judging = false;
  }
}

const READ_ONE = fn('', false);
const WRITE_ONE = fn('', true);

function lastCallback(args: ArrayLike<unknown>): AnyFunction | undefined {
  const last = args[args.length - 1];
  return typeof last === 'function' ? (last as AnyFunction) : undefined;
}

/** `fs.x(path, …, cb)`: the callback gets the error on a later tick, as for ENOENT. */
function callbackForm(op: string, spec: PathFunction, original: AnyFunction): AnyFunction {
  return gate(original, function (this: unknown, ...args: unknown[]) {
    const verdict = judge(op, spec, args);
    if (!verdict) return original.apply(this, args);
    const callback = lastCallback(args);
    // Without a callback Node throws (ERR_INVALID_ARG_TYPE) before touching the disk: so does a refusal.
    if (!callback) throw verdict.error;
    process.nextTick(callback, verdict.error);
    return undefined;
  });
}

function syncForm(op: string, spec: PathFunction, original: AnyFunction): AnyFunction {
  return gate(original, function (this: unknown, ...args: unknown[]) {
    const verdict = judge(op, spec, args);
    if (verdict) throw verdict.error;
    return original.apply(this, args);
  });
}

function promiseForm(op: string, spec: PathFunction, original: AnyFunction): AnyFunction {
  return gate(original, function (this: unknown, ...args: unknown[]) {
    const verdict = judge(op, spec, args);
    if (verdict) return Promise.reject(verdict.error);
    return original.apply(this, args);
  });
}

const FORMS: Record<Shape, (op: string, spec: PathFunction, original: AnyFunction) => AnyFunction> = {
  callback: callbackForm,
  sync: syncForm,
  promise: promiseForm,
};

function wrapForm(target: object | undefined, name: string, op: string, spec: PathFunction, shape: Shape): void {
  if (!target) return;
  wrap(target as Record<string, AnyFunction>, name, (original) => FORMS[shape](op, spec, original));
}

/**
 * A stream whose open fails with `error`: the real ReadStream/WriteStream class (same type, `.path`,
 * options), opened through an `fs` whose `open` calls back with the refusal, so the stream emits 'error'
 * and 'close' the way it does for ENOENT, and never touches the file.
 */
function refusedStream(fs: Fs, original: AnyFunction, self: unknown, args: unknown[], error: Error): unknown {
  const options = args[1];
  const base = (options !== null && typeof options === 'object' && (options as { fs?: object }).fs) || fs;
  const refusing = Object.create(base, {
    open: {
      value: function open(...openArgs: unknown[]) {
        const callback = lastCallback(openArgs);
        if (callback) process.nextTick(callback, error);
      },
    },
  }) as object;
  const refusedOptions = typeof options === 'string' ? { encoding: options, fs: refusing } : { ...(options as object | undefined), fs: refusing };
  try {
    return original.call(self, args[0], refusedOptions);
  } catch {
    // Node rejects the path synchronously (a NUL byte): a synchronous failure is what the caller gets anyway.
    throw error;
  }
}

function streamForm(fs: Fs, op: string, write: boolean, original: AnyFunction): AnyFunction {
  return gate(original, function (this: unknown, ...args: unknown[]) {
    const options = args[1];
    // With `fd` the path is not opened (only shown as `.path`).
    if (options !== null && typeof options === 'object' && (options as { fd?: unknown }).fd != null) return original.apply(this, args);
    const verdict = judge(op, write ? WRITE_ONE : READ_ONE, args);
    if (!verdict) return original.apply(this, args);
    return refusedStream(fs, original, this, args, verdict.error);
  });
}

function patchFs(fs: Fs): void {
  const target = fs as unknown as Record<string, AnyFunction>;
  for (const spec of PATH_FUNCTIONS) {
    wrapForm(fs, spec.name, `fs.${spec.name}`, spec, 'callback');
    wrapForm(fs, `${spec.name}Sync`, `fs.${spec.name}Sync`, spec, 'sync');
  }
  // realpath.native / realpathSync.native are separate functions hanging off the (now wrapped) realpath.
  wrapForm(fs.realpath, 'native', 'fs.realpath.native', READ_ONE, 'callback');
  wrapForm(fs.realpathSync, 'native', 'fs.realpathSync.native', READ_ONE, 'sync');

  // exists/existsSync never fail: a refusal answers "does not exist". `exists[promisify.custom]` calls
  // fs.exists, so util.promisify(fs.exists) is judged too.
  wrap(target, 'exists', (original) =>
    gate(original, function (this: unknown, ...args: unknown[]) {
      const verdict = judge('fs.exists', READ_ONE, args);
      if (!verdict) return original.apply(this, args);
      const callback = lastCallback(args);
      if (!callback) throw verdict.error;
      process.nextTick(callback, false);
      return undefined;
    }),
  );
  wrap(target, 'existsSync', (original) =>
    gate(original, function (this: unknown, ...args: unknown[]) {
      return judge('fs.existsSync', READ_ONE, args) ? false : original.apply(this, args);
    }),
  );

  // fs.watch throws synchronously when it cannot watch (ENOENT): so does a refusal.
  wrapForm(fs, 'watch', 'fs.watch', READ_ONE, 'sync');
  wrapForm(fs, 'openAsBlob', 'fs.openAsBlob', READ_ONE, 'promise');

  wrap(target, 'createReadStream', (original) => streamForm(fs, 'fs.createReadStream', false, original));
  wrap(target, 'createWriteStream', (original) => streamForm(fs, 'fs.createWriteStream', true, original));

  patchPromisesAtFirstRead(fs);
}

/**
 * `fs.promises` is Node's getter that loads the promise file API (ten modules, readline's among them: about 1.2 MiB
 * at start on Node 24) when first read. It is patched at that first read, by a getter around Node's that then puts
 * Node's back, rather than read (and loaded) at start. `require('fs/promises')`, `import` and
 * `process.getBuiltinModule` reach the same object through the `fs/promises` hook below.
 */
function patchPromisesAtFirstRead(fs: Fs): void {
  const descriptor = Object.getOwnPropertyDescriptor(fs, 'promises');
  const read = descriptor?.get;
  if (read === undefined || descriptor?.configurable !== true) {
    patchPromises(fs.promises as unknown as Record<string, AnyFunction>);
    return;
  }
  Object.defineProperty(fs, 'promises', {
    configurable: true,
    enumerable: descriptor.enumerable === true,
    get(this: unknown) {
      const promises = read.call(this) as Record<string, AnyFunction> | undefined;
      patchPromises(promises);
      try {
        Object.defineProperty(fs, 'promises', descriptor);
      } catch {
        // ours stays: every read patches again, which wrap() makes a no-op
      }
      return promises;
    },
  });
}

function patchPromises(promises: Record<string, AnyFunction> | undefined): void {
  if (!promises) return;
  for (const spec of PATH_FUNCTIONS) wrapForm(promises, spec.name, `fs.promises.${spec.name}`, spec, 'promise');
  // promises.watch is an async generator: Node reports errors from the first next(), so does a refusal.
  wrap(promises, 'watch', (original) =>
    gate(original, function (this: unknown, ...args: unknown[]) {
      const verdict = judge('fs.promises.watch', READ_ONE, args);
      if (!verdict) return original.apply(this, args);
      return (async function* refused(): AsyncGenerator<never> {
        throw verdict.error;
      })();
    }),
  );
}

export const fs = defineHook({
  module: 'fs',
  builtin: true,
  patch(exports) {
    patchFs(exports as Fs);
  },
});

/** The same object as `fs.promises` (already patched through `fs`); listed so either name works on its own. */
export const fsPromises = defineHook({
  module: 'fs/promises',
  builtin: true,
  patch(exports) {
    patchPromises(exports as Record<string, AnyFunction>);
  },
});
