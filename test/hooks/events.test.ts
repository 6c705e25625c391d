/**
 * The `SinkEvent` each non-SQL hook hands to the agent, recorded (test/helpers/sink-events.ts) for
 * representative calls of every sink: child_process, fs, the http/https client, fetch, the Function
 * constructors and vm. The SQL drivers record theirs in the shared driver suite (sql-drivers.shared.ts).
 *
 * The other hook tests see the agent's end result (a refusal, an unchanged call); these pin down the
 * translation itself — op names, the program and argv a shell call really runs, paths decoded from URLs and
 * Buffers, which argument is written to, the URL rebuilt from an options object, the address a connection
 * really goes to, the source V8 compiles — which is what detectors and rules are written against.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as ChildProcessModule from 'node:child_process';
import type * as FsModule from 'node:fs';
import type * as HttpModule from 'node:http';
import type * as UtilModule from 'node:util';
import type * as VmModule from 'node:vm';
import type { SinkEvent } from '../../src/events.js';
import { startAgentInProcess } from '../helpers/agent.js';
import { recordSinkEvents, type SinkEventRecorder } from '../helpers/sink-events.js';

const require = createRequire(import.meta.url);

/** Benign request input: it appears in no sink below, so nothing is refused and every call runs. */
const INPUT = 'sg-event-input';

let cp: typeof ChildProcessModule;
let fs: typeof FsModule;
let http: typeof HttpModule;
let util: typeof UtilModule;
let vm: typeof VmModule;
let recorder: SinkEventRecorder;
let runWithContext: <R>(input: { query: Record<string, string> }, fn: () => R) => R;
let dir: string;
let server: Server;
let base: string;

/** The events judged while `fn` runs inside a request. */
const eventsOf = (fn: () => unknown): Promise<SinkEvent[]> => recorder.during(() => runWithContext({ query: { q: INPUT } }, fn));

