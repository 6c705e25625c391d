import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ssrf, classifyAddress, createSsrfDetector } from '../../../src/detectors/ssrf.js';
import { allowEntryProblem, compileAllowList } from '../../../src/detectors/ssrf-allow-list.js';
import { loadConfig } from '../../../src/config.js';
import type { HttpOutEvent, UserInput } from '../../../src/events.js';
import type { Finding } from '../../../src/detectors/types.js';

const q = (value: string, path = 'query.url', source: UserInput['source'] = 'query'): UserInput => ({ source, path, value });
const out = (url: string, extra: Partial<HttpOutEvent> = {}): HttpOutEvent => ({ kind: 'http.out', op: 'http.get', url, ...extra });
const detect = (event: HttpOutEvent, ...inputs: UserInput[]): readonly Finding[] => ssrf.detect(event, inputs);
const kinds = (findings: readonly Finding[]) => findings.map((f) => `${f.kind}:${f.reason}`);

/** The app passed the user's URL straight through. */
const direct = (url: string, extra: Partial<HttpOutEvent> = {}) => detect(out(url, extra), q(url));
/** The same, by a detector configured with an allow-list. */
const allowing = (entries: string[]) => {
  const detector = createSsrfDetector(compileAllowList(entries));
  return (url: string, extra: Partial<HttpOutEvent> = {}) => detector.detect(out(url, extra), [q(url)]);
};

describe('ssrf: address ranges', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.1.1', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['168.63.129.16', 'metadata'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['198.18.0.1', 'reserved'],
    ['224.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['2002:7f00:1::', 'loopback'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fd00:ec2::254', 'metadata'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fec0::1', 'private'],
    ['ff02::1', 'reserved'],
    ['::127.0.0.1', 'reserved'],
  ])('%s is %s', (ip, range) => {
    expect(classifyAddress(ip)).toBe(range);
  });

  it.each(['8.8.8.8', '1.1.1.1', '203.0.113.5', '198.51.100.7', '192.0.2.1', '172.32.0.1', '172.15.255.255', '100.128.0.1', '11.0.0.1', '2001:4860:4860::8888', '2001:db8::1', '::ffff:8.8.8.8', 'example.com'])(
    '%s is public (or not an IP)',
    (ip) => {
      expect(classifyAddress(ip)).toBeUndefined();
    },
  );
});

describe('ssrf: obfuscated loopback forms reach 127.0.0.1 (WHATWG normalisation)', () => {
  it.each([
    'http://127.0.0.1/',
    'http://127.1/',
    'http://127.0.1/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://0x7F.0x0.0x0.0x1/',
    'http://017700000001/',
    'http://0177.0.0.1/',
    'http://0177.1/',
    'http://127.0.0.1./',
    'http://127.000.000.001/',
    'http://[::1]/',
    'http://[0:0:0:0:0:0:0:1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://localhost/',
    'http://LOCALHOST/',
    'http://localhost./',
    'http://localhost../',
    'http://app.localhost/',
    'http://a@127.0.0.1/',
    'http://a:b@127.0.0.1:8080/',
    'http://evil.example@127.0.0.1/',
    'http://127.0.0.1#@evil.example/',
    'http://127.0.0.1:6379/',
    'https://127.0.0.1/',
    'http://%31%32%37.0.0.1/',
    'http:/\\127.0.0.1/',
  ])('%s', (url) => {
    const findings = direct(url);
    expect(findings).toHaveLength(1);
    expect(findings[0]!.kind).toBe('attack');
    expect(findings[0]!.reason).toBe('loopback');
  });

  it('unspecified, metadata and private forms', () => {
    expect(kinds(direct('http://0/'))).toEqual(['attack:unspecified']);
    expect(kinds(direct('http://0.0.0.0:8080/'))).toEqual(['attack:unspecified']);
    expect(kinds(direct('http://[::]/'))).toEqual(['attack:unspecified']);
    expect(kinds(direct('http://169.254.169.254/latest/meta-data/'))).toEqual(['attack:metadata']);
    expect(kinds(direct('http://2852039166/'))).toEqual(['attack:metadata']);
    expect(kinds(direct('http://[::ffff:169.254.169.254]/'))).toEqual(['attack:metadata']);
    expect(kinds(direct('http://[fd00:ec2::254]/latest/'))).toEqual(['attack:metadata']);
    expect(kinds(direct('http://metadata.google.internal/computeMetadata/v1/'))).toEqual(['attack:metadata']);
    expect(kinds(direct('http://metadata.google.internal./'))).toEqual(['attack:metadata']);
    expect(kinds(direct('http://metadata/computeMetadata/v1/'))).toEqual(['attack:metadata']);
    expect(kinds(direct('http://10.0.0.1/'))).toEqual(['attack:private']);
    expect(kinds(direct('http://0xa000001/'))).toEqual(['attack:private']);
    expect(kinds(direct('http://192.168.0.1:8080/admin'))).toEqual(['attack:private']);
    expect(kinds(direct('http://100.64.1.1/'))).toEqual(['attack:cgnat']);
    expect(kinds(direct('http://[fd00::1]/'))).toEqual(['attack:unique-local']);
    expect(kinds(direct('http://[fe80::1]/'))).toEqual(['attack:link-local']);
  });
});

