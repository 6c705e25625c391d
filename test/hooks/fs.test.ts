/**
 * hooks/fs.ts: every patched `fs` / `fs/promises` function, in-process against the compiled agent.
 *
 * Each call form (callback, Sync, promise) of each function runs twice on a fresh directory tree — outside
 * any request, where the wrapper passes straight through, and inside `runWithContext` with benign input —
 * and both runs must observe the same thing: result, error code, callback timing and the file tree after
 * the call. The same for a path that does not exist (ENOENT and friends). Then the call is made with a path
 * that climbs out of `base/` into `outside/` using request input: it must fail the way that form fails
 * (callback error on a later tick, throw, rejection, stream 'error'), leave the tree untouched, and the same
 * call outside a request must succeed (so the refusal is the agent's doing).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as FsModule from 'node:fs';
import type * as UtilModule from 'node:util';
import { startAgentInProcess } from '../helpers/agent.js';

const require = createRequire(import.meta.url);

const BLOCKED = 'ERR_STEPGUARD_BLOCKED';

type Fs = typeof FsModule;
type AnyFn = (...args: unknown[]) => unknown;
type Form = 'callback' | 'sync' | 'promise';

let fs: Fs;
let util: typeof UtilModule;
let runWithContext: <R>(input: { query: Record<string, string> }, fn: () => R) => R;
let isWrapped: (fn: unknown) => boolean;
let originalOf: <F>(fn: F) => F;
let ROOT: string;

beforeAll(() => {
  ({ runWithContext, isWrapped, originalOf } = startAgentInProcess());
  fs = require('node:fs') as Fs;
  util = require('node:util') as typeof UtilModule;
  ROOT = fs.mkdtempSync(join(tmpdir(), 'sg-fs-hook-'));
});

afterAll(() => {
  if (ROOT) fs.rmSync(ROOT, { recursive: true, force: true });
});

// ---- a directory tree to work on ------------------------------------------------------------------------

/** `base/` (where the app works) and `outside/` (where traversal leads) with the same content. */
function resetTree(): void {
  fs.rmSync(ROOT, { recursive: true, force: true });
  for (const area of ['base', 'outside']) {
    const d = join(ROOT, area);
    fs.mkdirSync(join(d, 'dir'), { recursive: true });
    fs.mkdirSync(join(d, 'empty'));
    fs.writeFileSync(join(d, 'a.txt'), `hello from ${area}`);
    fs.writeFileSync(join(d, 'dir', 'f.txt'), 'f');
    fs.symlinkSync(join(d, 'a.txt'), join(d, 'link'));
  }
}

const normalize = (text: string) => text.split(ROOT).join('<root>').replace(/tmp-[A-Za-z0-9]{6}/g, 'tmp-*');

/** Everything observable about the tree: names, types, sizes, modes, contents, link targets, set times. */
function snapshot(): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = join(dir, name);
      const st = fs.lstatSync(full);
      const mtime = st.mtimeMs < 1e7 ? String(st.mtimeMs) : 'recent'; // utimes() sets 1000 s
      let detail = '';
      if (st.isSymbolicLink()) detail = `-> ${fs.readlinkSync(full)}`;
      else if (st.isFile()) detail = JSON.stringify(fs.readFileSync(full, 'utf8'));
      out.push(`${normalize(full)} ${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f'} ${(st.mode & 0o777).toString(8)} ${st.isDirectory() ? '' : st.size} ${st.isSymbolicLink() ? '' : mtime} ${normalize(detail)}`);
      if (st.isDirectory()) walk(full);
    }
  };
  walk(ROOT);
  return out.join('\n');
}

// ---- what a caller can observe --------------------------------------------------------------------------

