/**
 * A host with a PUBLIC (non-private) address, without the internet: a network namespace joined to this one by
 * a veth pair, addressed from a free /30 of TEST-NET-3 (203.0.113.0/24) or TEST-NET-2 (198.51.100.0/24) —
 * documentation ranges no SSRF rule treats as internal — running a script inside it with `ip netns exec`.
 *
 * Needs root and iproute2 (`bash scripts/services.sh install` installs it). When it cannot build the host it
 * THROWS: SSRF benign cases are meaningless without a public destination, so they must never be skipped.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface NetnsHost {
  /** The address of the host inside the namespace (public range). */
  readonly address: string;
  /** This side of the veth pair. */
  readonly gateway: string;
  readonly namespace: string;
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

export interface NetnsOptions {
  /** Script run with node inside the namespace; gets the address as its first argument, prints `LISTENING`. */
  readonly script: string;
  readonly args?: readonly string[];
  readonly prefix?: '203.0.113' | '198.51.100';
  readonly timeoutMs?: number;
}

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(
      `netns test host: \`ip ${args.join(' ')}\` failed: ${e.stderr?.trim() || e.message}\n` +
        'SSRF tests need root and iproute2 (run `bash scripts/services.sh install`).',
    );
  }
}

/** A /30 of the prefix nobody on this machine uses yet (other test runs may hold some). */
function freeBlock(prefix: string): number {
  const used = new Set<number>();
  for (const m of ip(['-o', '-4', 'addr', 'show']).matchAll(/inet (\d+\.\d+\.\d+)\.(\d+)\//g)) {
    if (m[1] === prefix) used.add(Number(m[2]) >> 2);
  }
  const start = randomBytes(1)[0]! & 63;
  for (let i = 0; i < 64; i++) {
    const block = (start + i) & 63;
    if (!used.has(block)) return block;
  }
  throw new Error(`netns test host: no free /30 left in ${prefix}.0/24`);
}

const live = new Set<() => void>();
process.once('exit', () => {
  for (const cleanup of live) cleanup();
});

export async function startNetnsHost(options: NetnsOptions): Promise<NetnsHost> {
  const prefix = options.prefix ?? '203.0.113';
  const id = randomBytes(3).toString('hex');
  const namespace = `sg-${process.pid}-${id}`;
  const outer = `sgh${id}`;
  const inner = `sgn${id}`;
  let child: ChildProcess | undefined;
  const cleanup = () => {
    child?.kill('SIGKILL');
    try {
      execFileSync('ip', ['link', 'del', outer], { stdio: 'ignore' });
    } catch {
      // already gone with the namespace
    }
    try {
      execFileSync('ip', ['netns', 'del', namespace], { stdio: 'ignore' });
    } catch {
      // never created
    }
  };
  live.add(cleanup);
  try {
    const block = freeBlock(prefix);
    const gateway = `${prefix}.${block * 4 + 1}`;
    const address = `${prefix}.${block * 4 + 2}`;
    ip(['netns', 'add', namespace]);
    ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
    ip(['link', 'set', inner, 'netns', namespace]);
    ip(['addr', 'add', `${gateway}/30`, 'dev', outer]);
    ip(['link', 'set', outer, 'up']);
    ip(['netns', 'exec', namespace, 'ip', 'addr', 'add', `${address}/30`, 'dev', inner]);
    ip(['netns', 'exec', namespace, 'ip', 'link', 'set', inner, 'up']);
    ip(['netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up']);
    ip(['netns', 'exec', namespace, 'ip', 'route', 'add', 'default', 'via', gateway]);

    let out = '';
    let err = '';
    child = spawn('ip', ['netns', 'exec', namespace, process.execPath, options.script, address, ...(options.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`netns test host did not start:\n${err}`)), options.timeoutMs ?? 15_000);
      child!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('LISTENING')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child!.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`netns test host exited with ${code}:\n${err}`));
      });
    });
    const proc = child;
    return {
      address,
      gateway,
      namespace,
      stdout: () => out,
      stderr: () => err,
      stop: async () => {
        if (proc.exitCode === null) {
          await new Promise<void>((done) => {
            proc.once('exit', () => done());
            proc.kill('SIGTERM');
          });
        }
        cleanup();
        live.delete(cleanup);
      },
    };
  } catch (error) {
    cleanup();
    live.delete(cleanup);
    throw error;
  }
}