beforeAll(async () => {
  ({ runWithContext } = startAgentInProcess());
  recorder = recordSinkEvents();
  cp = require('node:child_process') as typeof ChildProcessModule;
  fs = require('node:fs') as typeof FsModule;
  http = require('node:http') as typeof HttpModule;
  util = require('node:util') as typeof UtilModule;
  vm = require('node:vm') as typeof VmModule;
  dir = mkdtempSync(join(tmpdir(), 'sg-events-'));
  writeFileSync(join(dir, 'a.txt'), 'a');
  writeFileSync(join(dir, 'fork-child.cjs'), 'process.exit(0);\n');
  server = createServer((req, res) => {
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/final' }).end();
      return;
    }
    req.resume();
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await new Promise((resolve) => server?.close(resolve));
});

// ---- child_process ----------------------------------------------------------------------------------------

const exited = (child: ChildProcessModule.ChildProcess) => new Promise((resolve) => child.on('close', resolve));
// Hooks pass raw call data: the command as given and the `shell` option; the detector decides what a shell parses.
const shell = (op: string, command: string): SinkEvent => ({ kind: 'exec', op, file: command, args: [], shell: true });

describe('child_process: the program that runs, its argv, and the command line a shell parses', () => {
  const node = process.execPath;
  const cases: Array<{ call: string; run: () => unknown; expected: () => SinkEvent[] }> = [
    {
      call: 'exec(command, cb): /bin/sh -c command',
      run: () => new Promise((resolve) => cp.exec('echo sg-exec', resolve)),
      expected: () => [shell('child_process.exec', 'echo sg-exec')],
    },
    {
      call: 'exec(command, { shell }, cb): the shell named in the options',
      run: () => new Promise((resolve) => cp.exec('echo sg-exec-shell', { shell: '/bin/bash' }, resolve)),
      expected: () => [{ kind: 'exec', op: 'child_process.exec', file: 'echo sg-exec-shell', args: [], shell: '/bin/bash' }],
    },
    {
      call: 'util.promisify(exec)(command)',
      run: () => util.promisify(cp.exec)('echo sg-promisified'),
      expected: () => [shell('child_process.exec', 'echo sg-promisified')],
    },
    {
      call: 'execFile(file, args, cb): no shell option',
      run: () => new Promise((resolve) => cp.execFile(node, ['-e', '0'], resolve)),
      expected: () => [{ kind: 'exec', op: 'child_process.execFile', file: node, args: ['-e', '0'], shell: undefined }],
    },
    {
      call: 'spawn(file, args)',
      run: () => exited(cp.spawn(node, ['-e', '0'])),
      expected: () => [{ kind: 'exec', op: 'child_process.spawn', file: node, args: ['-e', '0'], shell: undefined }],
    },
    {
      call: "spawn('sh', ['-c', script]): a shell started by hand still has its script judged",
      run: () => exited(cp.spawn('sh', ['-c', 'true'])),
      expected: () => [{ kind: 'exec', op: 'child_process.spawn', file: 'sh', args: ['-c', 'true'], shell: undefined }],
    },
    {
      call: 'spawn(file, args, { shell: true }): the words joined into one command line',
      run: () => exited(cp.spawn('echo', ['sg', 'spawn'], { shell: true })),
      expected: () => [{ kind: 'exec', op: 'child_process.spawn', file: 'echo', args: ['sg', 'spawn'], shell: true }],
    },
    {
      call: 'fork(module, args, { execArgv }): node, its flags, the module and its args',
      run: () => exited(cp.fork(join(dir, 'fork-child.cjs'), ['x'], { execArgv: ['--no-warnings'] })),
      expected: () => [{ kind: 'exec', op: 'child_process.fork', file: node, args: ['--no-warnings', join(dir, 'fork-child.cjs'), 'x'], shell: undefined }],
    },
    {
      call: 'execSync(command)',
      run: () => cp.execSync('true'),
      expected: () => [shell('child_process.execSync', 'true')],
    },
    {
      call: 'execFileSync(file, args)',
      run: () => cp.execFileSync(node, ['-e', '0']),
      expected: () => [{ kind: 'exec', op: 'child_process.execFileSync', file: node, args: ['-e', '0'], shell: undefined }],
    },
    {
      call: 'spawnSync(file, args)',
      run: () => cp.spawnSync('sh', ['-c', 'true']),
      expected: () => [{ kind: 'exec', op: 'child_process.spawnSync', file: 'sh', args: ['-c', 'true'], shell: undefined }],
    },
  ];

  it.each(cases)('$call', async ({ run, expected }) => {
    expect(await eventsOf(run)).toEqual(expected());
  });
});

// ---- fs -----------------------------------------------------------------------------------------------------

describe('fs: the path as Node resolves it, and whether the call writes to it', () => {
  const at = (name: string) => join(dir, name);
  const fsEvent = (op: string, name: string, write: boolean): SinkEvent => ({ kind: 'fs', op, path: at(name), write });
  const cases: Array<{ call: string; run: () => unknown; expected: () => SinkEvent[] }> = [
    { call: 'readFileSync(path)', run: () => fs.readFileSync(at('a.txt')), expected: () => [fsEvent('fs.readFileSync', 'a.txt', false)] },
    { call: 'readFile(file: URL, cb): the URL decoded to a path', run: () => new Promise((r) => fs.readFile(pathToFileURL(at('a.txt')), r)), expected: () => [fsEvent('fs.readFile', 'a.txt', false)] },
    { call: 'statSync(Buffer path)', run: () => fs.statSync(Buffer.from(at('a.txt'))), expected: () => [fsEvent('fs.statSync', 'a.txt', false)] },
    { call: 'promises.writeFile(path, data)', run: () => fs.promises.writeFile(at('w.txt'), 'w'), expected: () => [fsEvent('fs.promises.writeFile', 'w.txt', true)] },
    { call: "openSync(path, 'r'): a read", run: () => fs.closeSync(fs.openSync(at('a.txt'), 'r')), expected: () => [fsEvent('fs.openSync', 'a.txt', false)] },
    { call: "openSync(path, 'a'): the flags make it a write", run: () => fs.closeSync(fs.openSync(at('o.txt'), 'a')), expected: () => [fsEvent('fs.openSync', 'o.txt', true)] },
    {
      call: 'copyFileSync(src, dest): two paths, only the destination is written',
      run: () => fs.copyFileSync(at('a.txt'), at('copy.txt')),
      expected: () => [fsEvent('fs.copyFileSync', 'a.txt', false), fsEvent('fs.copyFileSync', 'copy.txt', true)],
    },
    {
      call: 'rename(old, new, cb): both paths are written',
      run: () => new Promise((r) => fs.rename(at('copy.txt'), at('moved.txt'), r)),
      expected: () => [fsEvent('fs.rename', 'copy.txt', true), fsEvent('fs.rename', 'moved.txt', true)],
    },
    { call: 'existsSync(path)', run: () => fs.existsSync(at('nothing-here')), expected: () => [fsEvent('fs.existsSync', 'nothing-here', false)] },
    {
      call: 'createReadStream(path): judged when created (the open it makes is the same path)',
      run: () => new Promise((r) => fs.createReadStream(at('a.txt')).on('close', () => r(undefined)).resume()),
      expected: () => [fsEvent('fs.createReadStream', 'a.txt', false)],
    },
    { call: 'fstatSync(fd): no path, no event', run: () => fs.fstatSync(0), expected: () => [] },
  ];

  it.each(cases)('$call', async ({ run, expected }) => {
    expect(await eventsOf(run)).toEqual(expected());
  });
});

// ---- http client and fetch --------------------------------------------------------------------------------

/** Runs one http client call to the end (response consumed). */
function completed(start: (done: (res: HttpModule.IncomingMessage) => void) => HttpModule.ClientRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = start((res) => res.resume().on('end', resolve));
    req.on('error', reject);
  });
}

