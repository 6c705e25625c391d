import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { clientAddress, forwardedFor, parseTrustedProxies, resolveClientAddress, xForwardedFor, type TrustedProxies } from '../../../src/context/client-address.js';
import { loadConfig } from '../../../src/config.js';

const req = (peer: string | undefined, headers: Record<string, string | string[]> = {}) => ({ socket: { remoteAddress: peer }, headers }) as unknown as IncomingMessage;

function trusted(value: string, header?: 'x-forwarded-for' | 'forwarded'): TrustedProxies {
  const parsed = parseTrustedProxies(value, header);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value;
}

describe('X-Forwarded-For and Forwarded parsing', () => {
  it('X-Forwarded-For: addresses left to right, ports and brackets removed, garbage as undefined', () => {
    expect(xForwardedFor('203.0.113.7, 10.0.0.2')).toEqual(['203.0.113.7', '10.0.0.2']);
    expect(xForwardedFor('203.0.113.7:5555,[2001:db8::1]:443 , 2001:DB8::2')).toEqual(['203.0.113.7', '2001:db8::1', '2001:db8::2']);
    expect(xForwardedFor('::ffff:198.51.100.4')).toEqual(['198.51.100.4']);
    expect(xForwardedFor('evil.example, 1.2.3, 300.1.1.1, , 10.0.0.1:99999999, [::1')).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });

  it('Forwarded: for= of each element, quoted IPv6 with ports, other parameters ignored', () => {
    expect(forwardedFor('for=192.0.2.60;proto=http;by=203.0.113.43')).toEqual(['192.0.2.60']);
    expect(forwardedFor('for="[2001:db8:cafe::17]:4711", for=198.51.100.17;proto=https')).toEqual(['2001:db8:cafe::17', '198.51.100.17']);
    expect(forwardedFor('For="192.0.2.43:47011";host=example.com, proto=https;for=10.0.0.1')).toEqual(['192.0.2.43', '10.0.0.1']);
    expect(forwardedFor('for=unknown, for=_hidden, for="[::1", proto=https, for=1.1.1.1;for=2.2.2.2')).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(forwardedFor('for="a\\"b", for=10.0.0.9')).toEqual([undefined, '10.0.0.9']);
  });

  it('stays linear on a huge header and keeps only the right end', () => {
    const huge = '1.1.1.1,'.repeat(200_000) + '9.9.9.9';
    const started = process.hrtime.bigint();
    const chain = xForwardedFor(huge);
    expect(chain.at(-1)).toBe('9.9.9.9');
    expect(chain.length).toBeLessThanOrEqual(32);
    expect(forwardedFor('for="'.repeat(100_000)).length).toBeLessThanOrEqual(32);
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2_000);
  });
});

