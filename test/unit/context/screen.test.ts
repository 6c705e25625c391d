/**
 * A request's values screened against the statement before they are gathered (RequestContext.inputsFor with the
 * judging detectors' `mayFind`): when none can take part in a finding, nothing is gathered and the detector is not
 * called. The judgement must be the one gathering gives, whatever the request holds.
 */
import { describe, expect, it, vi } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { RequestContext } from '../../../src/context/request-context.js';
import { DEFAULT_CONFIG } from '../../../src/config.js';
import { judge, detectorsUsedBy, type Judgement } from '../../../src/judge/judge.js';
import { DETECTORS, DETECTOR_IDS } from '../../../src/detectors/index.js';
import { loadRules } from '../../../src/rules/load.js';
import { RuleEngine, type RequestFacts } from '../../../src/rules/engine.js';
import type { AnyDetector } from '../../../src/detectors/types.js';
import type { SqlEvent } from '../../../src/events.js';

const engine = new RuleEngine(loadRules([], DETECTOR_IDS).ruleSet, 'block');
const detectors = detectorsUsedBy(engine, DETECTORS);
const FACTS: RequestFacts = { method: 'GET', urlPath: '/', route: undefined, earlierFindings: [], isNewClientAddress: () => undefined };
const sql = (text: string): SqlEvent => ({ kind: 'sql', op: 'pg.query', dialect: 'postgres', system: 'postgresql', sql: text });
const PARAMETERISED = 'SELECT id, name FROM users WHERE name = $1';

type Over = Record<string, unknown>;
const request = (over: Over) => ({ method: 'GET', url: '/param?name=alice', headers: { host: '127.0.0.1:3000', connection: 'keep-alive' }, socket: {}, ...over }) as unknown as IncomingMessage;
const context = (over: Over = {}, limits = DEFAULT_CONFIG) => new RequestContext(request(over), undefined, limits);

/** Judges as inspect does: the inputs for the sink text, screened when the judge offers a screen (or not, `screened: false`). */
function judged(ctx: RequestContext, event: SqlEvent, screened = true, using: readonly AnyDetector[] = detectors): Judgement & { limit: unknown } {
  let limit: unknown;
  const judgement = judge({
    event,
    detectors: using,
    inputs: (screen) => {
      const { inputs, limitExceeded } = ctx.inputsFor(event.sql, screened ? screen : undefined);
      limit = limitExceeded;
      return inputs;
    },
    engine,
    facts: () => FACTS,
  });
  return { ...judgement, limit };
}

/** What a finding says, without the objects it shares (tokens, the input's class). */
const summary = (j: Judgement & { limit: unknown }) => ({
  findings: j.findings.map((f) => [f.detector, f.kind, f.reason, f.start, f.end, f.input?.value, f.input?.path]),
  action: j.decision.action,
  limit: j.limit,
});

/** The SQL detector, with its `detect` counted. */
function countedSqlDetector(): { detectors: AnyDetector[]; detect: ReturnType<typeof vi.fn> } {
  const real = detectors.find((d) => d.id === 'sql-injection')!;
  const detect = vi.fn((event: Parameters<AnyDetector['detect']>[0], inputs: Parameters<AnyDetector['detect']>[1]) => real.detect(event, inputs));
  return { detectors: detectors.map((d) => (d === real ? { ...real, mayFind: real.mayFind!, detect } : d)), detect };
}

