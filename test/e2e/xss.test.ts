/**
 * End-to-end reflected XSS: an Express app that echoes input into HTML in every context (text, quoted and
 * unquoted attributes, href, a <script> string, an onclick handler, a streamed response, an EJS template, a
 * JSON-posted comment written as a Buffer).
 *
 * "The attack works" is shown the way a browser would: the page is parsed with parse5 and every script it would
 * run (script bodies, on* handlers, javascript: URLs) is executed in a sandbox whose `alert` records its argument
 * — without the agent, the case's unique marker is alerted. With the agent in block mode the request gets the
 * standard 403 (or, for a response already streaming, the page is cut before the chunk) and the marker never
 * reaches the client. Benign inputs get byte-identical pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInNewContext } from 'node:vm';
import { randomBytes } from 'node:crypto';
import { parse } from 'parse5';
import { fixture, startApp, type RunningApp } from '../helpers/app.js';
import { readCorpus } from '../helpers/corpus.js';

interface Case {
  route: string;
  param: string;
  value: string;
  note?: string;
}

const attacks = readCorpus<Case>('xss.attack.jsonl');
const benign = readCorpus<Case>('xss.benign.jsonl');
const env = { STEPGUARD_RULES: '' };
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  [bare, guarded] = await Promise.all([
    startApp(fixture('xss-app.cjs'), { agent: false, env }),
    startApp(fixture('xss-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
});

interface Answer {
  status: number;
  contentType: string | null;
  body: string;
  /** The connection was cut before the body ended. */
  cut: boolean;
}

async function send(app: RunningApp, c: Case, value: string): Promise<Answer> {
  const res =
    c.route === '/comment'
      ? await fetch(`${app.url}${c.route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ [c.param]: value }) })
      : await fetch(`${app.url}${c.route}?${new URLSearchParams({ [c.param]: value }).toString()}`);
  try {
    return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text(), cut: false };
  } catch {
    return { status: res.status, contentType: res.headers.get('content-type'), body: '', cut: true };
  }
}

interface Node {
  nodeName: string;
  attrs?: { name: string; value: string }[];
  childNodes?: Node[];
  value?: string;
  content?: Node;
}

const URL_ATTRIBUTES = new Set(['href', 'src', 'action', 'formaction']);

/** What a browser would alert when it loads the page (and the user hovers, focuses, clicks). */
function alerted(html: string): string[] {
  const calls: string[] = [];
  const run = (code: string) => {
    try {
      runInNewContext(code, { alert: (m: unknown) => calls.push(String(m)), select: () => undefined, document: {} }, { timeout: 1000 });
    } catch {
      // a script that throws after (or instead of) alerting
    }
  };
  const visit = (node: Node) => {
    if (node.nodeName === 'script') run((node.childNodes ?? []).map((c) => c.value ?? '').join(''));
    for (const a of node.attrs ?? []) {
      if (a.name.startsWith('on')) run(a.value);
      const url = a.value.replace(/[\u0000-\u0020]/g, '');
      if (URL_ATTRIBUTES.has(a.name) && /^javascript:/i.test(url)) run(decodeURIComponent(url.slice('javascript:'.length)));
    }
    for (const child of node.childNodes ?? []) visit(child);
    if (node.content) visit(node.content);
  };
  visit(parse(html) as unknown as Node);
  return calls;
}

describe('xss corpus', () => {
  it('has attacks and benign cases', () => {
    expect(attacks.length).toBeGreaterThanOrEqual(20);
    expect(benign.length).toBeGreaterThanOrEqual(30);
  });
});

describe.each(attacks)('attack $route $param ($note)', (c) => {
  it('runs script in the page without the agent, and is refused with it', async () => {
    const marker = `XSS-${randomBytes(4).toString('hex')}`;
    const value = c.value.split('{M}').join(marker);
    const plain = await send(bare, c, value);
    expect(plain.status).toBe(200);
    expect(alerted(plain.body)).toContain(marker);

    const withAgent = await send(guarded, c, value);
    expect(withAgent.body).not.toContain(marker);
    if (c.route === '/stream') {
      // Headers and the first chunk were already on the wire: the page is cut where the chunk would go.
      expect(withAgent.cut || !withAgent.body.includes('</body>')).toBe(true);
    } else {
      expect(withAgent.status).toBe(403);
      expect(withAgent.contentType).toBe('application/problem+json');
      expect(Object.keys(JSON.parse(withAgent.body) as object).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
    }
  });
});

describe.each(benign)('benign $route $param=$value', (c) => {
  it('gets the same page with and without the agent', async () => {
    const [plain, withAgent] = await Promise.all([send(bare, c, c.value), send(guarded, c, c.value)]);
    expect(plain.status).toBe(200);
    expect(withAgent.status).toBe(200);
    expect(withAgent.body).toBe(plain.body);
    if (plain.contentType?.startsWith('text/html')) expect(alerted(plain.body)).toEqual([]);
  });
});
