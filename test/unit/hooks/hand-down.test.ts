/**
 * handDown / wasHandedDown (src/hook-kit.ts): a statement an outer layer judged and let through (pg's Pool.query)
 * is not judged again by the inner call it becomes (Client.query) — in the same request, for the same text, once —
 * unless some policy rule tells operations apart.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { handDown, requestToInspect, wasHandedDown } from '../../../src/hook-kit.js';
import { whileAgentLoads } from '../../../src/instrument/loading.js';
import { detectorSlots, getRuntime, setRuntime } from '../../../src/runtime.js';
import { DEFAULT_CONFIG, type Config } from '../../../src/config.js';
import { RuleEngine } from '../../../src/rules/engine.js';
import { loadRules, parseRuleFile } from '../../../src/rules/load.js';
import { DETECTOR_IDS } from '../../../src/detectors/index.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { RequestContext } from '../../../src/context/request-context.js';
import { runInContext } from '../../../src/context/store.js';

const shipped = loadRules([], DETECTOR_IDS).ruleSet;
const previous = getRuntime();

function start(extraRules = ''): void {
  const rules = extraRules ? parseRuleFile('extra.yaml', extraRules, DETECTOR_IDS) : { rules: [], problems: [] };
  expect(rules.problems).toEqual([]);
  const engine = new RuleEngine({ ...shipped, rules: [...shipped.rules, ...rules.rules] }, 'block');
  const config: Config = Object.freeze({ ...DEFAULT_CONFIG, logFindings: false });
  setRuntime({ config, engine, detectorsByKind: detectorSlots(engine, config), telemetry: new Telemetry({ enabled: false, serviceName: 't' }), stepUp: undefined, endpoints: undefined });
}

function request(): RequestContext {
  const req = { method: 'GET', url: '/search?name=alice', headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  return new RequestContext(req, undefined, DEFAULT_CONFIG);
}

const STATEMENT = 'SELECT id FROM users WHERE name = $1';

beforeEach(() => start());
afterAll(() => setRuntime(previous));

describe('handDown', () => {
  it('the next inner call with the same text in the same request is skipped, once', () => {
    const ctx = request();
    runInContext(ctx, () => {
      handDown(STATEMENT);
      expect(wasHandedDown('sql', STATEMENT)).toBe(true);
      expect(wasHandedDown('sql', STATEMENT)).toBe(false);
    });
  });

  it('another text, another request, or no request: judged as usual', () => {
    const ctx = request();
    const other = request();
    runInContext(ctx, () => handDown(STATEMENT));
    runInContext(ctx, () => expect(wasHandedDown('sql', 'SELECT 1')).toBe(false));
    runInContext(other, () => expect(wasHandedDown('sql', STATEMENT)).toBe(false));
    expect(wasHandedDown('sql', STATEMENT)).toBe(false);
    // The marker is still there for the call it was meant for.
    runInContext(ctx, () => expect(wasHandedDown('sql', STATEMENT)).toBe(true));
  });

  it('a policy rule that names an operation: each layer is judged under its own name', () => {
    start(`rules:
  - id: client-queries
    title: Client queries only
    category: sensitive-operation
    when: { sink: sql, operation: "pg.query" }
    action: monitor
`);
    const ctx = request();
    runInContext(ctx, () => {
      handDown(STATEMENT);
      expect(wasHandedDown('sql', STATEMENT)).toBe(false);
    });
  });
});

describe('requestToInspect', () => {
  it('is the current request context, and undefined outside a request, without a runtime or while the agent loads', () => {
    const ctx = request();
    expect(requestToInspect()).toBeUndefined();
    runInContext(ctx, () => {
      expect(requestToInspect()).toBe(ctx);
      expect(whileAgentLoads(() => requestToInspect())).toBeUndefined();
    });
    setRuntime(undefined);
    runInContext(ctx, () => expect(requestToInspect()).toBeUndefined());
  });

  it('a context passed on to handDown and wasHandedDown is the one they use', () => {
    const ctx = request();
    const other = request();
    runInContext(other, () => handDown(STATEMENT, ctx));
    runInContext(other, () => expect(wasHandedDown('sql', STATEMENT, other)).toBe(false));
    expect(wasHandedDown('sql', STATEMENT, ctx)).toBe(true);
  });
});
