/**
 * A tiny authoritative DNS server (UDP, A records only) on a unique loopback address, port 53, and a `node`
 * wrapper that runs a process with it as its only resolver: `unshare --mount` + a bind-mounted private
 * /etc/resolv.conf (and /etc/hosts). The app then resolves through the real getaddrinfo path — what
 * `dns.lookup`, http and fetch use — against answers the test controls, including answers that change
 * between two lookups of the same name (DNS rebinding). Needs root (CI runs as root).
 */
import { createSocket, type Socket } from 'node:dgram';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An A answer: fixed, or computed per query (`n` counts this name's A queries from 1). */
export type Answer = string | ((n: number) => string);

export interface DnsServer {
  readonly address: string;
  /** A `node` replacement (for startApp's nodeBinary) that resolves names through this server only. */
  readonly nodeBinary: string;
  /** A queries seen per name. */
  queries(name: string): number;
  stop(): Promise<void>;
}

function decodeQuestion(msg: Buffer): { name: string; type: number; end: number } | undefined {
  let i = 12;
  const labels: string[] = [];
  while (i < msg.length && msg[i] !== 0) {
    const len = msg[i]!;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString());
    i += len + 1;
  }
  if (i + 5 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(i + 1), end: i + 5 };
}

export async function startDnsServer(records: Record<string, Answer>, hosts = '127.0.0.1 localhost\n'): Promise<DnsServer> {
  const table = new Map(Object.entries(records).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
  const counts = new Map<string, number>();
  const socket: Socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    const q = decodeQuestion(msg);
    if (!q) return;
    const answer = table.get(q.name);
    let ip: string | undefined;
    if (answer !== undefined && q.type === 1) {
      const n = (counts.get(q.name) ?? 0) + 1;
      counts.set(q.name, n);
      ip = typeof answer === 'function' ? answer(n) : answer;
    }
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8400 | (answer === undefined ? 3 : 0), 2); // response, authoritative, NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(ip ? 1 : 0, 6);
    const question = msg.subarray(12, q.end);
    const parts = [header, question];
    if (ip) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
      rr.writeUInt16BE(1, 2); // A
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(0, 6); // TTL 0: never cached
      rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
      parts.push(rr);
    }
    socket.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  const r = randomBytes(2);
  const address = `127.53.${r[0]! % 250}.${(r[1]! % 250) + 2}`;
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(53, address, () => resolve());
  });

  const dir = mkdtempSync(join(tmpdir(), 'sg-dns-'));
  writeFileSync(join(dir, 'resolv.conf'), `nameserver ${address}\noptions timeout:1 attempts:2\n`);
  writeFileSync(join(dir, 'hosts'), hosts);
  const nodeBinary = join(dir, 'node-with-dns.sh');
  writeFileSync(
    nodeBinary,
    `#!/bin/sh\nexec unshare --mount sh -c 'mount --bind ${dir}/resolv.conf /etc/resolv.conf && mount --bind ${dir}/hosts /etc/hosts && exec "$0" "$@"' ${process.execPath} "$@"\n`,
  );
  chmodSync(nodeBinary, 0o755);
  return {
    address,
    nodeBinary,
    queries: (name) => counts.get(name.toLowerCase()) ?? 0,
    stop: async () => {
      await new Promise<void>((resolve) => socket.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