describe('a parameterised statement that holds none of the request', () => {
  it('is judged clean without gathering the request and without calling the detector', () => {
    const ctx = context({ query: { name: 'alice' } });
    const { detectors: counted, detect } = countedSqlDetector();
    const result = judged(ctx, sql(PARAMETERISED), true, counted);
    expect(result.findings).toEqual([]);
    expect(result.decision.action).toBe('monitor');
    expect(detect).not.toHaveBeenCalled();
    expect(ctx.screenWalks).toBe(1);
    // Nothing was kept: the inputs are gathered only now, when asked.
    expect(ctx.inputs().map((i) => i.value)).toEqual(expect.arrayContaining(['name=alice', 'name', 'alice', 'param', '127.0.0.1:3000', 'keep-alive']));
  });

  it('answers "does some value of the request occur in the text" from the same walk, as gathering would', () => {
    // `name` (the parameter's key) occurs in the statement: the call is this request's own.
    const withKey = context({ query: { name: 'alice' } });
    judged(withKey, sql(PARAMETERISED));
    expect(withKey.someInputOccursIn(PARAMETERISED)).toBe(true);
    expect(context({ query: { name: 'alice' } }).someInputOccursIn(PARAMETERISED)).toBe(true);
    const none = context({ url: '/p?who=zed', query: { who: 'zed' } });
    const text = 'SELECT 1 FROM t WHERE a = $1';
    judged(none, sql(text));
    expect(none.screenWalks).toBe(1);
    expect(none.someInputOccursIn(text)).toBe(false);
    expect(context({ url: '/p?who=zed', query: { who: 'zed' } }).someInputOccursIn(text)).toBe(false);
  });

  it('the request\'s next statement gathers once, and every one after reads that list', () => {
    const ctx = context({ query: { name: 'alice' } });
    judged(ctx, sql(PARAMETERISED));
    const second = judged(ctx, sql("SELECT * FROM users WHERE name = 'alice' OR 1=1"));
    expect(second.findings.map((f) => f.input?.value)).toContain('alice');
    judged(ctx, sql('SELECT 2'));
    expect(ctx.screenWalks).toBe(1);
    expect(ctx.inputsFor('SELECT 3', () => false).inputs).toBe(ctx.inputs());
  });
});

describe('what passes the screen is judged as before', () => {
  it('a value in the statement: the detector gets the values the statement can hold, from the same walk', () => {
    const ctx = context({ url: "/s?q='%20OR%201=1--", query: { q: "' OR 1=1--" } });
    const event = sql("SELECT * FROM t WHERE a = '' OR 1=1--'");
    const { detectors: counted, detect } = countedSqlDetector();
    const result = judged(ctx, event, true, counted);
    expect(result.decision.action).toBe('block');
    expect(detect).toHaveBeenCalledTimes(1);
    // The raw query string and the header values cannot be in the statement: only the decoded value is judged,
    // with the path gathering gives it.
    expect(detect.mock.calls[0]![1].map((i: { value: string; path: string }) => [i.value, i.path])).toEqual([["' OR 1=1--", 'query.q']]);
    expect(ctx.screenWalks).toBe(1);
  });

  it('a value first seen as a parameter name the screen turned away: the findings come in the order gathering gives', () => {
    const over = { method: 'POST', url: '/s?users=a', query: { users: 'a' }, headers: { 'x-name': 'alice smith' }, body: { t: 'users' } };
    const text = "SELECT * FROM users WHERE name = 'alice smith'";
    const ctx = context(over);
    const screened = judged(ctx, sql(text));
    expect(screened.findings.map((f) => f.input?.path)).toEqual(['body.t', 'headers.x-name']);
    expect(summary(screened)).toEqual(summary(judged(context(over), sql(text), false)));
  });

  it('a key and a value of the same text: kept as the value, as gathering keeps it', () => {
    const text = "SELECT * FROM t WHERE a = 'x' OR 1=1 --'";
    const over = { url: '/s', query: { "x' OR 1=1 --": 'y' }, body: { note: "x' OR 1=1 --" }, method: 'POST' };
    const screened = judged(context(over), sql(text));
    expect(screened.findings.map((f) => [f.kind, f.input?.path, f.input?.isKey])).toEqual([['attack', 'body.note', undefined]]);
    expect(summary(screened)).toEqual(summary(judged(context(over), sql(text), false)));
  });

  it('a payload whose case the app changed', () => {
    const ctx = context({ url: '/s', query: { q: "x' or 1=1--" } });
    expect(judged(ctx, sql("SELECT * FROM T WHERE A = 'X' OR 1=1--'")).decision.action).toBe('block');
  });

  it('a value the app decoded (base64, percent-encoding) is screened in its decoded form', () => {
    const payload = "' OR '1'='1";
    const b64 = context({ url: `/s?c=${Buffer.from(payload).toString('base64')}`, query: {} });
    expect(judged(b64, sql(`SELECT * FROM t WHERE a = '${payload}'`)).decision.action).toBe('block');
    const pct = context({ url: '/s', headers: { 'x-q': encodeURIComponent(payload) } });
    expect(judged(pct, sql(`SELECT * FROM t WHERE a = '${payload}'`)).decision.action).toBe('block');
  });

  it('a request past the budget is gathered and searched as before, its limit reported the same way', () => {
    const padded = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`k${i}`, `v${i}`]));
    const payload = "' OR '1'='1";
    for (const body of [{ ...padded, q: payload }, { ...padded }]) {
      const text = `SELECT * FROM t WHERE a = '${payload}'`;
      const screened = judged(context({ method: 'POST', url: '/s', body }), sql(text));
      const gathered = judged(context({ method: 'POST', url: '/s', body }), sql(text), false);
      expect(summary(screened)).toEqual(summary(gathered));
    }
  });

  it('a raw body cut at the body cap is reported as before (the screen is not used)', () => {
    const limits = { ...DEFAULT_CONFIG, maxBodyBytes: 8 };
    const ctx = context({ method: 'POST', url: '/s', headers: { 'content-type': 'text/plain' } }, limits);
    ctx.captureBodyChunk(Buffer.from('0123456789abcdef'));
    const result = judged(ctx, sql('SELECT 1 FROM t WHERE a = $1'));
    expect(result.limit).toEqual({ reason: 'raw-body', path: 'body' });
    expect(ctx.screenWalks).toBe(0);
  });
});