/** A comparable description of a result; closes what needs closing. */
async function describeValue(value: unknown): Promise<string> {
  if (value === undefined || value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    fs.closeSync(value); // an fd from open()
    return 'fd';
  }
  if (typeof value === 'string') return `string:${normalize(value)}`;
  if (Buffer.isBuffer(value)) return `buffer:${value.toString()}`;
  if (Array.isArray(value)) return `array:${JSON.stringify(value.map((v: unknown) => (typeof v === 'string' ? v : (v as { name?: string }).name)).sort())}`;
  if (value instanceof fs.Stats) return `stats:${value.isFile()}:${value.isDirectory()}:${value.isSymbolicLink()}:${value.size}`;
  if (value instanceof fs.Dir) {
    const names: string[] = [];
    for await (const entry of value) names.push(entry.name);
    return `dir:${normalize(value.path)}:${names.sort().join(',')}`;
  }
  if (value instanceof Blob) return `blob:${value.size}:${await value.text()}`;
  const ctor = (value as object).constructor?.name;
  if (ctor === 'FileHandle') {
    const handle = value as FsModule.promises.FileHandle;
    try {
      return `filehandle:${(await handle.stat()).size}`;
    } finally {
      await handle.close();
    }
  }
  if (ctor === 'StatFs' || (typeof value === 'object' && 'bsize' in (value as object))) return 'statfs';
  return `${typeof value}:${ctor}`;
}

interface Outcome {
  /** What the call returned synchronously (callback form: `undefined`; promise form: 'Promise'). */
  returned: string;
  result: string;
  /** Callback form: the callback ran after the call returned. */
  later?: boolean;
}

const errorOf = (error: unknown) => `error:${(error as { code?: string }).code ?? (error as Error).name}`;

async function callForm(form: Form, name: string, args: unknown[]): Promise<Outcome> {
  if (form === 'sync') {
    try {
      const value = (fs as unknown as Record<string, AnyFn>)[`${name}Sync`]!(...args);
      return { returned: 'value', result: await describeValue(value) };
    } catch (error) {
      return { returned: 'throw', result: errorOf(error) };
    }
  }
  if (form === 'promise') {
    let returned: unknown;
    try {
      returned = (fs.promises as unknown as Record<string, AnyFn>)[name]!(...args);
    } catch (error) {
      return { returned: 'throw', result: errorOf(error) };
    }
    const kind = returned instanceof Promise ? 'Promise' : typeof returned;
    try {
      return { returned: kind, result: await describeValue(await returned) };
    } catch (error) {
      return { returned: kind, result: errorOf(error) };
    }
  }
  return new Promise((resolve) => {
    let returnedYet = false;
    const returned = (fs as unknown as Record<string, AnyFn>)[name]!(...args, (error: unknown, value: unknown) => {
      const later = returnedYet;
      if (error) resolve({ returned: 'undefined', result: errorOf(error), later });
      else void describeValue(value).then((result) => resolve({ returned: 'undefined', result, later }));
    });
    returnedYet = true;
    expect(returned).toBeUndefined();
  });
}

// ---- the functions ---------------------------------------------------------------------------------------

interface Op {
  readonly name: string;
  /** Names (relative to the area) of the path arguments. */
  readonly paths: readonly string[];
  /** Arguments after the paths. */
  readonly extra?: readonly unknown[];
  readonly forms?: readonly Form[];
}

const ALL: readonly Form[] = ['callback', 'sync', 'promise'];
const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

const OPS: readonly Op[] = [
  { name: 'readFile', paths: ['a.txt'] },
  { name: 'writeFile', paths: ['new.txt'], extra: ['data'] },
  { name: 'appendFile', paths: ['a.txt'], extra: ['+more'] },
  { name: 'open', paths: ['a.txt'], extra: ['r'] },
  { name: 'open', paths: ['created.txt'], extra: ['w'] },
  { name: 'opendir', paths: ['dir'] },
  { name: 'stat', paths: ['a.txt'] },
  { name: 'lstat', paths: ['link'] },
  { name: 'statfs', paths: ['a.txt'] },
  { name: 'readdir', paths: ['dir'] },
  { name: 'access', paths: ['a.txt'] },
  { name: 'realpath', paths: ['link'] },
  { name: 'readlink', paths: ['link'] },
  { name: 'unlink', paths: ['a.txt'] },
  { name: 'rmdir', paths: ['empty'] },
  { name: 'rm', paths: ['a.txt'] },
  { name: 'mkdir', paths: ['newdir'] },
  { name: 'mkdtemp', paths: ['tmp-'] },
  { name: 'truncate', paths: ['a.txt'], extra: [2] },
  { name: 'chmod', paths: ['a.txt'], extra: [0o600] },
  { name: 'chown', paths: ['a.txt'], extra: [uid, gid] },
  { name: 'lchown', paths: ['link'], extra: [uid, gid] },
  { name: 'utimes', paths: ['a.txt'], extra: [1000, 1000] },
  { name: 'lutimes', paths: ['link'], extra: [1000, 1000] },
  { name: 'rename', paths: ['a.txt', 'renamed.txt'] },
  { name: 'copyFile', paths: ['a.txt', 'copy.txt'] },
  { name: 'cp', paths: ['a.txt', 'cp.txt'] },
  { name: 'link', paths: ['a.txt', 'hard.txt'] },
  { name: 'symlink', paths: ['a.txt', 'newlink'] },
];

