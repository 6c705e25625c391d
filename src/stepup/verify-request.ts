/**
 * What a request to the JSON verification endpoint must look like before its body is read: `Content-Type:
 * application/json` (a cross-site HTML form can only send form encodings or text/plain without a CORS preflight,
 * so this alone stops form-based CSRF), and not a cross-site browser request (`Sec-Fetch-Site: cross-site`, or an
 * `Origin` that is not the request's own). Requests from non-browser clients carry neither header and pass.
 *
 * Kept apart from endpoint.ts so a route with its own CSRF protection (an HTML form on the same path) can skip it.
 */
import type { IncomingMessage } from 'node:http';
import { PROBLEM, unsupportedMediaTypeResponse, verifyProblem, type StandardResponse } from '../enforce/index.js';

export interface RefusedVerificationRequest {
  readonly response: StandardResponse;
  /** For telemetry: `content-type`, `cross-site`, `foreign-origin`. */
  readonly reason: string;
}

/** Undefined when the request may go on; else the 415 / 403 problem to answer. Header checks only, no body. */
export function checkJsonVerificationRequest(req: IncomingMessage): RefusedVerificationRequest | undefined {
  if (!isJson(req.headers['content-type'])) {
    return { reason: 'content-type', response: unsupportedMediaTypeResponse(['application/json'], PROBLEM.badRequest) };
  }
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site.trim().toLowerCase() === 'cross-site') return { reason: 'cross-site', response: crossSite() };
  const origin = req.headers.origin;
  if (typeof origin === 'string' && !isOwnOrigin(origin, req)) return { reason: 'foreign-origin', response: crossSite() };
  return undefined;
}

function crossSite(): StandardResponse {
  return verifyProblem(403, PROBLEM.badRequest, 'Cross-site request refused', 'Verification requests must come from this site itself.');
}

/** `application/json`, with parameters (`; charset=utf-8`) allowed; nothing else (not `text/plain`, not `+json`). */
function isJson(value: string | undefined): boolean {
  if (typeof value !== 'string') return false;
  const semi = value.indexOf(';');
  return (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

/**
 * The Origin names this request's own host (`Host`, port included). The scheme must be https when the connection
 * itself is TLS; on a plain connection either scheme is accepted, because TLS is often terminated by a proxy in
 * front of the app (the host still has to match, which is what keeps other sites out). `null` (opaque origins:
 * sandboxed frames, some redirects) is never our origin.
 */
function isOwnOrigin(origin: string, req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (typeof host !== 'string' || host === '' || origin === 'null') return false;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  const tls = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  if (parsed.protocol !== 'https:' && (tls || parsed.protocol !== 'http:')) return false;
  // Compare as URL hosts so default ports and letter case are normalised the same way on both sides.
  let own: URL;
  try {
    own = new URL(`${parsed.protocol}//${host}`);
  } catch {
    return false;
  }
  return own.host === parsed.host;
}
