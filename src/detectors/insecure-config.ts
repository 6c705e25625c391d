import type { ConfigEvent, UserInput } from '../events.js';
import type { Detector, Finding } from './types.js';

/**
 * Insecure configuration (issue #12 B6): vulnerabilities the app has whatever the request holds. Reported
 * (once per route and reason, src/telemetry/findings.ts), never blocked: the shipped rule only monitors.
 *
 * `response` events (the head of a response, from the http hook):
 * - a session cookie (name like `sid`, `session`, `auth`, `token`, `jwt`, `remember`) set without `HttpOnly`,
 *   without `SameSite`, or — over HTTPS — without `Secure`;
 * - a cookie whose value holds a recent `Math.random()` output (`predictable-token`): the hook keeps the last
 *   few outputs and compares them only when a cookie is set;
 * - an HTML response without `Content-Security-Policy`, without `X-Content-Type-Options: nosniff`, or — over
 *   HTTPS — without `Strict-Transport-Security`.
 * `hash` events (`crypto.createHash('md5'|'sha1')`): the data hashed holds a password-like request input (a
 * field whose name contains `pass`): `weak-password-hash`, the one finding here that names its input.
 * A sensitive operation refused at step-up because the request has no identity is reported by inspect.ts
 * with reason `anonymous-sensitive-operation` (the gate knows identities; detectors are pure).
 */

export type InsecureConfigReason =
  | 'cookie-without-httponly'
  | 'cookie-without-secure'
  | 'cookie-without-samesite'
  | 'predictable-token'
  | 'missing-csp'
  | 'missing-nosniff'
  | 'missing-hsts'
  | 'weak-password-hash'
  | 'anonymous-sensitive-operation';

const SESSION_COOKIE = /sess|sid|auth|token|jwt|remember|login/i;
const PASSWORD_FIELD = /pass/i;
/** Shorter values are too likely to occur by chance in hashed data (a 3-digit PIN is no password). */
const MIN_PASSWORD = 4;

const finding = (reason: InsecureConfigReason, input?: UserInput): Finding => ({
  detector: 'insecure-config',
  kind: 'vulnerability',
  ...(input ? { input } : {}),
  start: 0,
  end: 0,
  reason,
});

/** Lines `name: value` → name → values (cookies may repeat). */
function headLines(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const list = out.get(name) ?? [];
    list.push(line.slice(colon + 1).trim());
    out.set(name, list);
  }
  return out;
}

function responseFindings(event: ConfigEvent): Finding[] {
  const head = headLines(event.text);
  const found: Finding[] = [];
  const seen = new Set<InsecureConfigReason>();
  const add = (reason: InsecureConfigReason): void => {
    if (seen.has(reason)) return;
    seen.add(reason);
    found.push(finding(reason));
  };
  for (const cookie of head.get('set-cookie') ?? []) {
    const name = cookie.slice(0, Math.max(0, cookie.indexOf('='))).trim();
    if (!SESSION_COOKIE.test(name)) continue;
    const attrs = cookie.toLowerCase().split(';').map((a) => a.trim().split('=')[0]);
    // A cookie being deleted (Max-Age=0 / an expiry in the past is not parsed: Max-Age=0 is what libraries write) carries nothing.
    if (/;\s*max-age=0\b/i.test(cookie)) continue;
    if (!attrs.includes('httponly')) add('cookie-without-httponly');
    if (!attrs.includes('samesite')) add('cookie-without-samesite');
    if (event.https && !attrs.includes('secure')) add('cookie-without-secure');
  }
  if ((event.randomCookies?.length ?? 0) > 0) add('predictable-token');
  const type = (head.get('content-type') ?? [''])[0]!.toLowerCase();
  if (type.startsWith('text/html') || type.startsWith('application/xhtml+xml')) {
    if (!head.has('content-security-policy')) add('missing-csp');
    if (!(head.get('x-content-type-options') ?? []).some((v) => v.toLowerCase() === 'nosniff')) add('missing-nosniff');
    if (event.https && !head.has('strict-transport-security')) add('missing-hsts');
  }
  return found;
}

function hashFindings(event: ConfigEvent, inputs: readonly UserInput[]): Finding[] {
  const data = event.data ?? '';
  for (const input of inputs) {
    if (input.isKey || input.value.length < MIN_PASSWORD || !PASSWORD_FIELD.test(input.path.slice(input.path.lastIndexOf('.') + 1))) continue;
    if (data.includes(input.value)) return [finding('weak-password-hash', input)];
  }
  return [];
}

export const insecureConfig: Detector<ConfigEvent> = {
  id: 'insecure-config',
  kinds: ['config'],
  needsInputs: false,
  // Only the password-hash check reads the request's input; a response head is judged on its own.
  usesInputs: (event) => event.kind === 'config' && event.check === 'hash',
  detect(event: ConfigEvent, inputs: readonly UserInput[]): Finding[] {
    return event.check === 'hash' ? hashFindings(event, inputs) : responseFindings(event);
  },
};
