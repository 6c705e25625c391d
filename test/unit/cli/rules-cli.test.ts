/**
 * The `stepguard rules …` commands as a user runs them: exit codes, readable output, --json, and the
 * published JSON Schema agreeing with the loader.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { parse } from 'yaml';
import Ajv from 'ajv';
import { main } from '../../../src/cli/main.js';

const REPO = resolve(__dirname, '../../..');
const SHIPPED = join(REPO, 'rules');

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  return runWith({}, ...argv);
}

async function runWith(env: Record<string, string>, ...argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  const code = await main(argv, { ...process.env, STEPGUARD_RULES: '', ...env }, sink);
  return { code, out };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'sg-cli-'));

describe('stepguard rules test', () => {
  it('passes on every shipped rule, and every shipped rule has examples', async () => {
    const { code, out } = await run('rules', 'test', SHIPPED, '--require-examples');
    expect(out).not.toContain('✗');
    expect(out).toMatch(/\d+ passed, 0 failed/);
    expect(code).toBe(0);
  });

  it('fails with a readable diff when an example does not hold', async () => {
    const file = join(tmp(), 'broken.yaml');
    writeFileSync(
      file,
      [
        'ruleset: mine',
        'rules:',
        '  - id: my-sqli',
        '    title: t',
        '    category: injection',
        '    detector: sql-injection',
        '    action: block',
        '    examples:',
        '      - event: { kind: sql, sql: "SELECT 1 FROM t WHERE a = $1" }',
        '        inputs: { query.a: "x" }',
        '        expect: match',
        '',
      ].join('\n'),
    );
    const { code, out } = await run('rules', 'test', file);
    expect(code).toBe(1);
    expect(out).toContain(`✗ my-sqli: match — ${file}:9`);
    expect(out).toContain('- expected: match');
    expect(out).toContain('+ actual:   no match');
    expect(out).toContain('0 passed, 1 failed');
    const json = JSON.parse((await run('rules', 'test', file, '--json')).out) as { ok: boolean; examples: Array<{ passed: boolean }> };
    expect(json.ok).toBe(false);
    expect(json.examples[0]!.passed).toBe(false);
  });
});

describe('stepguard rules lint / explain', () => {
  it('lint: exit 0 on the shipped rules, exit 1 with file:line:column on a broken file', async () => {
    expect((await run('rules', 'lint')).code).toBe(0);
    const file = join(tmp(), 'bad.yaml');
    writeFileSync(file, 'rules:\n  - id: x\n    title: t\n    category: c\n    detectr: sql-injection\n    action: block\n');
    const { code, out } = await run('rules', 'lint', file);
    expect(code).toBe(1);
    expect(out).toContain(`${file}:5:5: rules[0].detectr: unknown field (did you mean "detector"?)`);
  });

  it('explain: shows the token spans an input covers, the finding and the decision', async () => {
    const { code, out } = await run('rules', 'explain', '--sql', "SELECT * FROM t WHERE a = '' OR '1'='1'", '--input', "query.a=' OR '1'='1");
    expect(code).toBe(0);
    expect(out).toContain(`input query.a = "' OR '1'='1"`);
    expect(out).toContain('occurs at 27..38, covering 5 token(s): string "\'\'", keyword "OR", string "\'1\'", operator "=", string "\'1\'"');
    expect(out).toContain('attack sql-injection (breaks-literal) from query.a');
    expect(out).toContain('decision: block (rule sql-injection)');
    const json = JSON.parse((await run('rules', 'explain', '--command', 'echo a; id', '--input', 'body.x=a; id', '--json')).out) as { action: string; findings: unknown[] };
    expect(json.action).toBe('block');
    expect(json.findings).toHaveLength(1);
  });

  it('explain judges shell input like the agent: more words are a vulnerability, a dangerous option an attack', async () => {
    const words = await run('rules', 'explain', '--command', 'echo hello world #tag', '--input', 'body.m=hello world #tag', '--input', 'path.0=echo');
    expect(words.out).toContain('vulnerability command-injection (comment) from body.m');
    expect(words.out).not.toContain('attack');
    expect(words.out).toContain('decision: monitor');
    const option = JSON.parse((await run('rules', 'explain', '--command', 'find . -name x -delete', '--input', 'query.n=x -delete', '--json')).out) as { action: string };
    expect(option.action).toBe('block');
  });

  it('explain judges like the agent: a URL path segment equal to a table, a key equal to a column are no finding', async () => {
    const statement = 'SELECT id, name FROM users WHERE name = $1';
    const coincidence = JSON.parse((await run('rules', 'explain', '--sql', statement, '--input', 'path.0=users', '--input', 'key:query.name=name', '--json')).out) as {
      findings: unknown[];
      action: string;
      inputs: Array<{ path: string; occurrences: unknown[] }>;
    };
    expect(coincidence.inputs.map((i) => [i.path, i.occurrences.length])).toEqual([['path.0', 1], ['query.name', 2]]);
    expect(coincidence.findings).toEqual([]);
    expect(coincidence.action).toBe('monitor');
    // The same words as query values: the app concatenated them, a vulnerability.
    const flow = JSON.parse((await run('rules', 'explain', '--sql', statement, '--input', 'query.t=users', '--json')).out) as { findings: Array<{ kind: string }> };
    expect(flow.findings).toEqual([expect.objectContaining({ kind: 'vulnerability' })]);
  });

  it('rules test runs examples through the same judge: su -c is a shell, a path segment is no flow', async () => {
    const dir = tmp();
    const file = join(dir, 'parity.yaml');
    writeFileSync(
      file,
      [
        'ruleset: parity',
        'version: "1"',
        'rules:',
        '  - id: parity-command',
        '    title: t',
        '    category: c',
        '    detector: command-injection',
        '    action: block',
        '    examples:',
        '      - event: { kind: exec, file: su, args: ["-c", "echo hi; id"] }',
        '        inputs: { query.q: "hi; id" }',
        '        expect: match',
        '      - event: { kind: exec, file: echo, args: ["hi; id"] }',
        '        inputs: { query.q: "hi; id" }',
        '        expect: no_match',
        '  - id: parity-sql-vulnerability',
        '    title: t',
        '    category: c',
        '    detector: sql-injection',
        '    on: vulnerability',
        '    action: monitor',
        '    examples:',
        '      - event: { kind: sql, sql: "SELECT id FROM users WHERE id = $1" }',
        '        inputs: { path.0: users }',
        '        expect: no_match',
        '      - event: { kind: sql, sql: "SELECT id FROM users WHERE id = $1" }',
        '        inputs: { query.table: users }',
        '        expect: match',
        '',
      ].join('\n'),
    );
    const { code, out } = await run('rules', 'test', file);
    expect(out).toContain('4 passed, 0 failed');
    expect(code).toBe(0);
  });

  it('usage errors exit 2 with help', async () => {
    expect((await run('rules', 'explain')).code).toBe(2);
    expect((await run('rules', 'nope')).code).toBe(2);
    expect((await run('nope')).code).toBe(2);
    const help = await run('--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('rules test');
  });
});

describe('the published JSON Schema', () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync(join(SHIPPED, 'schema.json'), 'utf8')) as object);
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : /\.ya?ml$/.test(n) ? [join(dir, n)] : []));

  it('accepts every shipped rule file and the examples', () => {
    for (const file of [...files(SHIPPED), join(REPO, 'examples/bank/rules.yaml')]) {
      expect(validate(parse(readFileSync(file, 'utf8'))), `${file}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
  });

  it('rejects what the loader rejects', () => {
    const base = { id: 'x', title: 't', category: 'c' };
    expect(validate({ rules: [{ ...base, detector: 'sql-injection', action: 'blok' }] })).toBe(false);
    expect(validate({ rules: [{ ...base, detector: 'sql-injection', action: 'block', acton: 1 }] })).toBe(false);
    expect(validate({ rules: [{ ...base, when: { sink: 'sql' }, action: 'step_up', step_up: {} }] })).toBe(false);
    expect(validate({ rules: [{ ...base, detector: 'sql-injection', when: { sink: 'sql' }, action: 'block' }] })).toBe(false);
    expect(validate({ rules: [{ ...base, id: 'Bad Id', detector: 'sql-injection', action: 'block' }] })).toBe(false);
  });
});

describe('stepguard doctor', () => {
  it('says where spans are exported from', async () => {
    const threaded = await runWith({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, 'doctor', '--dir', REPO);
    expect(threaded.out).toContain('telemetry: otlp http/protobuf → http://127.0.0.1:4318 (from the export thread)');
    const inApp = await runWith({ STEPGUARD_EXPORT_THREAD: 'false' }, 'doctor', '--json', '--dir', REPO);
    expect((JSON.parse(inApp.out) as { telemetry: { exportThread: boolean } }).telemetry.exportThread).toBe(false);
  });

  it('reports protected, unsupported and missing modules, the rules, and fails when something would run unprotected', async () => {
    const ok = JSON.parse((await run('doctor', '--json', '--dir', REPO)).out) as { ok: boolean; modules: Array<{ module: string; state: string; version?: string }>; rules: unknown[] };
    expect(ok.ok).toBe(true);
    expect(ok.modules).toContainEqual(expect.objectContaining({ module: 'pg', state: 'protected' }));
    expect(ok.modules).toContainEqual(expect.objectContaining({ module: 'child_process', state: 'builtin' }));
    expect(ok.rules.length).toBeGreaterThan(5);

    const old = await run('doctor', '--dir', join(REPO, 'test/versions/mysql2-0.15.8'));
    expect(old.code).toBe(1);
    expect(old.out).toContain('✗ mysql2@0.15.8 — unsupported (supported >=1.0.0 <4)');
  });

  it('names the ORMs, promise libraries and pools installed and whether their context propagation is covered', async () => {
    const seq4 = await run('doctor', '--dir', join(REPO, 'test/stacks/sequelize-4'));
    expect(seq4.out).toContain('ORMs, promise libraries and pools (request context carried across their queues):');
    expect(seq4.out).toMatch(/✓ sequelize@4\.44\.4 \(ORM\) — propagation covered: /);
    expect(seq4.out).toMatch(/✓ bluebird@3\.\d+\.\d+ \(promise library\) — propagation covered: hook/);
    expect(seq4.out).toMatch(/✓ generic-pool@3\.5\.0 \(pool\) — propagation covered/);

    const root = JSON.parse((await run('doctor', '--json', '--dir', REPO)).out) as { stacks: Array<{ module: string; propagation: string; version: string }> };
    expect(root.stacks.map((s) => s.module)).toEqual(expect.arrayContaining(['sequelize', 'knex', 'objection', 'bluebird', 'tarn']));
    for (const s of root.stacks) expect(s.propagation, `${s.module}@${s.version}`).toBe('covered');

    // A version outside the covered range is named, not claimed.
    const { recognisedStacks } = (await import('../../../src/stacks.js')) as typeof import('../../../src/stacks.js');
    const found = recognisedStacks(join(REPO, 'test/stacks/old-queues'), [{ module: 'bluebird', kind: 'promise library', covered: '>=3 <4', how: 'test' }]);
    expect(found).toEqual([expect.objectContaining({ module: 'bluebird', version: '2.11.0', isCovered: false })]);
  });
});
