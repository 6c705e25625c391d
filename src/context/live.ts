import type { RequestContext } from './request-context.js';

/**
 * The requests being served right now, for the one case where the context a sink call runs in is known to be
 * wrong: a call in a request that was already answered (src/context/stale.ts). Such a call often comes from a
 * library that queued a callback and runs it from whatever context started its worker; the request that
 * queued it is then usually still waiting for it. Its input is searched for in the call's text, and the call is
 * judged as that request's too (src/inspect.ts), so an injection it carries is refused and answered there.
 *
 * Cost per request: one array slot. Finished requests are dropped in batches — when the list has doubled
 * since the last sweep — so it holds at most about twice the requests in flight, or 64 (answered requests'
 * objects stay referenced until the next sweep). A response destroyed before it finished counts as done.
 */

const MIN_SWEEP = 64;
let live: RequestContext[] = [];
let sweepAt = MIN_SWEEP;

export function trackLive(ctx: RequestContext): void {
  live.push(ctx);
  if (live.length >= sweepAt) sweep();
}

/** Requests still being answered, other than `except`. */
export function liveRequestsOtherThan(except: RequestContext): RequestContext[] {
  sweep();
  return live.filter((ctx) => ctx !== except);
}

function sweep(): void {
  live = live.filter((ctx) => !isDone(ctx));
  sweepAt = Math.max(MIN_SWEEP, live.length * 2);
}

function isDone(ctx: RequestContext): boolean {
  const res = ctx.res;
  return res === undefined || res.writableFinished === true || res.destroyed === true;
}

/** Tests: how many requests are held (answered ones included until the next sweep). */
export function trackedCount(): number {
  return live.length;
}

/** Tests: forget every tracked request. */
export function resetLive(): void {
  live = [];
  sweepAt = MIN_SWEEP;
}
