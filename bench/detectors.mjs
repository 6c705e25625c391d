// Micro-benchmark of the SQL injection detector: µs per statement (p50 / p99) for statements of about
// 100 B, 1 KB and 4 KB, each judged against 1, 20 and 150 request inputs.
//
// The statement is a bulk INSERT built by concatenating benign request values into literals, the worst
// realistic case: every value occurs, so the statement is tokenized and every occurrence is mapped to tokens.
// When a statement is too small to hold all values, the remaining inputs are present in the request but not
// in the statement (they cost one failed search each), and the table says how many matched.
//
// Run: npx tsc -p . && node bench/detectors.mjs   (targets: p99 <= 50 µs for 1 KB / 20 inputs,
// <= 1 ms for 4 KB / 150 inputs)

import { sqlInjection } from '../dist/src/detectors/sql-injection.js';

const SIZES = [100, 1024, 4096];
const INPUT_COUNTS = [1, 20, 150];
const WARMUP_CALLS = 2_000;
const MIN_CALLS = 5_000;
const MIN_TIME_MS = 400;
/** Distinct but equivalent statements, so nothing can be cached across calls on the string itself. */
const VARIANTS = 16;

const HEADER = 'INSERT INTO items (owner, label) VALUES ';

function scenario(size, inputCount, dialect) {
  // Each matching value sits in a row "(<n>, '<value>'), " — 10 characters of structure around it.
  const rowOverhead = 10;
  const room = size - HEADER.length;
  const matching = Math.max(1, Math.min(inputCount, Math.floor(room / (rowOverhead + 5))));
  const valueLength = Math.max(5, Math.floor(room / matching) - rowOverhead);
  const values = [];
  for (let k = 0; k < inputCount; k++) values.push(benignValue(k, valueLength));
  const inputs = values.map((value, k) => ({ source: 'body', path: `body.items.${k}.label`, value }));
  const statements = [];
  for (let v = 0; v < VARIANTS; v++) {
    const rows = values.slice(0, matching).map((value, k) => `(${(v * 1000 + k) % 97}, '${value}')`);
    let sql = HEADER + rows.join(', ');
    // Pad with a hard-coded literal to reach the target size exactly.
    if (sql.length < size - 12) sql += ` RETURNING '${'x'.repeat(size - sql.length - 13)}'`;
    statements.push({ kind: 'sql', op: 'bench.query', dialect, system: dialect === 'postgres' ? 'postgresql' : 'mysql', sql });
  }
  return { inputs, statements, matching, length: statements[0].sql.length };
}

/**
 * Realistic-looking values (a word, an id, a dash), all different and none inside another: the first part
 * holds the only digits, so one value's text cannot occur in another's.
 */
function benignValue(k, length) {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
  let s = `${words[k % words.length][0]}${k.toString(36)}-`;
  while (s.length < length) s += words[(k + s.length) % words.length] + ' ';
  return s.slice(0, Math.max(length, 5));
}

function measure({ inputs, statements }) {
  for (let i = 0; i < WARMUP_CALLS; i++) sqlInjection.detect(statements[i % VARIANTS], inputs);
  const samples = [];
  const deadline = performance.now() + MIN_TIME_MS;
  let findings = 0;
  for (let i = 0; i < MIN_CALLS || performance.now() < deadline; i++) {
    const statement = statements[i % VARIANTS];
    const t0 = process.hrtime.bigint();
    findings = sqlInjection.detect(statement, inputs).length;
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { p50: at(0.5), p99: at(0.99), calls: samples.length, findings };
}

console.log(`node ${process.version}, sql-injection detector, µs per statement`);
console.log('dialect   size   inputs  matching  findings   calls      p50 µs    p99 µs');
for (const dialect of ['postgres', 'mysql']) {
  for (const size of SIZES) {
    for (const inputCount of INPUT_COUNTS) {
      const s = scenario(size, inputCount, dialect);
      const r = measure(s);
      console.log(
        [
          dialect.padEnd(8),
          String(s.length).padStart(5),
          String(inputCount).padStart(7),
          String(s.matching).padStart(9),
          String(r.findings).padStart(9),
          String(r.calls).padStart(7),
          r.p50.toFixed(1).padStart(11),
          r.p99.toFixed(1).padStart(9),
        ].join(' '),
      );
    }
  }
}
