import { beforeEach, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { firstOfOtherLive, othersMayBeLive, resetLive, trackedCount, trackLive } from '../../../src/context/live.js';
import { RequestContext } from '../../../src/context/request-context.js';
import { DEFAULT_CONFIG } from '../../../src/config.js';

const context = (state: { writableFinished?: boolean; destroyed?: boolean } | undefined): RequestContext => {
  const req = { method: 'GET', url: '/', headers: {}, socket: {} } as unknown as IncomingMessage;
  const res = state === undefined ? undefined : ({ writableFinished: false, destroyed: false, ...state } as unknown as ServerResponse);
  return new RequestContext(req, res, DEFAULT_CONFIG);
};

beforeEach(() => resetLive());

/** Every request firstOfOtherLive visits, in order. */
function liveRequestsOtherThan(except: RequestContext): RequestContext[] {
  const seen: RequestContext[] = [];
  firstOfOtherLive(except, (ctx) => void seen.push(ctx));
  return seen;
}

describe('requests being served', () => {
  it('lists the requests not yet answered, other than the one asking', () => {
    const asking = context({});
    const waiting = context({});
    const answered = context({ writableFinished: true });
    const hungUp = context({ destroyed: true });
    const noResponse = context(undefined);
    for (const ctx of [asking, waiting, answered, hungUp, noResponse]) trackLive(ctx);
    expect(liveRequestsOtherThan(asking)).toEqual([waiting]);
  });

  it('holds about twice the requests in flight: answered ones are swept as the list grows', () => {
    const inFlight = Array.from({ length: 10 }, () => context({}));
    for (const ctx of inFlight) trackLive(ctx);
    for (let k = 0; k < 100_000; k++) trackLive(context({ writableFinished: true }));
    expect(trackedCount()).toBeLessThanOrEqual(64);
    expect(liveRequestsOtherThan(context({}))).toEqual(inFlight);
  });

  it('drops answered requests from the front as new ones arrive, so it holds about the requests in flight', () => {
    // Ten connections, each sending its next request once the previous one was answered (keep-alive clients).
    const responses: { writableFinished: boolean }[] = [];
    const track = (): void => {
      const ctx = context({});
      responses.push(ctx.res as unknown as { writableFinished: boolean });
      trackLive(ctx);
    };
    for (let c = 0; c < 10; c++) track();
    let maxHeld = 0;
    for (let k = 0; k < 1_000; k++) {
      responses[k]!.writableFinished = true; // the oldest request is answered, its connection sends the next
      track();
      maxHeld = Math.max(maxHeld, trackedCount());
    }
    expect(maxHeld).toBeLessThanOrEqual(11);
    expect(liveRequestsOtherThan(context({}))).toHaveLength(10);
  });

  it('a request whose app ended its response is answered without a read of the response', () => {
    let reads = 0;
    const ended = context({});
    Object.defineProperty(ended.res, 'writableFinished', { get: () => (reads++, false) });
    Object.defineProperty(ended.res, 'destroyed', { get: () => (reads++, false) });
    ended.responseEnded = true; // what hooks/html-response.ts sets at the app's `end`
    const waiting = context({});
    trackLive(ended);
    trackLive(waiting);
    trackLive(context({}));
    // Compared by identity (a deep comparison would read the response's getters itself).
    const live = liveRequestsOtherThan(context({}));
    expect([live.includes(ended), live.includes(waiting), reads]).toEqual([false, true, 0]);
    // Not ended: read from the response, as before.
    ended.responseEnded = false;
    resetLive();
    trackLive(ended);
    const again = liveRequestsOtherThan(context({}));
    expect([again.length, again[0] === ended, reads]).toEqual([1, true, 2]);
  });

  it('still drops answered requests that queue behind a slow one, in a sweep', () => {
    const slow = context({});
    trackLive(slow);
    for (let k = 0; k < 1_000; k++) trackLive(context({ writableFinished: true }));
    expect(trackedCount()).toBeLessThanOrEqual(64);
    expect(liveRequestsOtherThan(context({}))).toEqual([slow]);
  });

  it('stops at the first request that answers, and says cheaply whether anyone else is in flight', () => {
    const asking = context({});
    expect(othersMayBeLive(asking)).toBe(false);
    trackLive(asking);
    expect(othersMayBeLive(asking)).toBe(false);
    const [first, second, third] = [context({}), context({}), context({})];
    for (const ctx of [first, second, third]) trackLive(ctx);
    expect(othersMayBeLive(asking)).toBe(true);
    const visited: RequestContext[] = [];
    const found = firstOfOtherLive(asking, (ctx) => (visited.push(ctx), ctx === second ? 'second' : undefined));
    expect(found).toBe('second');
    expect(visited).toEqual([first, second]);
  });
});

describe('a request is finished once its answer has left', () => {
  it('is not, without a read of its response, while the response hook has seen no end of it', () => {
    let reads = 0;
    const ctx = context({});
    Object.defineProperty(ctx.res, 'writableFinished', { get: () => (reads++, true) });
    ctx.endIsNoted = true; // what serveRequest sets when the response hook notes every end
    expect([ctx.finished, reads]).toEqual([false, 0]);
    ctx.responseEnded = true;
    expect([ctx.finished, reads]).toEqual([true, 1]);
    // Without the response hook: read from the response, ended or not.
    const unnoted = context({});
    Object.defineProperty(unnoted.res, 'writableFinished', { get: () => (reads++, true) });
    expect([unnoted.finished, reads]).toEqual([true, 2]);
  });
});