type PathKind = 'string' | 'buffer' | 'url';
const inBase = (name: string) => join(ROOT, 'base', name);
/** `base/../outside/<name>`: the request's `../outside/<name>` concatenated to the base directory. */
const climbing = (name: string) => `${join(ROOT, 'base')}/../outside/${name}`;
function asKind(path: string, kind: PathKind): unknown {
  if (kind === 'buffer') return Buffer.from(path);
  if (kind === 'url') return pathToFileURL(path);
  return path;
}

const benignRequest = <R>(fn: () => R): R => runWithContext({ query: { file: 'a.txt', page: '2' } }, fn);
const attackRequest = <R>(name: string, fn: () => R): R => runWithContext({ query: { file: `../outside/${name}` } }, fn);

const formsOf = (op: Op) => (op.forms ?? ALL).filter((f) => typeof (f === 'promise' ? (fs.promises as unknown as Record<string, unknown>)[op.name] : (fs as unknown as Record<string, unknown>)[f === 'sync' ? `${op.name}Sync` : op.name]) === 'function');
const cases = OPS.flatMap((op) => ALL.map((form) => [`${form === 'promise' ? 'promises.' : ''}${op.name}${form === 'sync' ? 'Sync' : ''}(${op.paths.join(', ')}${op.extra ? ', …' : ''})`, op, form] as const));

beforeEach(() => resetTree());

describe('fs hook: patched functions', () => {
  it('wraps every path function in every form, keeping name and length', () => {
    const targets: [string, unknown][] = [];
    for (const op of OPS) {
      for (const form of formsOf(op)) {
        const owner = form === 'promise' ? fs.promises : fs;
        const key = form === 'sync' ? `${op.name}Sync` : op.name;
        targets.push([`${form}:${key}`, (owner as unknown as Record<string, unknown>)[key]]);
      }
    }
    for (const name of ['exists', 'existsSync', 'watch', 'openAsBlob', 'createReadStream', 'createWriteStream']) targets.push([name, (fs as unknown as Record<string, unknown>)[name]]);
    targets.push(['promises.watch', fs.promises.watch], ['realpath.native', fs.realpath.native], ['realpathSync.native', fs.realpathSync.native]);
    expect(targets.length).toBeGreaterThanOrEqual(3 * 28);
    for (const [label, fn] of targets) {
      expect(isWrapped(fn), label).toBe(true);
      const original = originalOf(fn as AnyFn);
      expect((fn as AnyFn).name, label).toBe(original.name);
      expect((fn as AnyFn).length, label).toBe(original.length);
    }
    // lchmod exists on macOS only; where missing nothing is added.
    expect(typeof fs.lchmod === 'function' || fs.lchmod === undefined).toBe(true);
  });

  it('fs/promises and fs.promises are the same patched object', () => {
    const promises = require('node:fs/promises') as Fs['promises'];
    expect(promises).toBe(fs.promises);
    expect(isWrapped(promises.readFile)).toBe(true);
  });

  it('keeps util.promisify working (including the custom promisified exists)', async () => {
    const read = util.promisify(fs.readFile);
    expect(String(await benignRequest(() => read(inBase('a.txt'))))).toBe('hello from base');
    const exists = util.promisify(fs.exists) as unknown as (p: string) => Promise<boolean>;
    expect(await benignRequest(() => exists(inBase('a.txt')))).toBe(true);
    expect(await exists(climbing('a.txt'))).toBe(true);
    expect(await attackRequest('a.txt', () => exists(climbing('a.txt')))).toBe(false);
    await expect(attackRequest('a.txt', () => read(climbing('a.txt')))).rejects.toMatchObject({ code: BLOCKED });
  });
});

