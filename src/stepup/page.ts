/**
 * The verification page for browser apps, served by the agent on the verification path:
 *
 *   GET  {path}?challenge_id=…&return_to=/where  (Accept: text/html)  the page: a code form and/or a passkey button
 *   GET  {path}?register=<ticket>&return_to=/…                          add a passkey (ticket from the app's API call)
 *   POST {path}  application/x-www-form-urlencoded                      the code form (works without JavaScript)
 *   GET  {path}/assets/verify.js | verify.css                           the page's only script and style sheet
 *   POST {path}/webauthn/authenticate/options | /webauthn/authenticate  passkey answer to a challenge (JSON)
 *   POST {path}/webauthn/register/options | /webauthn/register          passkey registration with a ticket (JSON)
 *   POST {path}/recovery                                                a recovery code answer (JSON)
 *
 * No inline script or style: a strict CSP allows only the agent's own files. The form is CSRF-protected by a MAC
 * bound to the challenge and the session, and refused when Origin / Sec-Fetch-Site say it came from another site.
 * `return_to` must be a same-origin relative path; anything else is refused.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../context/request-context.js';
import { PROBLEM, payloadTooLargeResponse, stepUpUnavailableResponse, unsupportedMediaTypeResponse, verifyProblem, writeResponse, type StandardResponse } from '../enforce/index.js';
import { errorMessage, log } from '../log.js';
import { enrolledMethods } from './enrollment.js';
import { issueRecoveryCodes } from './recovery-codes.js';
import { RecoveryVerifier } from './recovery-verify.js';
import { sameString, type StepUpState } from './state.js';
import { StoreUnavailableError } from './store.js';
import { methodsFor, type Method } from './tiers.js';
import { checkChallenge, json, openRegistrationTicket, passkeysUnavailable, relyingParty, requestHost } from './verify-support.js';

/** The page's files, shipped in the package next to the compiled code (package.json "files"). */
const ASSETS_DIR = resolve(__dirname, '../../../src/stepup/assets');
const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/assets/verify.js': { file: 'verify.js', type: 'text/javascript; charset=utf-8' },
  '/assets/verify.css': { file: 'verify.css', type: 'text/css; charset=utf-8' },
};
const MAX_FORM_BODY = 8 * 1024;
const MAX_JSON_BODY = 32 * 1024;
const MAX_RETURN_TO = 2048;

export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': PAGE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // The URL carries the challenge id: never send it on as a Referer.
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** `return_to` as given when it is a same-origin relative path (`/…`, not `//…` nor `/\…`), else undefined. */
export function safeReturnTo(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return '/';
  if (typeof value !== 'string' || value.length > MAX_RETURN_TO) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(value)) return undefined;
  try {
    const base = 'http://stepguard.invalid';
    const url = new URL(value, base);
    if (url.origin !== base) return undefined;
  } catch {
    return undefined;
  }
  return value;
}

type VerifyOtp = (ctx: RequestContext, body: string) => Promise<StandardResponse>;
type PasskeyModule = typeof import('./webauthn.js');

export class VerificationPage {
  private readonly recovery: RecoveryVerifier;
  private assets: Map<string, string> | undefined;
  private passkeys: { module: PasskeyModule; verifier: InstanceType<PasskeyModule['PasskeyVerifier']> } | undefined;

  constructor(
    private readonly state: StepUpState,
    /** The JSON endpoint's OTP verification (endpoint.ts), reused by the form. */
    private readonly verifyOtp: VerifyOtp,
  ) {
    this.recovery = new RecoveryVerifier(state);
  }

  /** Sub-paths of the verification path that this page serves. */
  handlesSubpath(urlPath: string): boolean {
    const rest = urlPath.slice(this.state.verifyPath.length);
    return urlPath.startsWith(this.state.verifyPath) && (Object.hasOwn(ASSETS, rest) || JSON_ROUTES.has(rest));
  }