describe('http client and fetch: the URL requested, then the address each connection really goes to', () => {
  const out = (op: string, url: string, extra: Partial<Extract<SinkEvent, { kind: 'http.out' }>> = {}): SinkEvent => ({ kind: 'http.out', op, url, ...extra });

  it('http.get(url): the URL as written, then the connection to 127.0.0.1', async () => {
    const url = `${base}/get?x=1`;
    expect(await eventsOf(() => completed((done) => http.get(url, done)))).toEqual([out('http.get', url), out('http.get', url, { address: '127.0.0.1' })]);
  });

  it('http.request(options): the URL rebuilt from host, port and path', async () => {
    const { port } = server.address() as AddressInfo;
    const events = await eventsOf(() =>
      completed((done) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/post', method: 'POST' }, done);
        req.end('body');
        return req;
      }),
    );
    expect(events).toEqual([out('http.request', `${base}/post`), out('http.request', `${base}/post`, { address: '127.0.0.1' })]);
  });

  it('a request made from a 3xx response to its Location follows the redirect: it names the first URL', async () => {
    const first = `${base}/redirect`;
    const events = await eventsOf(
      () =>
        new Promise<void>((resolve, reject) => {
          http
            .get(first, (res) => {
              res.resume();
              completed((done) => http.get(new URL(res.headers.location!, first), done)).then(resolve, reject);
            })
            .on('error', reject);
        }),
    );
    expect(events.filter((e) => e.kind === 'http.out' && e.address === undefined)).toEqual([
      out('http.get', first),
      out('http.get', `${base}/final`, { redirectFrom: first }),
    ]);
  });

  it('fetch(url): the URL, then the connection undici opens for it', async () => {
    const url = `${base}/fetch`;
    const events = await eventsOf(async () => (await fetch(url)).text());
    expect(events).toEqual([out('fetch', url), out('fetch', url, { address: '127.0.0.1' })]);
  });

  it('fetch following a redirect: the hop it dispatches names the URL the app asked for', async () => {
    const first = `${base}/redirect`;
    const events = await eventsOf(async () => (await fetch(first)).text());
    expect(events.filter((e) => e.kind === 'http.out' && e.address === undefined)).toEqual([out('fetch', first), out('fetch', `${base}/final`, { redirectFrom: first })]);
  });
});

// ---- code --------------------------------------------------------------------------------------------------

describe('Function and vm: the source V8 compiles', () => {
  const code = (op: string, source: string): SinkEvent => ({ kind: 'code', op, source });
  // Looked up when the call runs: the agent replaces the constructor when it starts (after collection).
  const AsyncFunction = () => (async () => {}).constructor as FunctionConstructor;
  const cases: Array<{ call: string; run: () => unknown; expected: SinkEvent[] }> = [
    { call: "new Function('a', 'b', body)", run: () => new Function('a', 'b', 'return a + b'), expected: [code('Function', 'function anonymous(a,b\n) {\nreturn a + b\n}')] },
    { call: 'Function(body) without new', run: () => Function('return 1'), expected: [code('Function', 'function anonymous(\n) {\nreturn 1\n}')] },
    { call: 'the AsyncFunction constructor', run: () => new (AsyncFunction())('await 0'), expected: [code('AsyncFunction', 'async function anonymous(\n) {\nawait 0\n}')] },
    { call: 'a body that is not a primitive is not converted (no side effects): no event', run: () => new Function({ toString: () => 'return 1' } as unknown as string), expected: [] },
    { call: 'vm.runInNewContext(code)', run: () => vm.runInNewContext('1 + 1'), expected: [code('vm.runInNewContext', '1 + 1')] },
    { call: 'new vm.Script(code)', run: () => new vm.Script('2 + 2'), expected: [code('vm.Script', '2 + 2')] },
    { call: 'vm.compileFunction(body, params)', run: () => vm.compileFunction('return a', ['a']), expected: [code('vm.compileFunction', 'function anonymous(a\n) {\nreturn a\n}')] },
  ];

  it.each(cases)('$call', async ({ run, expected }) => {
    expect(await eventsOf(run)).toEqual(expected);
  });
});
