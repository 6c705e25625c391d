/**
 * Runs a fixture app in a child process — under the agent (`--require dist/src/register.js`) or bare — and
 * talks to it over real HTTP on loopback. The app prints `LISTENING <port>` once it serves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const REGISTER = resolve(REPO, 'dist/src/register.js');
export const fixture = (name: string) => resolve(REPO, 'test/fixtures/apps', name);

export interface RunningApp {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  stderr(): string;
  stdout(): string;
  stop(): Promise<void>;
}

export interface AppOptions {
  readonly agent?: boolean;
  readonly env?: Record<string, string | undefined>;
  /** Extra node flags, e.g. ['--import', …]. */
  readonly nodeArgs?: readonly string[];
  readonly nodeBinary?: string;
  readonly args?: readonly string[];
  readonly timeoutMs?: number;
}

/**
 * The same fixture twice: without the agent (the proof that an exploit works) and with it in block mode on the
 * shipped rules only. `options` applies to both.
 */
export async function startBareAndGuarded(script: string, options: Omit<AppOptions, 'agent'> = {}): Promise<{ bare: RunningApp; guarded: RunningApp }> {
  const [bare, guarded] = await Promise.all([
    startApp(script, { ...options, agent: false, env: { STEPGUARD_RULES: '', ...options.env } }),
    startApp(script, { ...options, env: { STEPGUARD_RULES: '', STEPGUARD_MODE: 'block', ...options.env } }),
  ]);
  return { bare, guarded };
}

export async function startApp(script: string, options: AppOptions = {}): Promise<RunningApp> {
  const nodeArgs = [...(options.agent === false ? [] : ['--require', REGISTER]), ...(options.nodeArgs ?? []), script, ...(options.args ?? [])];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, OTEL_TRACES_EXPORTER: 'none', ...options.env })) if (v !== undefined) env[k] = v;
  const child = spawn(options.nodeBinary ?? process.env.SG_NODE_BINARY ?? process.execPath, nodeArgs, { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`app ${script} did not start:\n${err}`)), options.timeoutMs ?? 15_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`app ${script} exited with ${code} before listening:\n${err}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    stderr: () => err,
    stdout: () => out,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Waits for the app to log a line matching `pattern`. The app writes its log line before it answers, but its stderr
 * pipe and the HTTP socket reach this process separately, so a reply can be read before the line is: a check right
 * after a reply must wait for the line instead of reading stderr once. `pattern` may also be a test of the whole stderr.
 */
export async function logged(app: Pick<RunningApp, 'stderr'>, pattern: RegExp | string | ((stderr: string) => boolean), timeoutMs = 5_000): Promise<string> {
  const found = () =>
    typeof pattern === 'string' ? app.stderr().includes(pattern) : typeof pattern === 'function' ? pattern(app.stderr()) : pattern.test(app.stderr());
  const deadline = Date.now() + timeoutMs;
  while (!found()) {
    if (Date.now() > deadline) {
      const what = typeof pattern === 'function' ? `what ${pattern.name || 'the test'} waits for` : String(pattern);
      throw new Error(`the app did not log ${what} within ${timeoutMs} ms; its stderr:\n${app.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return app.stderr();
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json(): unknown;
}

/**
 * One request on its own connection (`connection: close`). A kept-alive connection that sits idle while a loaded
 * machine stalls the test process can be closed by the app's keep-alive timeout just as the next request goes out on
 * it; fetch then fails with "other side closed" (UND_ERR_SOCKET), which says nothing about the app or the agent.
 */
export async function call(app: RunningApp, method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; raw?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = { connection: 'close', ...init.headers };
  let body: string | undefined = init.raw;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(app.url + path, { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as unknown };
}
