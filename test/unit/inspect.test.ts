/**
 * inspect(): context → verdict cache → judge → enforce/telemetry, failing open. A runtime with the shipped
 * rules and a span exporter in memory; requests are RequestContexts over a plain request object.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tracing } from '@opentelemetry/sdk-node';
import { inspect, shouldInspect, wouldJudge } from '../../src/inspect.js';
import { detectorSlots, getRuntime, setRuntime } from '../../src/runtime.js';
import { DEFAULT_CONFIG, type Config } from '../../src/config.js';
import { RuleEngine } from '../../src/rules/engine.js';
import { loadRules, parseRuleFile } from '../../src/rules/load.js';
import { evaluate } from '../../src/rules/evaluate.js';
import { DETECTOR_IDS } from '../../src/detectors/index.js';
import { sqlInjection } from '../../src/detectors/sql-injection.js';
import { tokenizeSql } from '../../src/grammar/sql-tokenizer.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { ATTR } from '../../src/telemetry/attributes.js';
import { RequestContext } from '../../src/context/request-context.js';
import { INSPECTION_BUDGET } from '../../src/context/input-limits.js';
import { runInContext } from '../../src/context/store.js';
import { resetLive, trackLive } from '../../src/context/live.js';
import { SPAN_STALE_CONTEXT } from '../../src/context/stale.js';
import { BLOCKED_CODE } from '../../src/errors.js';
import type { ConfigEvent, ExecEvent, SqlEvent } from '../../src/events.js';

const shipped = loadRules([], DETECTOR_IDS).ruleSet;
const exporter = new tracing.InMemorySpanExporter();
const telemetry = new Telemetry({ enabled: true, serviceName: 'inspect-test', spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });
const previous = getRuntime();

function start(mode: Config['mode']): void {
  const engine = new RuleEngine(shipped, mode);
  const config: Config = Object.freeze({ ...DEFAULT_CONFIG, mode, logFindings: false, respond: 'app' as const });
  setRuntime({ config, engine, detectorsByKind: detectorSlots(engine, config), telemetry, stepUp: undefined, endpoints: undefined });
}

function request(url: string): RequestContext {
  const req = { method: 'GET', url, headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  return new RequestContext(req, undefined, DEFAULT_CONFIG);
}

const sql = (text: string): SqlEvent => ({ kind: 'sql', op: 'pg.query', dialect: 'postgres', system: 'postgresql', sql: text });
/** The agent loads the tracing SDK at the first span (outside the request): flush first. */
const spans = async () => {
  await telemetry.flush();
  return exporter.getFinishedSpans().map((s) => s.attributes);
};
const ATTACK = "' OR '1'='1";
const attackSql = sql(`SELECT * FROM users WHERE name = '${ATTACK}'`);
const attackUrl = `/search?name=${encodeURIComponent(ATTACK)}`;

beforeEach(() => {
  exporter.reset();
  start('block');
  resetLive();
});
afterEach(() => vi.restoreAllMocks());
afterAll(() => setRuntime(previous));

