import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { readLog, summarize, matches, parseSince } from '../telemetry/findings-read.js';

export const DASHBOARD_HELP = `stepguard dashboard — a local page over the findings log

Usage:
  stepguard dashboard [--file PATH] [--port N]

Serves on 127.0.0.1 only (default port 7420; 0 picks a free one), read-only, and only to whoever holds the
random token printed at start. Works offline: the page and its chart library (uPlot) come from the package.

Options:
  --file PATH   the findings log (default: $STEPGUARD_FINDINGS_FILE)
  --port N      the port (default 7420)
`;

const COOKIE = 'sg_dashboard';
/** The page's own files, shipped in the package next to the compiled server (see package.json "files"). */
const ASSETS_DIR = resolve(__dirname, '../../../src/dashboard/assets');

interface Asset {
  readonly type: string;
  readonly path: string;
}

function assets(): Map<string, Asset> {
  const uplot = (file: string): string => join(resolve(require.resolve('uplot/package.json'), '..'), 'dist', file);
  return new Map<string, Asset>([
    ['/', { type: 'text/html; charset=utf-8', path: join(ASSETS_DIR, 'index.html') }],
    ['/assets/page.js', { type: 'text/javascript; charset=utf-8', path: join(ASSETS_DIR, 'page.js') }],
    ['/assets/page.css', { type: 'text/css; charset=utf-8', path: join(ASSETS_DIR, 'page.css') }],
    ['/assets/uPlot.iife.min.js', { type: 'text/javascript; charset=utf-8', path: uplot('uPlot.iife.min.js') }],
    ['/assets/uPlot.min.css', { type: 'text/css; charset=utf-8', path: uplot('uPlot.min.css') }],
  ]);
}

export interface DashboardOptions {
  readonly file: string;
  readonly port: number;
  readonly token?: string;
}

export interface RunningDashboard {
  readonly url: string;
  readonly token: string;
  close(): Promise<void>;
}

/** Starts the server; resolves once it listens on 127.0.0.1. */
export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const files = assets();
  let origin = '';
  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(error as Error).message}\n`);
    }
  });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', origin);
    // A page on another site could point a DNS name at 127.0.0.1 (DNS rebinding): only our own host names.
    const host = req.headers.host ?? '';
    if (host !== url.host && host !== `localhost:${url.port}`) return send(res, 421, 'text/plain; charset=utf-8', 'wrong host\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'read-only\n', { allow: 'GET, HEAD' });
    const fromQuery = url.searchParams.get('token');
    const fromCookie = cookie(req, COOKIE);
    const fromHeader = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const presented = fromQuery ?? fromHeader ?? fromCookie;
    if (!presented || !same(presented, token)) {
      return send(res, 401, 'text/plain; charset=utf-8', 'stepguard dashboard: the token printed at start is required (open the URL it printed)\n');
    }
    const extra: Record<string, string> = {};
    if (fromQuery) extra['set-cookie'] = `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`;
    if (url.pathname === '/api/summary') {
      const since = url.searchParams.get('since');
      const from = since ? parseSince(since) : undefined;
      const records = readLog(options.file).filter((r) => matches(r, { since: from }));
      const body = JSON.stringify({ file: options.file, generatedAt: new Date().toISOString(), summary: summarize(records, { limit: 10, buckets: 40 }) });
      return send(res, 200, 'application/json', body, extra);
    }
    const asset = files.get(url.pathname);
    if (!asset) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    send(res, 200, asset.type, readFileSync(asset.path), extra);
  }

  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port, '127.0.0.1', () => done());
  });
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/?token=${token}`,
    token,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // The token is in the first URL: never send it on as a referrer. Nothing is loaded from elsewhere.
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ...extra,
  });
  res.end(body);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const p = part.trim();
    if (p.startsWith(`${name}=`)) return p.slice(name.length + 1);
  }
  return undefined;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function dashboardCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(DASHBOARD_HELP);
    return 0;
  }
  let file = env.STEPGUARD_FINDINGS_FILE;
  let port = 7420;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--file' && value) {
      file = value;
      i++;
    } else if (arg === '--port' && value && /^\d+$/.test(value) && Number(value) < 65536) {
      port = Number(value);
      i++;
    } else {
      out.write(`stepguard dashboard: ${arg === '--port' ? `--port ${value ?? ''}: expected a port number (0 picks a free one)` : `unknown option ${arg}`}\n\n${DASHBOARD_HELP}`);
      return 2;
    }
  }
  if (!file) {
    out.write(`stepguard dashboard: no findings log: pass --file PATH or set STEPGUARD_FINDINGS_FILE (the same value the app runs with)\n\n${DASHBOARD_HELP}`);
    return 2;
  }
  let dashboard: RunningDashboard;
  try {
    dashboard = await startDashboard({ file: resolve(file), port });
  } catch (error) {
    out.write(`stepguard dashboard: cannot listen on 127.0.0.1:${port}: ${(error as Error).message} (pick another with --port)\n`);
    return 1;
  }
  out.write(`stepguard dashboard over ${resolve(file)}\n  open ${dashboard.url}\n  (127.0.0.1 only, read-only; the token is required. Ctrl-C to stop)\n`);
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await dashboard.close();
  return 0;
}