  /** Is this request for the page (rather than the JSON endpoint)? */
  takes(ctx: RequestContext): boolean {
    if (ctx.urlPath !== this.state.verifyPath) return this.handlesSubpath(ctx.urlPath);
    const method = ctx.method;
    if (method === 'GET' || method === 'HEAD') {
      const accept = ctx.req.headers.accept;
      return typeof accept === 'string' && accept.includes('text/html');
    }
    return method === 'POST' && mediaType(ctx.req) === 'application/x-www-form-urlencoded';
  }

  serve(ctx: RequestContext): void {
    const res = ctx.res;
    if (!res) return;
    this.route(ctx)
      .catch((error: unknown) => {
        if (error instanceof StoreUnavailableError) {
          this.state.event(ctx, 'unavailable', undefined, { reason: 'store' });
          return stepUpUnavailableResponse('0');
        }
        log.error(`step-up page failed unexpectedly: ${errorMessage(error)}`);
        return verifyProblem(500, PROBLEM.unavailable, 'Internal Server Error', 'The verification could not be completed.');
      })
      .then((response) => writeResponse(res, ctx.method === 'HEAD' ? { ...response, body: '' } : response));
  }

  private async route(ctx: RequestContext): Promise<StandardResponse> {
    const rest = ctx.urlPath.slice(this.state.verifyPath.length);
    const method = ctx.method;
    if (Object.hasOwn(ASSETS, rest)) {
      if (method !== 'GET' && method !== 'HEAD') return verifyProblem(405, PROBLEM.badRequest, 'Method Not Allowed', 'GET only.', { allow: 'GET, HEAD' });
      return this.asset(rest);
    }
    if (JSON_ROUTES.has(rest)) return this.jsonRoute(ctx, rest);
    if (method === 'GET' || method === 'HEAD') return this.page(ctx);
    return this.formPost(ctx);
  }

  // ---- the HTML page --------------------------------------------------------------------------------------

  private async page(ctx: RequestContext): Promise<StandardResponse> {
    const query = new URL(ctx.req.url ?? '/', 'http://stepguard.invalid').searchParams;
    const returnTo = safeReturnTo(query.get('return_to'));
    if (returnTo === undefined) return this.errorPage(400, 'The return address is not a path on this site.', '/');
    const ticket = query.get('register');
    if (ticket !== null) return this.registerPage(ctx, ticket, returnTo);
    return this.verifyPage(ctx, query.get('challenge_id') ?? undefined, returnTo, undefined, 200);
  }

  private async verifyPage(ctx: RequestContext, challengeId: string | undefined, returnTo: string, error: string | undefined, status: number, headers: Record<string, string> = {}): Promise<StandardResponse> {
    if (challengeId === undefined) return this.errorPage(400, 'This page needs a challenge: retry the operation that asked for a verification.', returnTo);
    const checked = checkChallenge(this.state, ctx, challengeId);
    if (!checked.ok) return this.errorPage(checked.response.status, detailOf(checked.response), returnTo);
    const claims = checked.claims;
    const has = await enrolledMethods(this.state.store, claims.sub);
    const methods = methodsFor(claims.acr).filter((m) => has.has(m) && (m !== 'webauthn' || relyingParty(this.state, ctx) !== undefined));
    if (methods.length === 0) {
      return this.errorPage(403, 'This operation needs a verification method your account does not have yet. Set one up first.', returnTo);
    }
    const body = verifyBody({
      path: this.state.verifyPath,
      challengeId,
      returnTo,
      csrf: csrfToken(this.state, challengeId, this.state.bindingOf(ctx)),
      methods,
      error,
    });
    return html(status, body, headers);
  }

  private async registerPage(ctx: RequestContext, ticket: string, returnTo: string): Promise<StandardResponse> {
    if (relyingParty(this.state, ctx) === undefined) return this.errorPage(503, 'Passkeys are not configured on this site.', returnTo);
    if (openRegistrationTicket(this.state, ticket, this.state.bindingOf(ctx)) === undefined) {
      return this.errorPage(403, 'This link to add a passkey expired or belongs to another session. Start again from the app.', returnTo);
    }
    return html(200, registerBody(this.state.verifyPath, ticket, returnTo));
  }