describe('fs hook: unchanged behaviour (outside a request = inside with benign input)', () => {
  it.each(cases)('%s [%s]', async (_label, op, form) => {
    if (!formsOf(op).includes(form)) return;
    const args = [...op.paths.map(inBase), ...(op.extra ?? [])];
    resetTree();
    const plain = await callForm(form, op.name, args);
    const plainTree = snapshot();
    resetTree();
    const judged = await benignRequest(() => callForm(form, op.name, args));
    expect(judged).toEqual(plain);
    expect(snapshot()).toBe(plainTree);
    expect(plain.result).not.toMatch(/^error/);
    if (form === 'callback') expect(plain.later).toBe(true);

    // A path that does not exist fails the same way (ENOENT, or whatever Node says).
    const missingArgs = [...op.paths.map((n) => inBase(`missing/${n}`)), ...(op.extra ?? [])];
    resetTree();
    const plainMissing = await callForm(form, op.name, missingArgs);
    resetTree();
    expect(await benignRequest(() => callForm(form, op.name, missingArgs))).toEqual(plainMissing);
    expect(plainMissing.result).toMatch(/^error:E/);
  });

  it.each(['buffer', 'url'] as const)('accepts %s paths unchanged', async (kind) => {
    for (const form of ALL) {
      for (const op of OPS.filter((o) => ['readFile', 'stat', 'writeFile', 'copyFile', 'readdir'].includes(o.name))) {
        const args = [...op.paths.map((n) => asKind(inBase(n), kind)), ...(op.extra ?? [])];
        resetTree();
        const plain = await callForm(form, op.name, args);
        const tree = snapshot();
        resetTree();
        expect(await benignRequest(() => callForm(form, op.name, args)), `${form} ${op.name}`).toEqual(plain);
        expect(snapshot()).toBe(tree);
        expect(plain.result).not.toMatch(/^error/);
      }
    }
  });

  it('passes fds and FileHandles through without judging them', async () => {
    const fd = fs.openSync(inBase('a.txt'), 'r');
    try {
      expect(attackRequest('a.txt', () => fs.readFileSync(fd, 'utf8'))).toBe('hello from base');
    } finally {
      fs.closeSync(fd);
    }
    const handle = await fs.promises.open(inBase('a.txt'), 'r');
    try {
      expect(String(await attackRequest('a.txt', () => fs.promises.readFile(handle)))).toBe('hello from base');
    } finally {
      await handle.close();
    }
  });

  it('does not refuse a request carrying traversal input when the path does not contain it', async () => {
    const text = await attackRequest('a.txt', () => fs.promises.readFile(inBase('a.txt'), 'utf8'));
    expect(text).toBe('hello from base');
  });
});