describe('ssrf: who decides the host', () => {
  it('the input is the host (the app builds the URL)', () => {
    expect(kinds(detect(out('http://127.0.0.1:8080/api'), q('127.0.0.1', 'query.host')))).toEqual(['attack:loopback']);
    expect(kinds(detect(out('http://127.1:6379/'), q('127.1:6379', 'query.host')))).toEqual(['attack:loopback']);
    expect(kinds(detect(out('http://[::1]/x'), q('::1', 'query.host')))).toEqual(['attack:loopback']);
    expect(kinds(detect(out('http://localhost./x'), q('localhost.', 'body.host', 'body')))).toEqual(['attack:loopback']);
  });

  it('the app normalised the input first (new URL(input).href)', () => {
    expect(kinds(detect(out('http://127.0.0.1/'), q('http://2130706433/')))).toEqual(['attack:loopback']);
    expect(kinds(detect(out('http://127.0.0.1/'), q('http://0x7f000001')))).toEqual(['attack:loopback']);
    expect(kinds(detect(out('http://[::ffff:7f00:1]/'), q('http://[::ffff:127.0.0.1]/')))).toEqual(['attack:loopback']);
    expect(kinds(detect(out('http://localhost/'), q('HTTP://LOCALHOST./')))).toEqual(['attack:loopback']);
    expect(kinds(detect(out('http://127.0.0.1/'), q('0177.0.0.1', 'query.host')))).toEqual(['attack:loopback']);
  });

  it('an input naming another port than the one requested does not decide it', () => {
    expect(detect(out('http://127.0.0.1:9200/'), q('127.0.0.1:3000', 'headers.host', 'headers'))).toEqual([]);
  });

  it('input that reshapes the authority', () => {
    // http://api.example.com + user path "@127.0.0.1/"
    expect(kinds(detect(out('http://api.example.com@127.0.0.1/x'), q('@127.0.0.1/x', 'query.path')))).toEqual(['attack:loopback']);
    // prefix injection with a fragment: `http://${sub}.example.com/`
    expect(kinds(detect(out('http://127.0.0.1#.example.com/'), q('127.0.0.1#', 'query.sub')))).toEqual(['attack:loopback']);
  });

  it('the input picks the domain (multi-label suffix): its DNS decides', () => {
    expect(kinds(detect(out('http://cdn.evil.example/x', { address: '10.0.0.8' }), q('evil.example', 'query.domain')))).toEqual(['attack:dns:private']);
  });

  it('input elsewhere in the URL does not decide the host', () => {
    expect(detect(out('http://127.0.0.1:8080/search?q=hello'), q('hello', 'query.q'))).toEqual([]);
    expect(detect(out('http://10.0.0.5/users/42'), q('42', 'params.id', 'params'))).toEqual([]);
    expect(detect(out('http://internal.svc/report?next=http%3A%2F%2F127.0.0.1'), q('http%3A%2F%2F127.0.0.1'))).toEqual([]);
    expect(detect(out('http://localhost:9200/idx/_search'), q('idx', 'path.1', 'path'))).toEqual([]);
    expect(detect(out('http://127.0.0.1:8080/api'), q(':8080/api', 'query.suffix'))).toEqual([]);
  });

  it('one label inside an app-chosen domain does not decide the host', () => {
    expect(detect(out('http://tenant1.svc.cluster.local/', { address: '10.3.0.7' }), q('tenant1', 'query.tenant'))).toEqual([]);
  });

  it('a URL path segment equal to an internal service name is a coincidence', () => {
    expect(detect(out('http://redis:8080/health', { address: '172.18.0.3' }), q('redis', 'path.2', 'path'))).toEqual([]);
  });

  it('no input, no finding', () => {
    expect(detect(out('http://127.0.0.1/'))).toEqual([]);
    expect(detect(out('http://169.254.169.254/'), q('something else'))).toEqual([]);
  });

  it('finding offsets point at the input inside the URL', () => {
    const url = 'http://127.0.0.1:8080/api';
    const [f] = detect(out(url), q('127.0.0.1', 'query.host'));
    expect(url.slice(f!.start, f!.end)).toBe('127.0.0.1');
  });
});

