/**
 * The detector registry (src/detectors/index.ts) names each detector and its sink kinds without loading its
 * code; the code loads at the first call. The names and kinds must be the code's own.
 */
import { describe, expect, it } from 'vitest';
import { createDetectors, DETECTOR_IDS, loadedDetectors } from '../../../src/detectors/index.js';

describe('detector registry lines', () => {
  it('each line has the id and kinds of the detector it loads, in the same order', () => {
    const lines = createDetectors({ ssrfAllow: [], redirectAllow: [] });
    const code = loadedDetectors();
    expect(lines.map((d) => [d.id, [...d.kinds]])).toEqual(code.map((d) => [d.id, [...d.kinds]]));
    expect(DETECTOR_IDS).toEqual(code.map((d) => d.id));
  });

  it('a lazy line judges like the code it loads, and applies xss only to chunks with `<`', () => {
    const xss = createDetectors({ ssrfAllow: [], redirectAllow: [] }).find((d) => d.id === 'xss')!;
    const input = { source: 'query' as const, path: 'query.q', value: '<img src=x onerror=alert(1)>' };
    const event = { kind: 'html' as const, op: 'res.end', html: `<p>${input.value}</p>` };
    expect(xss.applies?.(event)).toBe(true);
    expect(xss.applies?.({ ...event, html: 'plain text, no markup' })).toBe(false);
    expect(xss.detect(event, [input])).toEqual([expect.objectContaining({ detector: 'xss', kind: 'attack' })]);
  });

  it('a line that screens values loads code with the same screen (mayFind); the others have none', () => {
    const lines = createDetectors({ ssrfAllow: [], redirectAllow: [] });
    const code = loadedDetectors();
    expect(lines.filter((d) => d.mayFind).map((d) => d.id)).toEqual(code.filter((d) => d.mayFind).map((d) => d.id));
    const sql = lines.find((d) => d.id === 'sql-injection')!;
    const event = { kind: 'sql' as const, op: 'pg.query', dialect: 'postgres' as const, system: 'postgresql' as const, sql: "SELECT * FROM T WHERE A = 'X' OR 1=1--'" };
    expect(sql.mayFind?.(event, "x' or 1=1--", false)).toBe(true); // found in the statement's case fold
    expect(sql.mayFind?.(event, 'zed', false)).toBe(false);
    expect(sql.mayFind?.(event, 'T', false)).toBe(false); // one character: never judged
    expect(sql.mayFind?.(event, 'WHERE', true)).toBe(false); // a parameter name that is a word
    expect(sql.mayFind?.(event, 'WHERE', false)).toBe(true);
  });
});