describe('fs hook: refusals fail the way each form fails', () => {
  const refusalCases = cases.flatMap(([label, op, form]) => op.paths.map((_, k) => [`${label} path #${k + 1}`, op, form, k] as const));

  it.each(refusalCases)('%s [%s]', async (_label, op, form, k) => {
    if (!formsOf(op).includes(form)) return;
    const attackName = op.paths[k]!;
    const args = [...op.paths.map((n, i) => (i === k ? climbing(n) : inBase(n))), ...(op.extra ?? [])];
    resetTree();
    const before = snapshot();
    const refused = await attackRequest(attackName, () => callForm(form, op.name, args));
    expect(snapshot()).toBe(before);
    expect(refused.result).toBe(`error:${BLOCKED}`);
    if (form === 'sync') expect(refused.returned).toBe('throw');
    if (form === 'promise') expect(refused.returned).toBe('Promise');
    if (form === 'callback') expect(refused.later).toBe(true);

    // Outside a request the same call works: the refusal is the agent's.
    resetTree();
    expect((await callForm(form, op.name, args)).result).not.toMatch(/^error/);
  });

  it.each(['buffer', 'url'] as const)('refuses %s paths', async (kind) => {
    const path = asKind(climbing('a.txt'), kind);
    await expect(attackRequest('a.txt', () => fs.promises.readFile(path as string))).rejects.toMatchObject({ code: BLOCKED });
    expect(() => attackRequest('a.txt', () => fs.statSync(path as string))).toThrow(expect.objectContaining({ code: BLOCKED }));
    const result = await attackRequest('a.txt', () => callForm('callback', 'writeFile', [path, 'x']));
    expect(result.result).toBe(`error:${BLOCKED}`);
  });

  it('refuses a callback-form call that has no callback by throwing (Node would throw too)', () => {
    expect(() => attackRequest('a.txt', () => (fs.readFile as unknown as AnyFn)(climbing('a.txt')))).toThrow(expect.objectContaining({ code: BLOCKED }));
  });

  it('answers "does not exist" from exists/existsSync', async () => {
    expect(fs.existsSync(climbing('a.txt'))).toBe(true);
    expect(benignRequest(() => fs.existsSync(inBase('a.txt')))).toBe(true);
    expect(benignRequest(() => fs.existsSync(inBase('nope')))).toBe(false);
    expect(attackRequest('a.txt', () => fs.existsSync(climbing('a.txt')))).toBe(false);
    const viaCallback = (path: string, request: typeof benignRequest) =>
      new Promise<[boolean, boolean]>((resolve) => {
        let returned = false;
        request(() => fs.exists(path, (exists) => resolve([exists, returned])));
        returned = true;
      });
    expect(await viaCallback(inBase('a.txt'), benignRequest)).toEqual([true, true]);
    expect(await viaCallback(climbing('a.txt'), (fn) => attackRequest('a.txt', fn))).toEqual([false, true]);
  });

  it('realpath.native and realpathSync.native', async () => {
    const expected = join(ROOT, 'outside', 'a.txt');
    expect(fs.realpathSync.native(climbing('link'))).toBe(expected);
    expect(benignRequest(() => fs.realpathSync.native(inBase('link')))).toBe(join(ROOT, 'base', 'a.txt'));
    expect(() => attackRequest('link', () => fs.realpathSync.native(climbing('link')))).toThrow(expect.objectContaining({ code: BLOCKED }));
    const viaCallback = await new Promise<unknown>((resolve) => attackRequest('link', () => fs.realpath.native(climbing('link'), (error) => resolve(error))));
    expect(viaCallback).toMatchObject({ code: BLOCKED });
  });

  it('openAsBlob rejects', async () => {
    expect(await (await benignRequest(() => fs.openAsBlob(inBase('a.txt')))).text()).toBe('hello from base');
    await expect(attackRequest('a.txt', () => fs.openAsBlob(climbing('a.txt')))).rejects.toMatchObject({ code: BLOCKED });
  });

  it('watch throws; promises.watch rejects on the first next()', async () => {
    const watcher = benignRequest(() => fs.watch(inBase('a.txt')));
    expect(watcher).toBeInstanceOf(require('node:events').EventEmitter);
    watcher.close();
    expect(() => attackRequest('a.txt', () => fs.watch(climbing('a.txt')))).toThrow(expect.objectContaining({ code: BLOCKED }));
    expect(() => benignRequest(() => fs.watch(inBase('nope')))).toThrow(expect.objectContaining({ code: 'ENOENT' }));

    const ac = new AbortController();
    const iterator = benignRequest(() => fs.promises.watch(inBase('a.txt'), { signal: ac.signal }));
    expect(typeof iterator[Symbol.asyncIterator]).toBe('function');
    ac.abort();
    const refused = attackRequest('a.txt', () => fs.promises.watch(climbing('a.txt')));
    expect(typeof refused[Symbol.asyncIterator]).toBe('function');
    await expect((refused as AsyncIterableIterator<unknown>).next()).rejects.toMatchObject({ code: BLOCKED });
  });
});

