import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { RequestContext } from '../../../src/context/request-context.js';
import { applyInputLimitPolicy, inputLimitFindingFor, INPUT_LIMIT_RULE } from '../../../src/context/input-limits.js';
import { DEFAULT_CONFIG, loadConfig } from '../../../src/config.js';
import type { SinkEvent } from '../../../src/events.js';
import type { Decision } from '../../../src/rules/engine.js';

const ATTACK = "' OR '1'='1";
const SQL = `SELECT * FROM users WHERE name = '${ATTACK}'`;
const request = (over: Record<string, unknown>) =>
  ({ method: 'POST', url: '/search', headers: { 'content-type': 'application/json' }, socket: {}, ...over }) as unknown as IncomingMessage;
const context = (over: Record<string, unknown>) => new RequestContext(request(over), undefined, DEFAULT_CONFIG);
const padded = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, `v${i}`]));
const nested = (depth: number, leaf: unknown) => {
  let node = leaf;
  for (let i = 0; i < depth; i++) node = { a: node };
  return node;
};

describe('raw and binary bodies', () => {
  it('a Buffer body is one value, never one per byte', () => {
    const ctx = context({ body: Buffer.alloc(10 << 20, 65) });
    expect(ctx.inputs().filter((i) => i.source === 'body')).toEqual([]); // over the byte budget: left to the search pass
    const small = context({ body: Buffer.from('hello; rm -rf /') });
    expect(small.inputs().filter((i) => i.source === 'body').map((i) => i.value)).toEqual(['hello; rm -rf /']);
    expect(context({ body: new Uint8Array(Buffer.from('typed array text')) }).inputs().map((i) => i.value)).toContain('typed array text');
  });

  it('a large text Buffer is searched only by a sink long enough to contain it', () => {
    const text = `${'x'.repeat(100_000)}${ATTACK}`;
    const ctx = context({ body: Buffer.from(text), query: padded(3000) });
    expect(ctx.inputsFor(SQL).inputs.some((i) => i.value === text)).toBe(false);
    const long = `INSERT INTO notes VALUES ('${text}')`;
    expect(ctx.inputsFor(long).inputs.find((i) => i.value === text)?.path).toBe('body');
  });

  it('binary data is never a value', () => {
    const ctx = context({ body: Buffer.from([0, 1, 2, 3, 0xff, 0xfe]) });
    expect(ctx.inputs().filter((i) => i.source === 'body')).toEqual([]);
  });
});

describe('values past the budget are searched for in the sink text', () => {
  it('a value too large for the byte budget is skipped alone: the values after it stay in the budget', () => {
    const ctx = context({ body: { pad: 'x'.repeat(2 << 20), q: ATTACK } });
    expect(ctx.inputs().find((i) => i.value === ATTACK)?.path).toBe('body.q');
    expect(ctx.inputsFor(`SELECT '${'x'.repeat(2 << 20)}'`).inputs.some((i) => i.value.length === 2 << 20)).toBe(true);
  });

  it.each([
    ['3,000 keys before the field', { ...padded(3000), q: ATTACK }],
    ['nesting depth 33', nested(33, { q: ATTACK })],
    ['nesting depth 900', nested(900, { q: ATTACK })],
  ])('%s', (_name, body) => {
    const ctx = context({ body });
    expect(ctx.inputs().some((i) => i.value === ATTACK)).toBe(false); // not in the budget…
    const { inputs, limitExceeded } = ctx.inputsFor(SQL);
    expect(inputs.find((i) => i.value === ATTACK)?.source).toBe('body'); // …but found for the sink
    expect(limitExceeded).toBeUndefined();
    // Only values the sink contains are added: the padding is not.
    expect(inputs.length).toBeLessThanOrEqual(ctx.inputs().length + 2);
  });

  it('a header after 2,000 query parameters, with its path', () => {
    const url = `/search?${new URLSearchParams(padded(2000))}`;
    const ctx = context({ url, headers: { 'x-name': ATTACK } });
    expect(ctx.inputsFor(SQL).inputs.find((i) => i.value === ATTACK)?.path).toBe('headers.x-name');
  });

  it('percent-encoded values past the budget are decoded too', () => {
    const cookie = [...Object.entries(padded(2500)).map(([k, v]) => `${k}=${v}`), `q=${encodeURIComponent(ATTACK)}`].join('; ');
    const ctx = context({ headers: { cookie } });
    expect(ctx.inputsFor(SQL).inputs.some((i) => i.value === ATTACK)).toBe(true);
  });

  it('a request within the budget is not walked twice', () => {
    const ctx = context({ body: { q: ATTACK } });
    expect(ctx.inputsFor(SQL).inputs).toBe(ctx.inputs());
  });
});

