import type { RequestContext } from './request-context.js';

/**
 * The requests being served right now, for the calls whose context may be the wrong one: a call in a request
 * that was already answered (src/context/stale.ts), or a call whose text none of its own request's input
 * explains. Such a call often comes from a worker that one request started and that runs the callbacks other
 * requests queued, in the context of the request that started it; the request that queued the callback is then
 * usually still waiting for it. Its input is searched for in the call's text, and the call is judged as that
 * request's too (src/inspect.ts), so an injection it carries is refused and answered there.
 *
 * Cost per request: one array slot and a look at the oldest one or two. Requests mostly finish in the order they
 * arrived, so each new request drops the answered ones at the front of the list; the rest (behind a slow request)
 * go in batches, when the list has doubled since the last sweep. So the list holds about the requests in flight,
 * and at most about twice that, or 64. Before, up to 64 answered requests (their request and response objects,
 * which the app no longer referenced) stayed alive until the next sweep, through the garbage collections in between.
 * A response destroyed before it finished counts as done, and so does one the app has called `end` on (its answer
 * is written; what it still runs was queued by itself), which is read from the request context, not the response.
 */

const MIN_SWEEP = 64;
/** live[head..] are the tracked requests; the slots before `head` were dropped (emptied, so nothing stays alive). */
let live: (RequestContext | undefined)[] = [];
let head = 0;
let sweepAt = MIN_SWEEP;

/** Answered requests dropped from the front per new request: enough to keep up, never a walk of the list. */
const FRONT_DROPS = 2;
/** Emptied front slots are removed in one splice per this many, not one `shift` (a runtime call) per request. */
const COMPACT_AT = 32;

export function trackLive(ctx: RequestContext): void {
  for (let k = 0; k < FRONT_DROPS && head < live.length && isDone(live[head]!); k++) live[head++] = undefined;
  if (head >= COMPACT_AT) {
    live.splice(0, head);
    head = 0;
  }
  live.push(ctx);
  if (live.length - head >= sweepAt) sweep();
}

/** `end` was called on `res` outside its own request's context: the request it answers, if in flight, is answered. */
export function noteEnded(res: object): void {
  const list = live;
  for (let i = head; i < list.length; i++) {
    const ctx = list[i];
    if (ctx !== undefined && ctx.res === res) {
      ctx.responseEnded = true;
      return;
    }
  }
}

/** Whether any request but `except` may still be in flight (answered ones count until the next sweep): no allocation. */
export function othersMayBeLive(except: RequestContext): boolean {
  const count = live.length - head;
  return count > 1 || (count === 1 && live[head] !== except);
}

/**
 * `visit` on each request still being answered other than `except`, until one returns a value; allocates
 * nothing (the sink hot path calls it while other requests are in flight).
 */
export function firstOfOtherLive<T>(except: RequestContext, visit: (ctx: RequestContext) => T | undefined): T | undefined {
  const list = live;
  for (let i = head; i < list.length; i++) {
    const ctx = list[i]!;
    if (ctx === except || isDone(ctx)) continue;
    const found = visit(ctx);
    if (found !== undefined) return found;
  }
  return undefined;
}

function sweep(): void {
  const kept: RequestContext[] = [];
  for (let i = head; i < live.length; i++) if (!isDone(live[i]!)) kept.push(live[i]!);
  live = kept;
  head = 0;
  sweepAt = Math.max(MIN_SWEEP, live.length * 2);
}

function isDone(ctx: RequestContext): boolean {
  if (ctx.responseEnded) return true;
  const res = ctx.res;
  return res === undefined || res.writableFinished === true || res.destroyed === true;
}

/** Tests: how many requests are held (answered ones included until the next sweep). */
export function trackedCount(): number {
  return live.length - head;
}

/** Tests: forget every tracked request. */
export function resetLive(): void {
  live = [];
  head = 0;
  sweepAt = MIN_SWEEP;
}
