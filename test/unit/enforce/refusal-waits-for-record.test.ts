/**
 * A refusal of an attack that the risk layer remembers is sent only once that attack is on record (so the
 * attacker's next request, on any instance, already sees it), and a store that never answers delays the
 * refusal by a bounded wait, never forever. A real loopback server; the risk layer is a stand-in whose write
 * the test settles by hand.
 */
import { afterAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from '../../../src/inspect.js';
import { detectorSlots, getRuntime, setRuntime } from '../../../src/runtime.js';
import { DEFAULT_CONFIG, type Config } from '../../../src/config.js';
import { RuleEngine } from '../../../src/rules/engine.js';
import { loadRules } from '../../../src/rules/load.js';
import { DETECTOR_IDS } from '../../../src/detectors/index.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { RequestContext } from '../../../src/context/request-context.js';
import { runInContext } from '../../../src/context/store.js';
import type { RiskService } from '../../../src/risk/service.js';

const previous = getRuntime();
afterAll(() => setRuntime(previous));

function withRecordWrite(write: () => Promise<void>): { recordCalls: number } {
  const seen = { recordCalls: 0 };
  const engine = new RuleEngine(loadRules([], DETECTOR_IDS).ruleSet, 'block');
  const config: Config = Object.freeze({ ...DEFAULT_CONFIG, mode: 'block' as const, logFindings: false, respond: 'agent' as const });
  const risk = {
    after: () => {
      seen.recordCalls++;
      return write();
    },
    facts: () => ({}),
  } as unknown as RiskService;
  setRuntime({ config, engine, detectorsByKind: detectorSlots(engine, config), telemetry: new Telemetry({ enabled: false, serviceName: 't' }), stepUp: undefined, endpoints: undefined, risk });
  return seen;
}

async function attackThroughServer(): Promise<{ status: number; body: string }> {
  const server = http.createServer((req, res) => {
    const ctx = new RequestContext(req, res, DEFAULT_CONFIG);
    runInContext(ctx, () => inspect({ kind: 'sql', op: 'pg.query', dialect: 'postgres', system: 'postgresql', sql: `SELECT * FROM t WHERE name = '' OR '1'='1'` }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: `/s?name=${encodeURIComponent("' OR '1'='1")}` }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('a refused attack and its record', () => {
  it('the 403 is sent after the attack is recorded, not before', async () => {
    let recorded = false;
    const seen = withRecordWrite(() => new Promise((resolve) => setTimeout(() => ((recorded = true), resolve()), 150)));
    const answer = attackThroughServer().then((a) => ({ ...a, recordedBeforeAnswer: recorded }));
    const { status, body, recordedBeforeAnswer } = await answer;
    expect(seen.recordCalls).toBe(1);
    expect(status).toBe(403);
    expect(JSON.parse(body)).toMatchObject({ status: 403 });
    expect(recordedBeforeAnswer).toBe(true);
  });

  it('a store that never answers holds the refusal only for the bounded wait', async () => {
    const seen = withRecordWrite(() => new Promise<void>(() => undefined));
    const { status } = await attackThroughServer();
    expect(seen.recordCalls).toBe(1);
    expect(status).toBe(403);
  });
});
