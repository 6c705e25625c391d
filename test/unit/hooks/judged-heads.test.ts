/**
 * judgedHeadOf (src/hook-kit.ts): the head last judged on a request's route, asked on every HTML response. The route
 * is read from the request (Express's `req.route`, `req.baseUrl`) once per URL the request arrived with; a later
 * response to the same URL and method finds the route's head without reading them, as long as that head is the
 * route's current one. A URL with a query, another method, or a head judged anew reads the route again.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { judgedHeadOf, rememberJudgedHead } from '../../../src/hook-kit.js';
import { detectorSlots, getRuntime, setRuntime } from '../../../src/runtime.js';
import { DEFAULT_CONFIG, type Config } from '../../../src/config.js';
import { RuleEngine } from '../../../src/rules/engine.js';
import { loadRules } from '../../../src/rules/load.js';
import { DETECTOR_IDS } from '../../../src/detectors/index.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { RequestContext } from '../../../src/context/request-context.js';

const shipped = loadRules([], DETECTOR_IDS).ruleSet;
const previous = getRuntime();
let routeReads = 0;

beforeEach(() => {
  // A new engine: the heads of the one before are forgotten.
  const engine = new RuleEngine(shipped, 'block');
  const config: Config = Object.freeze({ ...DEFAULT_CONFIG, logFindings: false });
  setRuntime({ config, engine, detectorsByKind: detectorSlots(engine, config), telemetry: new Telemetry({ enabled: false, serviceName: 't' }), stepUp: undefined, endpoints: undefined });
  routeReads = 0;
});
afterAll(() => setRuntime(previous));

/** A request as Express leaves it once routed: the route template on `req.route`, its mount point on `req.baseUrl`. */
function routed(method: string, url: string, template = '/items/:id'): RequestContext {
  const req = { method, url, headers: {}, socket: {} } as unknown as IncomingMessage;
  Object.defineProperty(req, 'route', { get: () => (routeReads++, { path: template }) });
  Object.defineProperty(req, 'baseUrl', { get: () => '/shop' });
  return new RequestContext(req, undefined, DEFAULT_CONFIG);
}

describe('the head of a route, found by the URL a request arrived with', () => {
  it('reads the route once per URL; later responses to it find the head without reading the request', () => {
    expect(judgedHeadOf(routed('GET', '/shop/items/1'))).toBeUndefined();
    rememberJudgedHead(routed('GET', '/shop/items/1'), 'default-src self', 'nosniff', undefined, false);
    const readsToRemember = routeReads;
    const head = judgedHeadOf(routed('GET', '/shop/items/1'));
    expect(head).toMatchObject({ csp: 'default-src self', nosniff: 'nosniff', https: false });
    expect(routeReads).toBe(readsToRemember + 1);
    for (let i = 0; i < 5; i++) expect(judgedHeadOf(routed('GET', '/shop/items/1'))).toBe(head);
    expect(routeReads).toBe(readsToRemember + 1);
    // Another URL of the same route: its route is read once, and it finds the same head.
    expect(judgedHeadOf(routed('GET', '/shop/items/2'))).toBe(head);
    expect(judgedHeadOf(routed('GET', '/shop/items/2'))).toBe(head);
    expect(routeReads).toBe(readsToRemember + 2);
  });

  it('reads the route for a URL with a query, and for another method', () => {
    rememberJudgedHead(routed('GET', '/shop/items/1'), 'a', 'b', 'c', true);
    const head = judgedHeadOf(routed('GET', '/shop/items/1'));
    const before = routeReads;
    expect(judgedHeadOf(routed('GET', '/shop/items/1?page=2'))).toBe(head);
    expect(judgedHeadOf(routed('GET', '/shop/items/1?page=2'))).toBe(head);
    expect(routeReads).toBe(before + 2);
    // POST to the same URL is served by another route here, which has no head yet.
    expect(judgedHeadOf(routed('POST', '/shop/items/1', '/items/:id/edit'))).toBeUndefined();
    expect(judgedHeadOf(routed('GET', '/shop/items/1'))).toBe(head);
    expect(routeReads).toBe(before + 3);
  });

  it('a head judged anew on the route is found at once, not the one it replaced', () => {
    rememberJudgedHead(routed('GET', '/shop/items/1'), 'strong', 'nosniff', undefined, false);
    expect(judgedHeadOf(routed('GET', '/shop/items/1'))?.csp).toBe('strong');
    rememberJudgedHead(routed('GET', '/shop/items/9'), undefined, undefined, undefined, false);
    expect(judgedHeadOf(routed('GET', '/shop/items/1'))?.csp).toBeUndefined();
  });

  it('a URL does not keep the head of a route the heads forgot (past 10,000 routes they start afresh)', () => {
    rememberJudgedHead(routed('GET', '/shop/items/1'), 'remembered', undefined, undefined, false);
    expect(judgedHeadOf(routed('GET', '/shop/items/1'))?.csp).toBe('remembered');
    for (let i = 0; i < 10_000; i++) rememberJudgedHead(routed('GET', `/r/${i}`, `/r/${i}`), 'other', undefined, undefined, false);
    expect(judgedHeadOf(routed('GET', '/shop/items/1'))).toBeUndefined();
  });

  it('keys the heads by route: the URL only stands for the route it was served by', () => {
    rememberJudgedHead(routed('GET', '/shop/items/1'), 'items', undefined, undefined, false);
    rememberJudgedHead(routed('GET', '/shop/cart', '/cart'), 'cart', undefined, undefined, false);
    expect(judgedHeadOf(routed('GET', '/shop/items/1'))?.csp).toBe('items');
    expect(judgedHeadOf(routed('GET', '/shop/cart', '/cart'))?.csp).toBe('cart');
    expect(judgedHeadOf(routed('GET', '/shop/items/1'))?.csp).toBe('items');
    expect(judgedHeadOf(routed('GET', '/shop/cart', '/cart'))?.csp).toBe('cart');
  });
});