  private errorPage(status: number, message: string, returnTo: string): StandardResponse {
    return html(status, page('Verification', `<p class="sg-error" role="alert">${escapeHtml(message)}</p>\n<p><a href="${escapeHtml(returnTo)}">Go back</a></p>`));
  }

  // ---- the code form (no JavaScript needed) ----------------------------------------------------------------

  private async formPost(ctx: RequestContext): Promise<StandardResponse> {
    let text: string;
    try {
      text = await readBody(ctx.req, MAX_FORM_BODY);
    } catch {
      return payloadTooLargeResponse(`The form must be under ${MAX_FORM_BODY} bytes.`, PROBLEM.badRequest);
    }
    const form = new URLSearchParams(text);
    const challengeId = form.get('challenge_id') ?? '';
    const returnTo = safeReturnTo(form.get('return_to'));
    if (returnTo === undefined) return this.errorPage(400, 'The return address is not a path on this site.', '/');
    if (!sameOriginRequest(ctx)) {
      this.state.event(ctx, 'refused', undefined, { reason: 'cross-site-form' });
      return this.errorPage(403, 'This form was sent from another site and was refused.', returnTo);
    }
    const csrf = form.get('csrf') ?? '';
    if (challengeId === '' || !sameString(csrf, csrfToken(this.state, challengeId, this.state.bindingOf(ctx)))) {
      this.state.event(ctx, 'refused', undefined, { reason: 'csrf' });
      return this.errorPage(403, 'This form expired or was not sent from this page. Reload the page and try again.', returnTo);
    }
    const code = (form.get('code') ?? '').trim();
    const answer = /^\d{6}$/.test(code) ? await this.verifyOtp(ctx, JSON.stringify({ challenge_id: challengeId, code })) : await this.recovery.verify(ctx, challengeId, code);
    if (answer.status === 200) {
      const cookie = answer.headers['set-cookie'];
      return { status: 303, headers: { location: returnTo, 'cache-control': 'no-store', 'content-type': 'text/plain; charset=utf-8', ...(cookie ? { 'set-cookie': cookie } : {}) }, body: 'Verified.\n' };
    }
    const retry = answer.headers['retry-after'];
    return this.verifyPage(ctx, challengeId, returnTo, detailOf(answer), answer.status, retry ? { 'retry-after': String(retry) } : {});
  }

  // ---- JSON routes for the page's script ---------------------------------------------------------------------

  private async jsonRoute(ctx: RequestContext, route: string): Promise<StandardResponse> {
    if (ctx.method !== 'POST') return verifyProblem(405, PROBLEM.badRequest, 'Method Not Allowed', 'POST a JSON body.', { allow: 'POST' });
    if (mediaType(ctx.req) !== 'application/json') return unsupportedMediaTypeResponse(['application/json'], PROBLEM.badRequest);
    if (!sameOriginRequest(ctx)) {
      this.state.event(ctx, 'refused', undefined, { reason: 'cross-site' });
      return verifyProblem(403, PROBLEM.badRequest, 'Cross-site request refused', 'This endpoint answers requests from this site only.');
    }
    let input: Record<string, unknown>;
    try {
      const parsed = JSON.parse(await readBody(ctx.req, MAX_JSON_BODY)) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      input = parsed as Record<string, unknown>;
    } catch (error) {
      if (error instanceof TooLarge) return payloadTooLargeResponse(`The body must be JSON under ${MAX_JSON_BODY} bytes.`, PROBLEM.badRequest);
      return verifyProblem(400, PROBLEM.badRequest, 'Bad Request', 'Send a JSON object.');
    }
    if (route === '/recovery') return this.recovery.verify(ctx, input.challenge_id, input.recovery_code);
    const rp = relyingParty(this.state, ctx);
    if (!rp) return passkeysUnavailable();
    const passkeys = this.passkeyModule();
    if (route === '/webauthn/authenticate/options') return passkeys.verifier.options(ctx, input.challenge_id);
    if (route === '/webauthn/authenticate') return passkeys.verifier.verify(ctx, input.challenge_id, input.response);
    const binding = this.state.bindingOf(ctx);
    const userId = openRegistrationTicket(this.state, input.ticket, binding);
    if (userId === undefined) return verifyProblem(403, PROBLEM.invalidChallenge, 'Invalid ticket', 'This link to add a passkey expired or belongs to another session.');
    if (route === '/webauthn/register/options') return json(200, await passkeys.module.registrationOptions(this.state, rp, userId, binding));
    try {
      await passkeys.module.verifyRegistration(this.state, rp, userId, binding, input.response);
    } catch (error) {
      if (error instanceof passkeys.module.WebAuthnError) return verifyProblem(400, PROBLEM.badRequest, 'Passkey not registered', error.message);
      throw error;
    }
    log.info(`step-up passkey registered user=${userId}`);
    const { store, box } = this.state.resources();
    // The first factor of an account comes with recovery codes, shown this once.
    const codes = (await store.recoveryCodesLeft(userId)) === 0 ? await issueRecoveryCodes(store, box, userId) : undefined;
    return json(200, { registered: true, ...(codes ? { recovery_codes: codes } : {}) });
  }

