import type { IncomingMessage } from 'node:http';
import type { IdentifyFunction } from '../config.js';
import { warnOnce, errorMessage } from '../log.js';

/** The adaptive step-up device cookie (src/risk/device.ts); not part of the session. */
export const DEVICE_COOKIE = 'sg_device';

/**
 * Who is making the request. Read at the sink — after the app's own authentication middleware ran —
 * from `identify(req)` in the config file, else from the common conventions below.
 */
export interface Identity {
  readonly userId: string;
  readonly sessionId: string | undefined;
}

type Loose = Record<string, unknown> | undefined;

function idOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (value && typeof value === 'object' && typeof (value as { toString?: unknown }).toString === 'function') {
    const s = String(value);
    // ObjectId and similar render as plain ids; plain objects render as "[object Object]".
    if (s !== '' && !s.startsWith('[object')) return s;
  }
  return undefined;
}

/** passport (`req.user`), express-jwt (`req.auth.sub`), express-oauth2-jwt-bearer (`req.auth.payload.sub`), express-session. */
export function conventionalIdentity(req: IncomingMessage): Identity | undefined {
  const r = req as unknown as Record<string, Loose>;
  const session = r.session;
  const sessionId = idOf((r as Record<string, unknown>).sessionID) ?? idOf(session?.id);
  const user = r.user;
  if (user) {
    const id = idOf(user.id) ?? idOf(user._id) ?? idOf(user.sub) ?? idOf(user.username) ?? idOf(user.email) ?? idOf(user);
    if (id) return { userId: id, sessionId };
  }
  const auth = r.auth;
  if (auth) {
    const id = idOf(auth.sub) ?? idOf((auth.payload as Loose)?.sub);
    if (id) return { userId: id, sessionId };
  }
  if (session) {
    const id = idOf(session.userId) ?? idOf((session.user as Loose)?.id) ?? idOf((session.passport as Loose)?.user);
    if (id) return { userId: id, sessionId };
  }
  return undefined;
}

export function identify(req: IncomingMessage, custom: IdentifyFunction | undefined): Identity | undefined {
  if (!custom) return conventionalIdentity(req);
  try {
    const result = custom(req);
    if (typeof result === 'string') return result ? { userId: result, sessionId: undefined } : undefined;
    if (result && typeof result === 'object' && typeof result.userId === 'string' && result.userId !== '') {
      return { userId: result.userId, sessionId: typeof result.sessionId === 'string' ? result.sessionId : undefined };
    }
    return undefined;
  } catch (error) {
    warnOnce('identify', `identify(req) from the config file threw: ${errorMessage(error)}; treating the request as anonymous`);
    return undefined;
  }
}

/**
 * The credential that makes this browser/client "this session": the Authorization header, else the
 * session cookie, else the whole cookie header. Challenges and grants carry only an HMAC of it, so a
 * code verified from another session — or a grant replayed by another user — does not match.
 */
export function sessionMaterial(req: IncomingMessage, sessionCookies: readonly string[], grantCookiePrefix: string): string {
  const authorization = req.headers.authorization;
  if (typeof authorization === 'string' && authorization !== '') return `authorization:${authorization}`;
  const cookieHeader = req.headers.cookie;
  if (typeof cookieHeader !== 'string' || cookieHeader === '') return '';
  const cookies = new Map<string, string>();
  const others: string[] = [];
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (name.startsWith(grantCookiePrefix) || name === DEVICE_COOKIE) continue; // our own grants and device cookie are not the session
    const value = part.slice(eq + 1).trim();
    cookies.set(name, value);
    others.push(`${name}=${value}`);
  }
  for (const name of sessionCookies) {
    const value = cookies.get(name);
    if (value) return `cookie:${name}=${value}`;
  }
  return others.length > 0 ? `cookies:${others.sort().join(';')}` : '';
}