describe('fs hook: streams', () => {
  const collect = (stream: FsModule.ReadStream) =>
    new Promise<{ data: string; error?: string; events: string[] }>((resolve) => {
      let data = '';
      const events: string[] = [];
      let error: string | undefined;
      stream.on('open', () => events.push('open'));
      stream.on('data', (chunk) => (data += String(chunk)));
      stream.on('error', (e: NodeJS.ErrnoException) => {
        events.push('error');
        error = e.code;
      });
      stream.on('close', () => {
        events.push('close');
        resolve({ data, error, events });
      });
    });

  it('createReadStream: same data and events; ENOENT and refusal both emit error then close', async () => {
    const plain = await collect(fs.createReadStream(inBase('a.txt'), 'utf8'));
    const judged = await collect(benignRequest(() => fs.createReadStream(inBase('a.txt'), 'utf8')));
    expect(judged).toEqual(plain);
    expect(plain.data).toBe('hello from base');

    const missing = await collect(fs.createReadStream(inBase('nope')));
    expect(await collect(benignRequest(() => fs.createReadStream(inBase('nope'))))).toEqual(missing);
    expect(missing.events).toEqual(['error', 'close']);

    let stream!: FsModule.ReadStream;
    expect(() => (stream = attackRequest('a.txt', () => fs.createReadStream(climbing('a.txt'), { encoding: 'utf8', highWaterMark: 16 })))).not.toThrow();
    expect(stream).toBeInstanceOf(fs.ReadStream);
    expect(stream.path).toBe(climbing('a.txt'));
    const refused = await collect(stream);
    expect(refused).toEqual({ data: '', error: BLOCKED, events: ['error', 'close'] });
    expect((await collect(fs.createReadStream(climbing('a.txt'), 'utf8'))).data).toBe('hello from outside');
  });

  it('createReadStream with a URL or Buffer path, and with an fd (path not opened)', async () => {
    const url = pathToFileURL(climbing('a.txt'));
    expect((await collect(attackRequest('a.txt', () => fs.createReadStream(url)))).error).toBe(BLOCKED);
    expect((await collect(attackRequest('a.txt', () => fs.createReadStream(Buffer.from(climbing('a.txt')))))).error).toBe(BLOCKED);
    const fd = fs.openSync(inBase('a.txt'), 'r');
    const viaFd = await collect(attackRequest('a.txt', () => fs.createReadStream(climbing('a.txt'), { fd, encoding: 'utf8' })));
    expect(viaFd.data).toBe('hello from base');
  });

  it('new fs.ReadStream(path) is judged through fs.open', async () => {
    const refused = await collect(attackRequest('a.txt', () => new (fs.ReadStream as unknown as new (path: string) => FsModule.ReadStream)(climbing('a.txt'))));
    expect(refused.error).toBe(BLOCKED);
  });

  it('createWriteStream: writes the same; a refusal writes nothing and emits error then close', async () => {
    const write = (stream: FsModule.WriteStream) =>
      new Promise<string[]>((resolve) => {
        const events: string[] = [];
        stream.on('error', (e: NodeJS.ErrnoException) => events.push(`error:${e.code}`));
        stream.on('finish', () => events.push('finish'));
        stream.on('close', () => resolve([...events, 'close']));
        stream.end('written');
      });
    const plain = await write(fs.createWriteStream(inBase('w1.txt')));
    const judged = await write(benignRequest(() => fs.createWriteStream(inBase('w2.txt'))));
    expect(judged).toEqual(plain);
    expect(fs.readFileSync(inBase('w2.txt'), 'utf8')).toBe('written');

    const missing = await write(fs.createWriteStream(inBase('missing/w.txt')));
    expect(await write(benignRequest(() => fs.createWriteStream(inBase('missing/w.txt'))))).toEqual(missing);

    const before = snapshot();
    const stream = attackRequest('w3.txt', () => fs.createWriteStream(climbing('w3.txt'), 'utf8'));
    expect(stream).toBeInstanceOf(fs.WriteStream);
    expect(await write(stream)).toEqual([`error:${BLOCKED}`, 'close']);
    expect(snapshot()).toBe(before);
  });
});