describe('ssrf: DNS answers (connection level)', () => {
  it('a user-chosen name that resolves to a private address is an attack', () => {
    expect(kinds(direct('http://internal.example/', { address: '127.0.0.1' }))).toEqual(['attack:dns:loopback']);
    expect(kinds(direct('http://evil.example/', { address: '169.254.169.254' }))).toEqual(['attack:dns:metadata']);
    expect(kinds(direct('http://evil.example/', { address: '::ffff:10.1.1.1' }))).toEqual(['attack:dns:private']);
    expect(kinds(direct('http://evil.example/', { address: 'fd00::5' }))).toEqual(['attack:dns:unique-local']);
  });

  it('DNS rebinding: the same name is judged by each answer', () => {
    expect(kinds(direct('http://rebind.example/', { address: '203.0.113.9' }))).toEqual(['vulnerability:user-host']);
    expect(kinds(direct('http://rebind.example/', { address: '127.0.0.1' }))).toEqual(['attack:dns:loopback']);
  });

  it('before DNS answers, a plain name is not judged', () => {
    expect(direct('http://rebind.example/')).toEqual([]);
  });

  it('a user-chosen public host is a vulnerability, not an attack', () => {
    expect(kinds(direct('http://93.184.216.34/'))).toEqual(['vulnerability:user-host']);
    expect(kinds(direct('https://example.com/', { address: '93.184.216.34' }))).toEqual(['vulnerability:user-host']);
    expect(kinds(direct('http://[2001:db8::1]/'))).toEqual(['vulnerability:user-host']);
  });

  it('metadata names are internal whatever they resolve to', () => {
    expect(kinds(direct('http://metadata.google.internal/', { address: '8.8.8.8' }))).toEqual(['attack:dns:metadata']);
  });
});

describe('ssrf: redirects', () => {
  it('a hop of a chain the input started is judged as that input', () => {
    const from = 'http://evil.example/r';
    expect(kinds(detect(out('http://127.0.0.1:6379/', { redirectFrom: from }), q(from)))).toEqual(['attack:redirect:loopback']);
    expect(kinds(detect(out('http://169.254.169.254/latest', { redirectFrom: from }), q(from)))).toEqual(['attack:redirect:metadata']);
    expect(kinds(detect(out('http://internal.example/', { redirectFrom: from, address: '10.0.0.1' }), q(from)))).toEqual(['attack:redirect:private']);
    expect(kinds(detect(out('http://203.0.113.7/', { redirectFrom: from }), q(from)))).toEqual(['vulnerability:redirect:user-host']);
  });

  it('a redirect of an app-chosen URL is not the user’s', () => {
    expect(detect(out('http://127.0.0.1/', { redirectFrom: 'http://api.example.com/' }), q('hello', 'query.q'))).toEqual([]);
  });
});

describe('ssrf: the app calling itself', () => {
  it('loopback to the port the request arrived on is not an attack', () => {
    expect(direct('http://127.0.0.1:3000/health', { server: { address: '127.0.0.1', port: 3000 } })).toEqual([]);
    expect(direct('http://localhost:3000/health', { server: { address: '::ffff:127.0.0.1', port: 3000 } })).toEqual([]);
    expect(direct('http://myapp:3000/x', { address: '172.18.0.4', server: { address: '::ffff:172.18.0.4', port: 3000 } })).toEqual([]);
  });

  it('another port on the same host is', () => {
    expect(kinds(direct('http://127.0.0.1:6379/', { server: { address: '127.0.0.1', port: 3000 } }))).toEqual(['attack:loopback']);
    expect(kinds(direct('http://myapp:6379/x', { address: '172.18.0.4', server: { address: '172.18.0.4', port: 3000 } }))).toEqual(['attack:dns:private']);
  });
});