describe('the client address', () => {
  it('without the setting: always the socket peer, headers ignored', () => {
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': '203.0.113.7' }), undefined)).toBe('10.0.0.2');
    expect(resolveClientAddress(req('::ffff:127.0.0.1'), undefined)).toBe('127.0.0.1');
    expect(resolveClientAddress(req(undefined), undefined)).toBeUndefined();
  });

  it('trusted ranges: walks from the right through trusted proxies only', () => {
    const t = trusted('10.0.0.0/8, fd00::/8');
    // An untrusted peer: its header is ignored, whatever it says.
    expect(resolveClientAddress(req('198.51.100.9', { 'x-forwarded-for': '1.2.3.4' }), t)).toBe('198.51.100.9');
    // Our proxy appended the client; what the client wrote itself sits further left and is never reached.
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' }), t)).toBe('203.0.113.7');
    // Two trusted proxies in a row (IPv6 one included).
    expect(resolveClientAddress(req('::ffff:10.0.0.2', { 'x-forwarded-for': '203.0.113.7, fd00::5' }), t)).toBe('203.0.113.7');
    // Every hop trusted: the leftmost address.
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': '10.1.1.1, 10.2.2.2' }), t)).toBe('10.1.1.1');
    // Garbage right after a trusted hop: stop at the last real address.
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': '203.0.113.7, bogus' }), t)).toBe('10.0.0.2');
    // Several header lines are one list.
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': ['6.6.6.6', '203.0.113.8'] }), t)).toBe('203.0.113.8');
    // No header: the peer.
    expect(resolveClientAddress(req('10.0.0.2'), t)).toBe('10.0.0.2');
  });

  it('a hop count takes exactly that many hops from the right', () => {
    const one = trusted('1');
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' }), one)).toBe('203.0.113.7');
    const two = trusted('2');
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 10.0.0.1' }), two)).toBe('203.0.113.7');
    // Fewer entries than hops: the farthest one there is.
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': '203.0.113.7' }), two)).toBe('203.0.113.7');
    expect(resolveClientAddress(req('10.0.0.2', { 'x-forwarded-for': 'junk' }), one)).toBe('10.0.0.2');
  });

  it('reads only the configured header', () => {
    const xff = trusted('10.0.0.2');
    const fwd = trusted('10.0.0.2', 'forwarded');
    const headers = { 'x-forwarded-for': '203.0.113.7', forwarded: 'for="[2001:db8::9]:1234"' };
    expect(resolveClientAddress(req('10.0.0.2', headers), xff)).toBe('203.0.113.7');
    expect(resolveClientAddress(req('10.0.0.2', headers), fwd)).toBe('2001:db8::9');
  });

  it('is computed once per request and cached on the context', () => {
    const slots = new Map<symbol, unknown>();
    const r = req('10.0.0.2', { 'x-forwarded-for': '203.0.113.7' });
    const ctx = { req: r, slots, trustedProxies: trusted('10.0.0.0/8') };
    expect(clientAddress(ctx)).toBe('203.0.113.7');
    (r.headers as Record<string, string>)['x-forwarded-for'] = '198.51.100.1';
    expect(clientAddress(ctx)).toBe('203.0.113.7');
    expect(slots.size).toBe(1);
  });
});

describe('STEPGUARD_TRUSTED_PROXIES', () => {
  it('accepts addresses, CIDR ranges (IPv4 and IPv6) and hop counts', () => {
    expect(loadConfig({ STEPGUARD_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.1, fd00::/8, ::1' }).problems).toEqual([]);
    const { config, problems } = loadConfig({ STEPGUARD_TRUSTED_PROXIES: '2', STEPGUARD_TRUSTED_PROXY_HEADER: 'Forwarded' });
    expect(problems).toEqual([]);
    expect(config.trustedProxies).toEqual({ kind: 'hops', hops: 2, header: 'forwarded' });
    expect(loadConfig({}).config.trustedProxies).toBeUndefined();
  });

  it.each([
    ['10.0.0.0/33', '"10.0.0.0/33" is neither an IP address nor a CIDR range'],
    ['10.0.0.1,proxy.internal', '"proxy.internal" is neither'],
    ['0', 'a hop count is the number of proxies'],
    ['99', 'a hop count is the number of proxies'],
    [',', 'a comma-separated list of proxy addresses'],
  ])('%s → a start-up problem naming the variable and the fix', (value, message) => {
    const { problems } = loadConfig({ STEPGUARD_TRUSTED_PROXIES: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.where).toBe('env STEPGUARD_TRUSTED_PROXIES');
    expect(problems[0]!.message).toContain(message);
    expect(problems[0]!.message).toContain('e.g.');
  });

  it('an unknown header name is a problem too', () => {
    const { problems } = loadConfig({ STEPGUARD_TRUSTED_PROXIES: '1', STEPGUARD_TRUSTED_PROXY_HEADER: 'x-real-ip' });
    expect(problems.map((p) => p.where)).toEqual(['env STEPGUARD_TRUSTED_PROXY_HEADER']);
  });
});
