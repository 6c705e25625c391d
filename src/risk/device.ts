import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { DEVICE_COOKIE } from '../stepup/identity.js';
import { sameString } from '../stepup/state.js';

/**
 * The device cookie: `sg_device=<device id>.<mac>`, mac = HMAC(binding key, "device\0<user>\0<id>"), so a
 * cookie is valid only for the user it was issued to and cannot be forged or moved to another account.
 * Set after a successful step-up verification; HttpOnly, SameSite=Lax, Secure over HTTPS.
 */
export const DEVICE_MAX_AGE_SECONDS = 180 * 86_400;
export const MAX_DEVICES_PER_USER = 10;

export type Mac = (material: string) => string;

export function deviceIdFrom(req: IncomingMessage, user: string, mac: Mac): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return undefined;
  const prefix = `${DEVICE_COOKIE}=`;
  for (const part of header.split(';')) {
    const p = part.trim();
    if (!p.startsWith(prefix)) continue;
    const value = p.slice(prefix.length);
    const dot = value.indexOf('.');
    if (dot <= 0 || value.length > 200) continue;
    const id = value.slice(0, dot);
    if (sameString(value.slice(dot + 1), mac(`device\0${user}\0${id}`))) return id;
  }
  return undefined;
}

export function newDeviceId(): string {
  return randomBytes(16).toString('base64url');
}

export function deviceCookie(user: string, id: string, mac: Mac, secure: boolean): string {
  return `${DEVICE_COOKIE}=${id}.${mac(`device\0${user}\0${id}`)}; Path=/; Max-Age=${DEVICE_MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}
