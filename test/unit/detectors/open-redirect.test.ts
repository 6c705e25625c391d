import { describe, expect, it } from 'vitest';
import { compileRedirectAllowList, createOpenRedirectDetector, openRedirect, redirectAllowEntryProblem } from '../../../src/detectors/open-redirect.js';
import type { RedirectEvent, UserInput } from '../../../src/events.js';

const q = (value: string, path = 'query.next'): UserInput => ({ source: 'query', path, value });
const ev = (location: string, self: string | undefined = 'app.example'): RedirectEvent => ({ kind: 'redirect', op: 'res.setHeader', location, self });
const reasons = (location: string, ...inputs: UserInput[]) => openRedirect.detect(ev(location), inputs).map((f) => `${f.kind}:${f.reason}`);


describe('open-redirect', () => {
  it.each([
    ['https://evil.example/', 'https://evil.example/'],
    ['//evil.example', '//evil.example'],
    ['/\\evil.example', '/\\evil.example'],
    ['\\\\evil.example', '\\\\evil.example'],
    ['/\t/evil.example', '/\t/evil.example'],
    ['https:evil.example', 'https:evil.example'],
    ['https://app.example@evil.example', 'https://app.example@evil.example'],
    ['//evil.example', '/evil.example'], // the app prefixed '/'
    ['https://evil.example#.app.example/', 'evil.example#'], // the input cut off the app's domain
    ['https://evil/', 'evil'], // the input is the whole host
  ])('Location %j with input %j is an attack', (location, input) => {
    expect(reasons(location, q(input))).toEqual(['attack:foreign-origin']);
  });

  it.each([
    ['/dashboard', '/dashboard'],
    ['https://app.example/home', 'https://app.example/home'], // own host
    ['http://app.example:8080/x', 'http://app.example:8080/x'], // own host, other port
    ['https://partner.example/cb?next=https%3A%2F%2Fevil.example', 'https%3A%2F%2Fevil.example'], // the app fixed the origin
    ['https://partner.example/cb?next=//evil.example', '//evil.example'],
    ['https://shop.app.example/', 'shop'], // one label picked inside the app's domain
    ['/search?q=https://evil.example', 'https://evil.example'],
    ['javascript:alert(1)', 'javascript:alert(1)'], // not followed by browsers as a redirect
  ])('Location %j with input %j is not an attack', (location, input) => {
    expect(reasons(location, q(input))).toEqual([]);
  });

  it('ignores inputs that do not occur in the header', () => {
    expect(reasons('https://evil.example/', q('something-else'))).toEqual([]);
  });

  it('honours the allow-list (names and *.domain)', () => {
    const allowing = createOpenRedirectDetector(compileRedirectAllowList(['sso.example', '*.partner.example']));
    const judged = (location: string) => allowing.detect(ev(location), [q(location)]).map((f) => `${f.kind}:${f.reason}`);
    expect(judged('https://sso.example/login')).toEqual([]);
    expect(judged('https://a.b.partner.example/')).toEqual([]);
    expect(judged('https://partner.example.evil/')).toEqual(['attack:foreign-origin']);
    // The list belongs to that detector only: the default one still refuses.
    expect(reasons('https://sso.example/login', q('https://sso.example/login'))).toEqual(['attack:foreign-origin']);
  });

  it('without a Host header, any other host is foreign', () => {
    expect(openRedirect.detect(ev('//evil.example', undefined), [q('//evil.example')])).toHaveLength(1);
  });

  it('validates allow-list entries', () => {
    expect(redirectAllowEntryProblem('*.example.com')).toBeUndefined();
    expect(redirectAllowEntryProblem('http://x')).toMatch(/not a host name/);
  });
});