  private passkeyModule(): NonNullable<VerificationPage['passkeys']> {
    if (!this.passkeys) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the WebAuthn library takes about a second to load: only on the first passkey request
      const module = require('./webauthn.js') as PasskeyModule;
      this.passkeys = { module, verifier: new module.PasskeyVerifier(this.state) };
    }
    return this.passkeys;
  }

  private asset(route: string): StandardResponse {
    if (!this.assets) {
      this.assets = new Map();
      for (const [path, a] of Object.entries(ASSETS)) this.assets.set(path, readFileSync(join(ASSETS_DIR, a.file), 'utf8'));
    }
    return { status: 200, headers: { 'content-type': ASSETS[route]!.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' }, body: this.assets.get(route)! };
  }
}

const JSON_ROUTES = new Set(['/webauthn/authenticate/options', '/webauthn/authenticate', '/webauthn/register/options', '/webauthn/register', '/recovery']);

/** The form's CSRF token: a MAC of the challenge and the session binding (a cross-site page knows neither). */
export function csrfToken(state: StepUpState, challengeId: string, binding: string): string {
  return state.signer.bindingHash(`sg-csrf.v1\n${challengeId}\n${binding}`);
}

/**
 * A browser request from this site. `Sec-Fetch-Site` (set by the browser, not by page script), when sent, must be
 * `same-origin`, and then decides: the page's `Referrer-Policy: no-referrer` makes Chromium send `Origin: null` on
 * its own form posts. Without it, `Origin`, when sent, must name the Host the request came to. Clients that send
 * neither (not a browser) pass: they carry no ambient cookies a cross-site page could abuse, and the form still
 * needs its CSRF token.
 */
export function sameOriginRequest(ctx: RequestContext): boolean {
  const site = ctx.req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin';
  const origin = ctx.req.headers.origin;
  if (typeof origin !== 'string') return true;
  const host = requestHost(ctx);
  try {
    return host !== undefined && new URL(origin).host === host.host;
  } catch {
    return false;
  }
}

function mediaType(req: IncomingMessage): string {
  const type = req.headers['content-type'];
  return typeof type === 'string' ? (type.split(';')[0] ?? '').trim().toLowerCase() : '';
}

function detailOf(response: StandardResponse): string {
  try {
    const body = JSON.parse(response.body) as { detail?: unknown };
    if (typeof body.detail === 'string') return body.detail;
  } catch {
    // not a problem body
  }
  return 'The verification failed.';
}

class TooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new TooLarge());
        // Stop buffering but keep reading, so the 413 reaches the client instead of a reset.
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---- markup -------------------------------------------------------------------------------------------------

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function html(status: number, body: string, headers: Record<string, string> = {}): StandardResponse {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS, ...headers }, body };
}

