import { it } from 'vitest';
import { SHAPES } from './shapes.js';
it('prints', () => {
  const rows: string[] = [];
  for (const s of SHAPES) {
    const run = s.prepare(100 * 1024);
    run();
    const t0 = process.cpuUsage();
    let n = 0;
    do { run(); n++; } while ((process.cpuUsage(t0).user) < 50_000 && n < 50);
    const ms = process.cpuUsage(t0).user / 1000 / n;
    rows.push(`${ms.toFixed(2).padStart(8)} ms  ${s.name}`);
  }
  rows.sort((a, b) => parseFloat(b) - parseFloat(a));
  console.log(rows.slice(0, 25).join('\n'));
});