describe('ssrf: allow-list (STEPGUARD_SSRF_ALLOW)', () => {
  it('allows listed addresses, ranges and names', () => {
    const direct = allowing(['10.1.2.3', '192.168.0.0/16', 'internal.example', '*.svc.cluster.local', 'fd00:1::/32']);
    expect(direct('http://10.1.2.3/')).toEqual([]);
    expect(direct('http://192.168.44.1/')).toEqual([]);
    expect(direct('http://internal.example/', { address: '10.9.9.9' })).toEqual([]);
    expect(direct('http://INTERNAL.example./', { address: '10.9.9.9' })).toEqual([]);
    expect(direct('http://api.svc.cluster.local/', { address: '10.96.0.1' })).toEqual([]);
    expect(direct('http://[fd00:1:2::3]/')).toEqual([]);
    expect(direct('http://[::ffff:10.1.2.3]/')).toEqual([]);
  });

  it('keeps refusing what is not listed', () => {
    const direct = allowing(['10.1.2.3', 'internal.example']);
    expect(kinds(direct('http://10.1.2.4/'))).toEqual(['attack:private']);
    expect(kinds(direct('http://127.0.0.1/'))).toEqual(['attack:loopback']);
    expect(kinds(direct('http://evil.internal.example/', { address: '10.9.9.9' }))).toEqual(['attack:dns:private']);
    expect(kinds(direct('http://169.254.169.254/'))).toEqual(['attack:metadata']);
  });

  it('ignores invalid entries', () => {
    const direct = allowing(['not a host!', '10.0.0.0/99', '127.0.0.1']);
    expect(direct('http://127.0.0.1/')).toEqual([]);
    expect(kinds(direct('http://10.0.0.1/'))).toEqual(['attack:private']);
  });

  it('is configuration: another detector, or the default one, is unaffected', () => {
    allowing(['127.0.0.1']);
    expect(kinds(direct('http://127.0.0.1/'))).toEqual(['attack:loopback']);
  });

  it('the configuration checks entries with the same parser, and names the bad one', () => {
    for (const bad of ['not a host!', '10.0.0.0/99', '1.2.3.4/x', '*.', 'a..b', '::g']) expect(allowEntryProblem(bad), bad).toBeDefined();
    for (const good of ['10.1.2.3', '10.0.0.0/8', 'fd00::/8', '::1', 'internal.example', 'internal.example.', '*.svc.cluster.local', 'redis']) expect(allowEntryProblem(good), good).toBeUndefined();
    const { problems } = loadConfig({ STEPGUARD_SSRF_ALLOW: '10.0.0.0/8, 10.0.0.0/99' }, '/');
    expect(problems).toHaveLength(1);
    expect(problems[0]!.where).toBe('env STEPGUARD_SSRF_ALLOW');
    expect(problems[0]!.message).toContain('"10.0.0.0/99" is not a valid IP address or CIDR range');
  });
});

describe('ssrf: what it does not judge', () => {
  it('non-network schemes and unparsable text', () => {
    expect(direct('data:text/plain,hello')).toEqual([]);
    expect(direct('file:///etc/passwd')).toEqual([]);
    expect(direct('not a url')).toEqual([]);
  });

  it('a hostname http cannot parse is still judged by its DNS answer', () => {
    expect(kinds(detect(out('http://127.0.0.1 x:80/', { address: '127.0.0.1' }), q('127.0.0.1 x', 'query.host')))).toEqual(['attack:dns:loopback']);
  });
});

describe('ssrf: payload corpus', () => {
  const read = (file: string) =>
    readFileSync(new URL(`../../fixtures/payloads/${file}`, import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { route: string; param: string; value: string });
  const fill = (v: string) =>
    v.replace(/\{PORT\}/g, '41234').replace(/\{PUB\}/g, '203.0.113.2').replace(/\{APP\}/g, '3000').replace(/\{CASE\}/g, '7');
  // Only the URL-level cases: DNS, rebinding and redirect cases need a connection and are covered end to end.
  const urlLevel = (v: string) => !/sg\.test|\/redirect\?/.test(v);

  it.each(read('ssrf.attack.jsonl').filter((c) => urlLevel(c.value)))('attack $value is refused by its URL', (c) => {
    const value = fill(c.value);
    const url = c.route === '/proxy' ? `http://${value}/secret?c=7` : value;
    const findings = detect(out(url, { server: { address: '127.0.0.1', port: 3000 } }), q(value, `query.${c.param}`));
    expect(findings.map((f) => f.kind)).toEqual(['attack']);
  });

  it.each(read('ssrf.benign.jsonl').filter((c) => urlLevel(c.value) && c.route !== '/search' && c.route !== '/report'))('benign $value', (c) => {
    const value = fill(c.value);
    const url = c.route === '/proxy' ? `http://${value}/x` : value;
    const findings = detect(out(url, { server: { address: '127.0.0.1', port: 3000 } }), q(value, `query.${c.param}`));
    expect(findings.filter((f) => f.kind === 'attack')).toEqual([]);
  });
});

describe('ssrf: internationalised names', () => {
  it('an input the app normalised to punycode still decides the host', () => {
    expect(kinds(detect(out('http://xn--bcher-kva.example/', { address: '10.0.0.1' }), q('http://bücher.example/')))).toEqual(['attack:dns:private']);
  });
});