function page(title: string, content: string, data: Record<string, string> = {}, path?: string): string {
  const base = path ?? '';
  const attrs = Object.entries(data)
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join('');
  const assets = path === undefined ? '' : `\n<link rel="stylesheet" href="${escapeHtml(base)}/assets/verify.css">\n<script src="${escapeHtml(base)}/assets/verify.js" defer></script>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>${assets}
</head>
<body>
<main class="sg-card"${attrs}>
<h1>${escapeHtml(title)}</h1>
${content}
</main>
</body>
</html>
`;
}

function verifyBody(o: { path: string; challengeId: string; returnTo: string; csrf: string; methods: readonly Method[]; error: string | undefined }): string {
  const parts: string[] = ['<p class="sg-lead">This action needs an extra check that it is really you.</p>'];
  parts.push(`<p class="sg-error" id="sg-error" role="alert"${o.error ? '' : ' hidden'}>${o.error ? escapeHtml(o.error) : ''}</p>`);
  if (o.methods.includes('webauthn')) {
    parts.push(`<section class="sg-passkey" id="sg-passkey" hidden>
<button type="button" class="sg-primary" id="sg-passkey-button">Use a passkey</button>
<p class="sg-hint">Your device asks for your fingerprint, face, PIN or security key.</p>
</section>`);
  }
  const codeMethods = o.methods.filter((m) => m === 'totp' || m === 'recovery_code');
  if (codeMethods.length > 0) {
    const label = codeMethods.includes('totp')
      ? codeMethods.includes('recovery_code')
        ? 'Code from your authenticator app, or a recovery code'
        : 'Code from your authenticator app'
      : 'Recovery code';
    parts.push(`<form method="post" action="${escapeHtml(o.path)}" class="sg-code-form">
<input type="hidden" name="challenge_id" value="${escapeHtml(o.challengeId)}">
<input type="hidden" name="csrf" value="${escapeHtml(o.csrf)}">
<input type="hidden" name="return_to" value="${escapeHtml(o.returnTo)}">
<label for="sg-code">${label}</label>
<input id="sg-code" name="code" type="text" inputmode="text" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required maxlength="16" aria-describedby="sg-error"${o.methods.includes('webauthn') ? '' : ' autofocus'}>
<button type="submit" class="${o.methods.includes('webauthn') ? 'sg-secondary' : 'sg-primary'}">Verify</button>
</form>`);
  } else {
    parts.push('<noscript><p class="sg-error">This action needs a passkey, which needs JavaScript. Enable JavaScript and reload.</p></noscript>');
  }
  parts.push(`<p class="sg-cancel"><a href="${escapeHtml(o.returnTo)}">Cancel</a></p>`);
  return page('Confirm it’s you', parts.join('\n'), { mode: 'verify', base: o.path, challenge: o.challengeId, 'return-to': o.returnTo }, o.path);
}

function registerBody(path: string, ticket: string, returnTo: string): string {
  const content = `<p class="sg-lead">Add a passkey to confirm sensitive actions with your fingerprint, face, PIN or security key.</p>
<p class="sg-error" id="sg-error" role="alert" hidden></p>
<noscript><p class="sg-error">Adding a passkey needs JavaScript. Enable JavaScript and reload.</p></noscript>
<section class="sg-passkey" id="sg-passkey" hidden>
<button type="button" class="sg-primary" id="sg-register-button">Add a passkey</button>
</section>
<section id="sg-done" hidden>
<p class="sg-ok" role="status">Passkey added.</p>
<div id="sg-codes" hidden>
<h2>Recovery codes</h2>
<p>Keep these somewhere safe. Each works once if you lose your devices. They are shown only now.</p>
<ol class="sg-code-list" id="sg-code-list"></ol>
</div>
<p><a class="sg-primary" id="sg-continue" href="${escapeHtml(returnTo)}">Continue</a></p>
</section>
<p class="sg-cancel"><a href="${escapeHtml(returnTo)}">Cancel</a></p>`;
  return page('Add a passkey', content, { mode: 'register', base: path, ticket, 'return-to': returnTo }, path);
}