/** A small seeded generator, so a failure names the case that makes it. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('screened and gathered give the same judgement', () => {
  const FRAGMENTS = ['alice', 'ALICE', 'name', 'users', 'id', "'", "' OR '1'='1", "x' or 1=1--", '1', '42', '-5', 'desc', 'order by', ';', '--', '/*', '$1', 'a b', 'Name', 'SELECT', 'select', 'é', 'İ', 'x%27y', '%2527', "O'Brien", 'asc, id'];
  const STATEMENTS = (v: string) => [
    PARAMETERISED,
    `SELECT * FROM users WHERE name = '${v}'`,
    `SELECT * FROM USERS WHERE NAME = '${v.toUpperCase()}'`,
    `SELECT * FROM users ORDER BY ${v}`,
    `SELECT * FROM users WHERE id = ${v} LIMIT 10`,
    `UPDATE users SET name = '${v}' WHERE id = $1`,
  ];

  it('on 3,000 generated requests and statements', () => {
    const next = random(20261204);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
    for (let round = 0; round < 3000; round++) {
      const value = pick(FRAGMENTS) + (next() < 0.3 ? pick(FRAGMENTS) : '');
      const key = next() < 0.2 ? pick(FRAGMENTS) : 'q';
      const encoded = next() < 0.2 ? Buffer.from(value).toString('base64') : next() < 0.3 ? encodeURIComponent(value) : value;
      const over: Over = {
        url: `/r/${encodeURIComponent(pick(FRAGMENTS))}?${encodeURIComponent(key)}=${encodeURIComponent(encoded)}`,
        query: { [key]: encoded },
        headers: { host: '127.0.0.1:3000', 'x-extra': next() < 0.3 ? pick(FRAGMENTS) : 'keep-alive', ...(next() < 0.2 ? { cookie: `s=${encodeURIComponent(pick(FRAGMENTS))}` } : {}) },
        ...(next() < 0.3 ? { method: 'POST', body: { [pick(FRAGMENTS)]: [pick(FRAGMENTS), { deep: value }] } } : {}),
      };
      const text = pick(STATEMENTS(next() < 0.7 ? value : pick(FRAGMENTS)));
      const screenedCtx = context(over);
      const gatheredCtx = context(over);
      const screened = judged(screenedCtx, sql(text));
      const gathered = judged(gatheredCtx, sql(text), false);
      expect({ round, over, text, ...summary(screened) }).toEqual({ round, over, text, ...summary(gathered) });
      expect(screenedCtx.someInputOccursIn(text)).toBe(gatheredCtx.someInputOccursIn(text));
    }
  });
});
