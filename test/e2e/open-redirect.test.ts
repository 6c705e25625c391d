/**
 * End-to-end open redirect: an Express app that redirects to where the request says (Express `res.redirect`,
 * plain `writeHead`, `setHeader` after the app decodes once more). Without the agent every attack in the
 * corpus answers 3xx with a Location a browser resolves to `evil.example`; in block mode it answers the
 * standard 403 problem+json. Benign redirects (relative paths, the app's own origin, a partner the app fixed,
 * an allow-listed domain) get exactly the same answer with and without the agent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, startApp, type RunningApp } from '../helpers/app.js';
import { readCorpus } from '../helpers/corpus.js';

interface Case {
  route: string;
  param: string;
  value: string;
  note?: string;
}

const attacks = readCorpus<Case>('open-redirect.attack.jsonl');
const benign = readCorpus<Case>('open-redirect.benign.jsonl');
const env = { STEPGUARD_RULES: '', STEPGUARD_REDIRECT_ALLOW: '*.partner.example' };
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  [bare, guarded] = await Promise.all([
    startApp(fixture('redirect-app.cjs'), { agent: false, env }),
    startApp(fixture('redirect-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
});

interface Answer {
  status: number;
  location: string | null;
  contentType: string | null;
  body: string;
}

async function send(app: RunningApp, c: Case): Promise<Answer> {
  const value = c.value.replace('{APP}', String(app.port));
  // The query is built by hand so that percent-encoded payloads arrive as written.
  const query = c.route === '/set' ? `${c.param}=${encodeURIComponent(value)}` : new URLSearchParams({ [c.param]: value }).toString();
  const res = await fetch(`${app.url}${c.route}?${query}`, { redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), contentType: res.headers.get('content-type'), body: await res.text() };
}

/** Where a browser on the app's page goes. */
function destination(app: RunningApp, location: string | null): string | undefined {
  if (location === null) return undefined;
  try {
    return new URL(location, `${app.url}/`).hostname;
  } catch {
    return undefined;
  }
}

describe('open redirect corpus', () => {
  it('has attacks and benign cases', () => {
    expect(attacks.length).toBeGreaterThanOrEqual(15);
    expect(benign.length).toBeGreaterThanOrEqual(15);
  });
});

describe.each(attacks)('attack $route $param=$value ($note)', (c) => {
  it('sends the browser to evil.example without the agent', async () => {
    const answer = await send(bare, c);
    expect(answer.status).toBeGreaterThanOrEqual(300);
    expect(answer.status).toBeLessThan(400);
    expect(destination(bare, answer.location)).toBe('evil.example');
  });

  it('is refused with the standard 403 in block mode', async () => {
    const answer = await send(guarded, c);
    expect(answer.status).toBe(403);
    expect(answer.contentType).toBe('application/problem+json');
    expect(answer.location).toBeNull();
    expect(Object.keys(JSON.parse(answer.body) as object).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
  });
});

describe.each(benign)('benign $route $param=$value', (c) => {
  it('answers exactly as without the agent', async () => {
    const [plain, withAgent] = await Promise.all([send(bare, c), send(guarded, c)]);
    expect(withAgent.status).toBe(plain.status);
    expect(plain.status).toBe(302);
    expect(withAgent.location?.replace(String(guarded.port), 'PORT')).toBe(plain.location?.replace(String(bare.port), 'PORT'));
  });
});
