import type { RequestContext } from './request-context.js';

/**
 * The client address every address-based signal and lockout uses. Here: the socket's peer address (what the
 * `new_client_address` condition has always used). Trusted proxies (`STEPGUARD_TRUSTED_PROXIES`) are handled
 * in this one place by another change; callers never read headers themselves.
 */
export function clientAddress(ctx: RequestContext): string {
  return ctx.clientAddress ?? '';
}
