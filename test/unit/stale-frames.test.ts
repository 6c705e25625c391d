/**
 * Stale-context reports name where the work came from without carrying anything a user sent: only
 * `package:function` from a short stack, the agent's own frames and Node's internals left out.
 */
import { describe, expect, it, vi } from 'vitest';
import { ATTR_STALE_CARRIER, libraryFrames, reportCrossedContext, SPAN_STALE_CONTEXT } from '../../src/context/stale.js';
import type { Telemetry } from '../../src/telemetry/telemetry.js';

const OWN = '/srv/app/node_modules/stepguard/dist';
const stack = [
  'Error',
  `    at reportStaleContext (${OWN}/src/context/stale.js:70:13)`,
  `    at inspect (${OWN}/src/inspect.js:48:7)`,
  `    at Client.query (${OWN}/hooks/pg.js:90:22)`,
  '    at BoundPool.query (/srv/app/node_modules/pg-pool/index.js:400:12)',
  "    at Object.lookup [as run] (/srv/app/src/users.js:12:5)",
  '    at async LateQueue.drainJobs (/srv/app/node_modules/@acme/late-queue/index.js:14:9)',
  '    at LateQueue.emit (node:events:519:28)',
  "    at /srv/app/node_modules/late-queue/index.js:20:50",
  "    at Query.run (/srv/app/node_modules/sequelize/lib/query.js:1:1) ' OR 1=1 --",
  '    at listOnTimeout (node:internal/timers:581:17)',
].join('\n');

describe('libraryFrames', () => {
  it('keeps package and function names, in call order, and nothing else', () => {
    expect(libraryFrames(stack, OWN)).toEqual([
      'pg-pool:BoundPool.query',
      '(app):Object.lookup',
      '@acme/late-queue:LateQueue.drainJobs',
      'late-queue:<anonymous>',
      'sequelize:Query.run',
    ]);
  });

  it('drops the agent even when it is installed as a package elsewhere, and survives odd input', () => {
    expect(libraryFrames('    at x (/a/node_modules/stepguard/dist/src/inspect.js:1:1)', '/nowhere')).toEqual([]);
    expect(libraryFrames(undefined, OWN)).toEqual([]);
    expect(libraryFrames('garbage\nat\n', OWN)).toEqual([]);
    const long = Array.from({ length: 50 }, (_, i) => `    at f${i} (/a/node_modules/p${i}/i.js:1:1)`).join('\n');
    expect(libraryFrames(long, OWN)).toHaveLength(12);
  });
});

describe('a call that carried another live request\'s attack', () => {
  it('is reported once per call site, naming both requests by method and route, with the carrier on the span', () => {
    const spans: Array<[string, Record<string, unknown>]> = [];
    const telemetry = { span: (name: string, attributes: Record<string, unknown>) => spans.push([name, attributes]) } as unknown as Telemetry;
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const call = { kind: 'sql', op: 'pg.query', method: 'GET', route: '/worker/hold' };
      const carrier = { method: 'GET', route: '/search/:id' };
      const reportHere = () => reportCrossedContext(telemetry, call, carrier, '/nowhere');
      expect(reportHere()).toBeDefined();
      expect(reportHere()).toBeUndefined(); // the same call site: said once
      const lines = write.mock.calls.map(([text]) => String(text));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('pg.query ran in the context of another request still being served (GET /worker/hold) and carried an attack in the input of GET /search/:id');
      expect(spans).toEqual([[SPAN_STALE_CONTEXT, expect.objectContaining({ [ATTR_STALE_CARRIER]: 'GET /search/:id', 'http.route': '/worker/hold' })]]);
    } finally {
      write.mockRestore();
    }
  });
});