describe('the search pass walks the request once, whatever the number of sinks (issue #14)', () => {
  it('10,000 keys and five distinct sink texts: one walk, each sink still finds what it contains', () => {
    const ctx = context({ body: { ...padded(10_000), q: ATTACK, name: 'v9999x' } });
    const sinks = [SQL, `SELECT 1 FROM t WHERE a = '${ATTACK}' AND b = 2`, "SELECT 'v9999x'", 'SELECT 42', `${SQL} LIMIT 1`];
    const found = sinks.map((sink) => ctx.inputsFor(sink).inputs.filter((i) => i.source === 'body' && !ctx.inputs().includes(i)).map((i) => i.value));
    expect(ctx.leafWalks).toBe(1);
    expect(found[0]).toContain(ATTACK);
    expect(found[1]).toContain(ATTACK);
    expect(found[2]).toContain('v9999x');
    expect(found[3]).toEqual([]);
    expect(found[4]).toContain(ATTACK);
  });

  it('a request within the budget is never walked for the search pass', () => {
    const ctx = context({ body: { q: ATTACK } });
    for (let i = 0; i < 3; i++) ctx.inputsFor(`${SQL} -- ${i}`);
    expect(ctx.leafWalks).toBe(0);
  });

  it('a body parsed after the first sink is walked again, once', () => {
    const req = request({ body: undefined, query: padded(3000) });
    const ctx = new RequestContext(req, undefined, DEFAULT_CONFIG);
    ctx.inputsFor(SQL);
    ctx.inputsFor(`${SQL} `);
    expect(ctx.leafWalks).toBe(1);
    (req as unknown as { body: unknown }).body = { q: ATTACK };
    expect(ctx.inputsFor(SQL).inputs.find((i) => i.value === ATTACK)?.path).toBe('body.q');
    ctx.inputsFor(`${SQL}  `);
    expect(ctx.leafWalks).toBe(2);
  });
});

describe('what the agent cannot see: limitExceeded', () => {
  it('nesting deeper than the search walks', () => {
    const { limitExceeded } = context({ body: nested(1200, { q: ATTACK }) }).inputsFor(SQL);
    expect(limitExceeded?.reason).toBe('depth');
    expect(limitExceeded?.path.startsWith('body.a.a.a')).toBe(true);
  });

  it('a raw body cut at STEPGUARD_MAX_BODY_BYTES when no framework parsed it', () => {
    const raw = new RequestContext(request({}), undefined, { ...DEFAULT_CONFIG, maxBodyBytes: 16 });
    raw.captureBodyChunk(Buffer.from('{"pad":"xxxxxxxx",'));
    raw.captureBodyChunk(Buffer.from(`"q":"${ATTACK}"}`));
    expect(raw.inputsFor(SQL).limitExceeded).toEqual({ reason: 'raw-body', path: 'body' });

    const parsed = new RequestContext(request({ body: { pad: 'xxxxxxxx', q: ATTACK } }), undefined, { ...DEFAULT_CONFIG, maxBodyBytes: 16 });
    parsed.captureBodyChunk(Buffer.alloc(32, 65));
    expect(parsed.inputsFor(SQL).limitExceeded).toBeUndefined();
  });

  it('more values in the sink than the budget: a request built from the sink text itself', () => {
    const words: Record<string, string> = {};
    for (let i = 0; i < 6000; i++) words[`k${i}`] = `x${i}`;
    const sink = Object.values(words).join(' ');
    const { limitExceeded } = context({ body: words }).inputsFor(sink);
    expect(limitExceeded?.reason).toBe('count');
  });
});

describe('STEPGUARD_ON_INPUT_LIMIT', () => {
  const event: SinkEvent = { kind: 'sql', op: 'pg.query', dialect: 'postgres', system: 'postgresql', sql: SQL };
  const none: Decision = { action: 'monitor', decisive: undefined, matches: [] };
  const limit = { reason: 'raw-body', path: 'body' } as const;

  it('monitor (the default): one finding per request, the decision unchanged', () => {
    expect(DEFAULT_CONFIG.onInputLimit).toBe('monitor');
    const ctx = { inputLimitReported: false };
    const first = inputLimitFindingFor(ctx, limit, { mode: 'block', onInputLimit: 'monitor' }, event);
    expect(first).toMatchObject({ kind: 'input-limit', detector: 'input-limit', reason: 'raw-body', input: { source: 'body', path: 'body', value: '' } });
    expect(inputLimitFindingFor(ctx, limit, { mode: 'block', onInputLimit: 'monitor' }, event)).toBeUndefined();
    expect(applyInputLimitPolicy(none, [first!], { mode: 'block', onInputLimit: 'monitor' })).toBe(none);
  });

  it('block, in block mode: every sensitive sink call of the request is refused, citing the built-in rule', () => {
    const ctx = { inputLimitReported: false };
    const settings = { mode: 'block', onInputLimit: 'block' } as const;
    for (let call = 0; call < 2; call++) {
      const finding = inputLimitFindingFor(ctx, limit, settings, event);
      expect(finding).toBeDefined();
      const decision = applyInputLimitPolicy(none, [finding!], settings);
      expect(decision.action).toBe('block');
      expect(decision.decisive?.rule).toBe(INPUT_LIMIT_RULE);
    }
  });

  it('block, in monitor mode: reported only', () => {
    const finding = inputLimitFindingFor({ inputLimitReported: false }, limit, { mode: 'monitor', onInputLimit: 'block' }, event);
    expect(applyInputLimitPolicy(none, [finding!], { mode: 'monitor', onInputLimit: 'block' })).toBe(none);
  });

  it('a bad value names the variable and the choices', () => {
    const { config, problems } = loadConfig({ STEPGUARD_ON_INPUT_LIMIT: 'refuse' }, '/');
    expect(problems).toEqual([{ where: 'env STEPGUARD_ON_INPUT_LIMIT', message: 'expected monitor | block, got "refuse"' }]);
    expect(config.onInputLimit).toBe('monitor');
    expect(loadConfig({ STEPGUARD_ON_INPUT_LIMIT: 'block' }, '/').config.onInputLimit).toBe('block');
  });
});