describe('inspect', () => {
  it('outside a request: nothing to judge, the call proceeds', async () => {
    expect(shouldInspect()).toBe(false);
    expect(inspect(attackSql)).toBeUndefined();
    expect(await spans()).toEqual([]);
  });

  it('block mode: an attack fails the call with a BlockedError and is one span, redacted', async () => {
    const ctx = request(attackUrl);
    const verdict = runInContext(ctx, () => (shouldInspect() ? inspect(attackSql) : 'not inspected'));
    expect(verdict).toMatchObject({ error: { code: BLOCKED_CODE, ruleId: 'sql-injection' } });
    expect(ctx.findings).toEqual([expect.objectContaining({ kind: 'attack', detector: 'sql-injection' })]);
    const [span, ...more] = await spans();
    expect(more).toEqual([]);
    expect(span).toMatchObject({ [ATTR.OUTCOME]: 'blocked', [ATTR.ACTION]: 'block', [ATTR.RULE_NAME]: 'sql-injection', [ATTR.SOURCE]: 'query.name' });
    expect(span![ATTR.DB_QUERY_TEXT]).toBe('SELECT * FROM users WHERE name = ?');
    expect(JSON.stringify(span)).not.toContain('1=');
  });

  it('an HTML chunk without `<` is not inspected: no input gathered, nothing cached; with `<` it is judged', async () => {
    const payload = '<img src=x onerror=alert(1)>';
    const ctx = request(`/hello?q=${encodeURIComponent(payload)}`);
    const gathered = vi.spyOn(ctx, 'inputsFor');
    expect(runInContext(ctx, () => inspect({ kind: 'html', op: 'res.end', html: 'hello, plain text & more' }))).toBeUndefined();
    expect(gathered).not.toHaveBeenCalled();
    expect(ctx.judgedCount).toBe(0);
    const verdict = runInContext(ctx, () => inspect({ kind: 'html', op: 'res.end', html: `<p>${payload}</p>` }));
    expect(gathered).toHaveBeenCalledTimes(1);
    expect(verdict).toMatchObject({ error: { code: BLOCKED_CODE } });
    expect(ctx.findings).toEqual([expect.objectContaining({ kind: 'attack', detector: 'xss' })]);
  });

  it('an inspection over the hard CPU budget stops and is an input-limit finding (budget), refused under STEPGUARD_ON_INPUT_LIMIT=block', async () => {
    const big = sql(`SELECT * FROM notes WHERE body = '${'benign text '.repeat(2000)}'`); // 24 KB: timed
    const saved = { ...INSPECTION_BUDGET };
    try {
      // Within the budget (the default): nothing to report.
      expect(runInContext(request('/notes?q=hello'), () => inspect(big))).toBeUndefined();
      // A budget nothing can meet stands in for a request that made the agent work too long.
      Object.assign(INSPECTION_BUDGET, { baseMs: -1, msPerKb: 0 });
      const monitorCtx = request('/notes?q=hello');
      expect(runInContext(monitorCtx, () => inspect(big))).toBeUndefined(); // policy monitor (the default): reported only
      expect(monitorCtx.findings).toEqual([expect.objectContaining({ kind: 'input-limit', reason: 'budget' })]);
      const engine = new RuleEngine(shipped, 'block');
      const config: Config = Object.freeze({ ...DEFAULT_CONFIG, mode: 'block', onInputLimit: 'block', logFindings: false, respond: 'app' as const });
      setRuntime({ config, engine, detectorsByKind: detectorSlots(engine, config), telemetry, stepUp: undefined, endpoints: undefined });
      expect(runInContext(request('/notes?q=hello'), () => inspect(big))).toMatchObject({ error: { code: BLOCKED_CODE, ruleId: 'stepguard.input-limit' } });
      // A short sink text is not timed at all.
      expect(runInContext(request('/notes?q=hello'), () => inspect(sql("SELECT 'benign'")))).toBeUndefined();
      // The judgement stops when the budget is spent (a text of many tokens: the tokenizer checks the clock as
      // it goes): the attack after the padding was never reached, so the request is refused under `block`...
      const padded = sql(`SELECT * FROM users WHERE id IN (${'1,'.repeat(20_000)}1) AND name = '${ATTACK}'`);
      const detect = vi.spyOn(sqlInjection, 'detect');
      const blockedCtx = request(attackUrl);
      expect(runInContext(blockedCtx, () => inspect(padded))).toMatchObject({ error: { code: BLOCKED_CODE, ruleId: 'stepguard.input-limit' } });
      expect(blockedCtx.findings).toEqual([expect.objectContaining({ kind: 'input-limit', reason: 'budget' })]);
      expect(detect).toHaveBeenCalledTimes(1);
      // ... and only reported under `monitor`, where the unjudged call proceeds (README "Input limits" says why).
      start('block');
      const reportedCtx = request(attackUrl);
      expect(runInContext(reportedCtx, () => inspect(padded))).toBeUndefined();
      expect(reportedCtx.findings).toEqual([expect.objectContaining({ kind: 'input-limit', reason: 'budget' })]);
    } finally {
      Object.assign(INSPECTION_BUDGET, saved);
    }
  });

  it('a stale call is also judged by the requests still being served whose input occurs in it, and refused on that request', () => {
    const withResponse = (url: string, finished: boolean): RequestContext => {
      const req = { method: 'GET', url, headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
      const res = { writableFinished: finished, destroyed: false } as unknown as ServerResponse;
      return new RequestContext(req, res, DEFAULT_CONFIG);
    };
    const answered = withResponse('/late/a?q=hello', true);
    const waiting = withResponse(attackUrl, false);
    const bystander = withResponse('/search?name=alice', false);
    for (const ctx of [answered, bystander, waiting]) trackLive(ctx);
    // The job queued by `waiting` runs in `answered`'s context: its input is not `answered`'s.
    const verdict = runInContext(answered, () => inspect(attackSql));
    expect(verdict).toMatchObject({ error: { code: BLOCKED_CODE, ruleId: 'sql-injection' } });
    expect(waiting.findings).toEqual([expect.objectContaining({ kind: 'attack', detector: 'sql-injection' })]);
    expect(answered.findings).toEqual([]);
    expect(bystander.findings).toEqual([]);
    // Once that request was answered too, nobody still served carries the input: judged by the stale context only.
    (waiting.res as unknown as { writableFinished: boolean }).writableFinished = true;
    expect(runInContext(answered, () => inspect({ ...attackSql, op: 'pg.Pool.query' }))).toBeUndefined();
  });

  it('a call after the agent itself answered the request is judged as stale, but not reported as a lost context', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const answered = (url: string, byAgent: boolean): RequestContext => {
      const req = { method: 'GET', url, headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
      const ctx = new RequestContext(req, { writableFinished: true, destroyed: false } as unknown as ServerResponse, DEFAULT_CONFIG);
      ctx.responded = byAgent;
      return ctx;
    };
    const staleOps = async () => {
      await telemetry.flush();
      return exporter.getFinishedSpans().filter((s) => s.name === SPAN_STALE_CONTEXT).map((s) => s.attributes[ATTR.OPERATION]);
    };
    // The app's handler goes on after the agent's answer (its catch rolls back, its error page renders): still
    // judged, so an injection is refused…
    const refused = answered(attackUrl, true);
    expect(runInContext(refused, () => inspect({ ...attackSql, op: 'pg.after-refusal' }))).toMatchObject({ error: { code: BLOCKED_CODE } });
    expect(runInContext(refused, () => inspect({ ...sql('SELECT 1'), op: 'pg.after-refusal' }))).toBeUndefined();
    // …but that is the request's own work, not a library that lost the context: no warning, no span.
    expect(await staleOps()).toEqual([]);
    expect(stderr.mock.calls.flat().join('\n')).not.toContain('pg.after-refusal');
    // The app answered itself and a call came later: reported.
    expect(runInContext(answered('/late/b?q=hello', false), () => inspect({ ...sql('SELECT 3'), op: 'pg.after-app-answer' }))).toBeUndefined();
    expect(await staleOps()).toEqual(['pg.after-app-answer']);
    expect(stderr.mock.calls.flat().join('\n')).toContain('pg.after-app-answer ran after its request (GET (no route)) was answered');
  });

  it("a live request's call that its own input does not explain is judged by the other requests in flight: attacks only, each time", () => {
    const live = (url: string): RequestContext => {
      const req = { method: 'GET', url, headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
      return new RequestContext(req, { writableFinished: false, destroyed: false } as unknown as ServerResponse, DEFAULT_CONFIG);
    };
    const holder = live('/worker/hold?q=hold');
    const queued = live(attackUrl);
    const columnSearch = live('/search?col=name');
    for (const ctx of [holder, queued, columnSearch]) trackLive(ctx);
    // The worker started by `holder` runs `queued`'s job: refused, on `queued`, twice (never from a cached verdict).
    for (const op of ['pg.query', 'pg.query']) {
      expect(runInContext(holder, () => inspect({ ...attackSql, op }))).toMatchObject({ error: { code: BLOCKED_CODE } });
    }
    expect(queued.findings).toEqual([expect.objectContaining({ kind: 'attack' }), expect.objectContaining({ kind: 'attack' })]);
    expect(holder.findings).toEqual([]);
    // `name` is a whole column of the holder's statement: for its own request a vulnerability, for another none.
    expect(runInContext(holder, () => inspect(sql('SELECT id, name FROM users WHERE id = 7')))).toBeUndefined();
    expect(columnSearch.findings).toEqual([]);
    // A call the request's own input explains is its own: nobody else's input is searched.
    const ownInput = sql("SELECT * FROM users WHERE name = 'hold' AND note = 'name'");
    expect(runInContext(holder, () => inspect(ownInput))).toBeUndefined();
    expect(columnSearch.findings).toEqual([]);
  });

  it('monitor mode: the same attack is reported, the call proceeds', async () => {
    start('monitor');
    expect(runInContext(request(attackUrl), () => inspect(attackSql))).toBeUndefined();
    expect(await spans()).toEqual([expect.objectContaining({ [ATTR.OUTCOME]: 'reported', [ATTR.ACTION]: 'monitor' })]);
  });

  it('the same sink text is judged once per request (the verdict is cached)', () => {
    const detect = vi.spyOn(sqlInjection, 'detect');
    const ctx = request(attackUrl);
    const first = runInContext(ctx, () => inspect(attackSql));
    const second = runInContext(ctx, () => inspect({ ...attackSql, op: 'pg.Pool.query' }));
    expect(second).toBe(first);
    expect(detect).toHaveBeenCalledTimes(1);
    runInContext(request(attackUrl), () => inspect(attackSql));
    expect(detect).toHaveBeenCalledTimes(2);
  });

  it("the finding carries the detector's tokens of the statement, which the span builder reuses", () => {
    const ctx = request(attackUrl);
    runInContext(ctx, () => inspect(attackSql));
    expect(ctx.findings[0]!.tokens).toEqual(tokenizeSql(attackSql.sql, 'postgres'));
  });

  it('a detector that keeps throwing is switched off after 10 failures; every call proceeds', () => {
    const detect = vi.spyOn(sqlInjection, 'detect').mockImplementation(() => {
      throw new Error('broken detector');
    });
    for (let i = 0; i < 12; i++) expect(runInContext(request(`${attackUrl}&i=${i}`), () => inspect(attackSql))).toBeUndefined();
    expect(detect).toHaveBeenCalledTimes(10);
    const slot = getRuntime()!.detectorsByKind.get('sql')!.find((s) => s.detector.id === 'sql-injection')!;
    expect(slot).toMatchObject({ disabled: true, failures: 10 });
  });

  it('fails open: an internal error lets the call proceed', () => {
    vi.spyOn(getRuntime()!.engine, 'decide').mockImplementation(() => {
      throw new Error('engine bug');
    });
    expect(runInContext(request(attackUrl), () => inspect(attackSql))).toBeUndefined();
  });

  it("execFileSync('su', ['-c', 'echo hi; id']) with `hi; id` from the request is refused", async () => {
    const event: ExecEvent = { kind: 'exec', op: 'child_process.execFileSync', file: 'su', args: ['-c', 'echo hi; id'], shell: undefined };
    const verdict = runInContext(request(`/run?cmd=${encodeURIComponent('hi; id')}`), () => inspect(event));
    expect(verdict).toMatchObject({ error: { code: BLOCKED_CODE, ruleId: 'command-injection' } });
    expect((await spans())[0]).toMatchObject({ [ATTR.PROCESS_COMMAND_LINE]: 'echo ?' });
  });

  it('agrees with `stepguard rules explain`: a path segment equal to a table, a key equal to a column are no finding', async () => {
    const event = sql('SELECT id, name FROM users WHERE name = $1');
    const ctx = request('/users/7?name=7');
    expect(runInContext(ctx, () => inspect(event))).toBeUndefined();
    expect(ctx.findings).toEqual([]);
    expect(await spans()).toEqual([]);
    expect(evaluate(shipped.rules, event, ctx.inputs(), {}).findings).toEqual([]);
    // Both are inputs of the request: the detector, not the input gathering, dropped them.
    expect(ctx.inputs()).toEqual(expect.arrayContaining([expect.objectContaining({ source: 'path', value: 'users' }), expect.objectContaining({ value: 'name', isKey: true })]));
  });
});

describe('wouldJudge', () => {
  it('is false only when no detector applies to the call and no policy rule looks at its kind', () => {
    expect(wouldJudge({ kind: 'html', op: 'res.end', html: 'hello' })).toBe(false);
    expect(wouldJudge({ kind: 'html', op: 'res.end', html: '<p>hello</p>' })).toBe(true);
    expect(wouldJudge(sql('SELECT 1'))).toBe(true);
    const policy = parseRuleFile('extra.yaml', `rules:
  - id: html-policy
    title: Every HTML write
    category: sensitive-operation
    when: { sink: html }
    action: monitor
`, DETECTOR_IDS);
    expect(policy.problems).toEqual([]);
    const withPolicy = new RuleEngine({ ...shipped, rules: [...shipped.rules, ...policy.rules] }, 'block');
    const config: Config = Object.freeze({ ...DEFAULT_CONFIG, logFindings: false });
    setRuntime({ config, engine: withPolicy, detectorsByKind: detectorSlots(withPolicy, config), telemetry, stepUp: undefined, endpoints: undefined });
    expect(withPolicy.hasPolicyFor('html')).toBe(true);
    expect(wouldJudge({ kind: 'html', op: 'res.end', html: 'hello' })).toBe(true);
    setRuntime(undefined);
    expect(wouldJudge({ kind: 'html', op: 'res.end', html: '<p>' })).toBe(false);
  });
});

describe('response heads', () => {
  const head = (text: string): ConfigEvent => ({ kind: 'config', op: 'res.writeHead', check: 'response', text, https: false, randomCookies: [] });
  const inspectIn = (url: string, event: ConfigEvent) => runInContext(request(url), () => inspect(event));

  it('a head judged on a route without a refusal is not judged again there; another route, head or rule set is', () => {
    const decide = vi.spyOn(getRuntime()!.engine, 'decide');
    const html = head('content-type: text/html; charset=utf-8');
    expect(inspectIn('/hello', html)).toBeUndefined();
    expect(decide).toHaveBeenCalledTimes(1);
    expect(inspectIn('/hello?x=1', html)).toBeUndefined(); // the next request on the route
    expect(decide).toHaveBeenCalledTimes(1);
    inspectIn('/other', html);
    inspectIn('/hello', head('content-type: text/html\ncontent-security-policy: default-src self'));
    expect(decide).toHaveBeenCalledTimes(3);
    // A cookie holding a Math.random() output is judged every time (the token differs per response).
    inspectIn('/hello', { ...html, randomCookies: ['sid'] });
    inspectIn('/hello', { ...html, randomCookies: ['sid'] });
    expect(decide).toHaveBeenCalledTimes(5);
    start('block'); // a new rule engine (a reload): judged afresh
    const decideAgain = vi.spyOn(getRuntime()!.engine, 'decide');
    inspectIn('/hello', html);
    expect(decideAgain).toHaveBeenCalledTimes(1);
  });
});

