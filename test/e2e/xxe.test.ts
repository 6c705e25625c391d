/**
 * End-to-end: XXE through libxmljs2 (issue #12 B3). libxmljs2 is a native addon built into test/xxe/node_modules
 * by `npm run test:all` (about 3 minutes with parallel jobs), for the Node line that runs the main suite: the
 * Node 22/24 end-to-end passes leave this file out (the addon is built for one ABI; the hook is plain
 * JavaScript). Each attack reads a local file without the agent (its content comes back in the response) and
 * gets the standard 403 with it; benign documents, internal entities and a parse without entity substitution
 * answer the same either way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, fixture, logged, startBareAndGuarded, type RunningApp } from '../helpers/app.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-xxe-'));
const secretFile = join(dir, 'secret.txt');
const SECRET = `secret-${process.pid}-${Date.now()}`;
writeFileSync(secretFile, SECRET);
// A DTD on disk that defines the entity: a parameter entity pulls it in (the classic out-of-band shape).
const dtdFile = join(dir, 'evil.dtd');
writeFileSync(dtdFile, `<!ENTITY x SYSTEM "file://${secretFile}">`);

let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  ({ bare, guarded } = await startBareAndGuarded(fixture('xxe-app.cjs')));
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const ATTACKS: Array<{ name: string; route: '/upload' | '/import'; xml: string }> = [
  { name: 'external general entity (SYSTEM file URL)', route: '/upload', xml: `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://${secretFile}">]><r>&x;</r>` },
  { name: 'external entity with a PUBLIC id', route: '/upload', xml: `<!DOCTYPE r [<!ENTITY x PUBLIC "-//evil//x" "file://${secretFile}">]><r>&x;</r>` },
  { name: 'a plain path as the system id', route: '/upload', xml: `<!DOCTYPE r [<!ENTITY x SYSTEM "${secretFile}">]><r>&x;</r>` },
  { name: 'parameter entity loading a DTD that defines the entity', route: '/import', xml: `<!DOCTYPE r [<!ENTITY % p SYSTEM "file://${dtdFile}"> %p;]><r>&x;</r>` },
  { name: 'external entity in a JSON field', route: '/import', xml: `<!DOCTYPE r [<!ENTITY x SYSTEM "file://${secretFile}">]><r>&x;</r>` },
];

const send = (app: RunningApp, route: string, xml: string) =>
  route === '/upload' ? call(app, 'POST', route, { raw: xml, headers: { 'content-type': 'application/xml' } }) : call(app, 'POST', route, { body: { xml } });

describe('XXE through libxmljs2', () => {
  it.each(ATTACKS)('$name: reads the file without the agent; 403 with it', async ({ route, xml }) => {
    const plain = await send(bare, route, xml);
    expect(plain.text).toContain(SECRET);
    const reply = await send(guarded, route, xml);
    expect(reply.status).toBe(403);
    expect(reply.headers.get('content-type')).toBe('application/problem+json');
    expect(reply.text).not.toContain(SECRET);
  });

  it('the refusal is reported as an XXE attack without the file content', async () => {
    await logged(guarded, /attack xxe blocked .* POST \/(upload|import)/);
    expect(guarded.stderr()).not.toContain(SECRET);
  });

  it.each([
    ['/upload', '<r>plain text</r>'],
    ['/upload', '<?xml version="1.0" encoding="UTF-8"?><r a="1"><c>nested</c></r>'],
    ['/upload', '<!DOCTYPE r [<!ENTITY n "an internal entity">]><r>&n;</r>'],
    ['/import', '<!DOCTYPE r [<!ELEMENT r (#PCDATA)>]><r>declared</r>'],
    ['/safe', `<!DOCTYPE r [<!ENTITY x SYSTEM "file://${secretFile}">]><r>&x;</r>`],
  ])('%s %s: answered the same with and without the agent', async (route, xml) => {
    const [plain, reply] = await Promise.all([send(bare, route, xml), send(guarded, route, xml)]);
    expect(reply.status).toBe(plain.status);
    expect(reply.text).toBe(plain.text);
    expect(reply.text).not.toContain(SECRET);
  });
});
