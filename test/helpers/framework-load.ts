/**
 * Interleaved load against one framework app (frameworks-more.cjs or the Next.js app): N requests in flight at
 * once, attacks and benign requests alternating, each in a different input position, and the per-request
 * oracles of test/e2e/frameworks-concurrency.test.ts. Returns what went wrong (empty when nothing did).
 */
import { readFileSync, existsSync } from 'node:fs';
import { call, type Reply, type RunningApp } from './app.js';
import { StatementLog } from './db.js';

const enc = encodeURIComponent;

export interface LoadOptions {
  readonly n: number;
  readonly graphql: boolean;
  /** REST route prefix: `${prefix}/:name`, `${prefix}?name=`, POST `${prefix}`. */
  readonly prefix?: string;
  /** The app's STEPGUARD_FINDINGS_FILE: the finding behind each 403 is looked up there by incident id. */
  readonly findingsFile: string;
}

interface Planned {
  readonly rid: number;
  /** How the app marks this request's statement: `/* rid <app pid>-<rid> *\/`, apart from other apps' statements. */
  readonly marker: string;
  readonly attack: boolean;
  readonly name: string;
  readonly send: () => Promise<Reply>;
}

/** Request i: even ones attack, odd ones are benign; the input position rotates through the framework's forms. */
function plan(app: RunningApp, graphql: boolean, rid: number, prefix: string): Planned {
  const attack = rid % 2 === 0;
  const name = attack ? `x${rid}' OR '1'='1` : rid % 3 === 0 ? 'alice' : `nobody${rid}`;
  const headers = { 'x-rid': String(rid), 'x-user': `u${rid}` };
  const form = Math.floor(rid / 2) % 3;
  const marker = `/* rid ${app.child.pid}-${rid} */`;
  let send: () => Promise<Reply>;
  if (graphql) {
    const query = 'query Find($n: String!) { users(name: $n) { id name } }';
    send = [
      () => call(app, 'POST', '/graphql', { body: { query: `{ users(name: ${JSON.stringify(name)}) { id name } }` }, headers }),
      () => call(app, 'POST', '/graphql', { body: { query, variables: { n: name } }, headers }),
      () => call(app, 'GET', `/graphql?query=${enc(query)}&variables=${enc(JSON.stringify({ n: name }))}`, { headers: { ...headers, 'apollo-require-preflight': '1' } }),
    ][form]!;
  } else {
    send = [
      () => call(app, 'GET', `${prefix}/${enc(name)}`, { headers }),
      () => call(app, 'GET', `${prefix}?name=${enc(name)}`, { headers }),
      () => call(app, 'POST', prefix, { body: { name }, headers }),
    ][form]!;
  }
  return { rid, marker, attack, name, send };
}

type Finding = Record<string, unknown>;

/** Incidents where request input also occurred inside a comment of the statement (so the span redacted it). */
const commentRedacted = new Set<string>();

async function findingsFor(file: string, incidents: readonly string[]): Promise<Map<string, Finding>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const byIncident = new Map<string, Finding>();
    if (existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (!line) continue;
        const f = JSON.parse(line) as Finding;
        if (f['stepguard.reason'] === 'in-comment' && typeof f['stepguard.incident_id'] === 'string') commentRedacted.add(f['stepguard.incident_id']);
        // One refused call can carry several findings (the attack, and inputs seen verbatim): keep the attack.
        if (f.event === 'finding' && typeof f['stepguard.incident_id'] === 'string' && (f['stepguard.kind'] === 'attack' || !byIncident.has(f['stepguard.incident_id']))) byIncident.set(f['stepguard.incident_id'], f);
      }
    }
    if (incidents.every((id) => byIncident.has(id)) || Date.now() > deadline) return byIncident;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function interleavedLoad(app: RunningApp, options: LoadOptions): Promise<{ problems: string[]; refused: number }> {
  const { n: N, graphql, findingsFile } = options;
  const prefix = options.prefix ?? '/find';
  const log = new StatementLog('pg');
  log.mark();
  const planned = Array.from({ length: N }, (_, i) => plan(app, graphql, i, prefix));
const replies = await Promise.all(planned.map((p) => p.send()));
    const statements = log.since();

    const problems: string[] = [];
    const incidents = new Map<string, Planned>();
    planned.forEach((p, k) => {
      const reply = replies[k]!;
      const ran = statements.split(p.marker).length - 1;
      if (p.attack) {
        const body = safeJson(reply.text) as { status?: number; instance?: string } | undefined;
        if (reply.status !== 403 || reply.headers.get('content-type') !== 'application/problem+json' || body?.status !== 403) problems.push(`rid ${p.rid} (attack): ${reply.status} ${reply.text.slice(0, 120)}`);
        else incidents.set(String(body.instance).replace('urn:stepguard:incident:', ''), p);
        if (ran !== 0) problems.push(`rid ${p.rid} (attack): ${ran} statement(s) reached the database`);
      } else {
        const rows = p.name === 'alice' ? [{ id: 1, name: 'alice' }] : [];
        const expected = graphql ? { data: { users: rows } } : { rid: String(p.rid), rows };
        const got = safeJson(reply.text);
        if (reply.status !== 200 || JSON.stringify(got) !== JSON.stringify(expected)) problems.push(`rid ${p.rid} (benign): ${reply.status} ${reply.text.slice(0, 120)}`);
        if (ran !== 1) problems.push(`rid ${p.rid} (benign): ${ran} statements ran, expected 1`);
      }
    });
    if (statements.includes("OR '1'='1")) problems.push('an attack statement reached the database');

    const findings = await findingsFor(findingsFile, [...incidents.keys()]);
    for (const [incident, p] of incidents) {
      const f = findings.get(incident);
      if (!f) {
        problems.push(`rid ${p.rid}: no finding for incident ${incident}`);
        continue;
      }
      // The finding names the request: its statement, its user, its input.
      // The marker is a comment: when some request value (a header such as content-length) happens to occur in it
      // (the pid's digits), the span redacts that comment, so the statement is then told by the user and the path.
      if (!String(f['db.query.text']).includes(p.marker) && !commentRedacted.has(incident)) problems.push(`rid ${p.rid}: finding judged another statement: ${String(f['db.query.text'])}`);
      if (f['user.id'] !== `u${p.rid}`) problems.push(`rid ${p.rid}: finding names user ${String(f['user.id'])}`);
      if (f['stepguard.kind'] !== 'attack' || f['stepguard.outcome'] !== 'blocked') problems.push(`rid ${p.rid}: finding ${String(f['stepguard.kind'])}/${String(f['stepguard.outcome'])}`);
    }
    // Every other finding (vulnerability reports of benign requests) also belongs to the request it names.
    for (const f of findings.values()) {
      const rid = /\/\* rid \d+-(\d+) \*\//.exec(String(f['db.query.text']))?.[1];
      if (rid !== undefined && f['user.id'] !== `u${rid}`) problems.push(`finding for statement of rid ${rid} names user ${String(f['user.id'])}`);
    }
    return { problems, refused: incidents.size };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
