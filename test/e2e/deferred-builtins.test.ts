/**
 * Builtins an app may never load (http, https, child_process, vm, crypto, fs/promises) are patched when the app first
 * reaches them, where Node has in-thread module hooks (`module.registerHooks`: Node 22.15+, 24): not loaded
 * at start, patched before `require`, `import` (named exports included) or `process.getBuiltinModule` hands
 * them over. Elsewhere (Node 20) they are patched at start. Both are checked on whichever Node runs the suite
 * (SG_NODE_BINARY: the CI runs test/e2e under Node 22 and 24 too).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REGISTER, REPO } from '../helpers/app.js';
import { loadConfig } from '../../src/config.js';

const NODE = process.env.SG_NODE_BINARY ?? process.execPath;
const DIR = mkdtempSync(join(tmpdir(), 'sg-deferred-'));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));
let scripts = 0;

/** A script file, not `node -e`: on Node 24 `-e` itself loads crypto. */
function scriptFile(text: string, ext = 'cjs'): string {
  const file = join(DIR, `script-${++scripts}.${ext}`);
  writeFileSync(file, text.replaceAll("'./dist/", `'${REPO}/dist/`));
  return file;
}
const DEFERRED = ['http', 'https', 'child_process', 'vm', 'crypto', 'fs/promises'];

function run(args: string[], extraEnv: Record<string, string> = {}): Promise<{ out: Record<string, unknown>; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      NODE,
      args,
      { cwd: REPO, env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', STEPGUARD_RULES: '', STEPGUARD_MODE: 'block', STEPGUARD_LOG_FINDINGS: 'false', ...extraEnv } },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`${error.message}\n${stderr}`));
        try {
          resolve({ out: JSON.parse(stdout) as Record<string, unknown>, stderr });
        } catch {
          reject(new Error(`not JSON: ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

const COMMON = `
  const loaded = (id) => process.moduleLoadList.includes('NativeModule ' + id);
  const { isWrapped } = require('./dist/src/instrument/wrap.js');
  const { deferredBuiltins } = require('./dist/src/instrument/install.js');
  const canDefer = typeof require('node:module').registerHooks === 'function';
  const atStart = { loaded: ${JSON.stringify(DEFERRED)}.filter(loaded), pending: [...deferredBuiltins()].sort() };
`;

describe('builtins the app may never load', () => {
  it('are not loaded at start where Node can defer them, and each is patched at its first require, import or getBuiltinModule', async () => {
    const script = `${COMMON}
      (async () => {
        const cp = require('node:child_process');
        const afterRequire = { exec: isWrapped(cp.exec), spawnSync: isWrapped(cp.spawnSync), vmLoaded: loaded('vm') };
        const vm = process.getBuiltinModule ? process.getBuiltinModule('vm') : require('vm');
        const afterGetBuiltin = { runInNewContext: isWrapped(vm.runInNewContext) };
        const https = await import('node:https');
        const http = require('node:http');
        const afterImport = {
          request: isWrapped(https.request) && https.request === https.default.request,
          server: isWrapped(https.Server.prototype.emit),
          // an https server's responses are http's: its response checks come with it
          responses: isWrapped(http.ServerResponse.prototype.writeHead) && isWrapped(http.ServerResponse.prototype.end),
        };
        const { createHash } = await import('node:crypto');
        const { exec } = await import('node:child_process');
        const { readFile } = await import('node:fs/promises');
        process.stdout.write(JSON.stringify({
          canDefer, atStart, afterRequire, afterGetBuiltin, afterImport,
          named: { createHash: isWrapped(createHash), exec: exec === cp.exec, readFile: isWrapped(readFile) && readFile === require('node:fs').promises.readFile },
          pendingAtEnd: deferredBuiltins(),
        }));
      })();
    `;
    const { out } = await run(['--require', REGISTER, scriptFile(script)]);
    if (out.canDefer) {
      // tls and crypto come with https; none of them is loaded by the agent itself.
      expect(out.atStart).toEqual({ loaded: [], pending: [...DEFERRED].sort() });
      expect(out.afterRequire).toEqual({ exec: true, spawnSync: true, vmLoaded: false });
    } else {
      expect(out.atStart).toEqual({ loaded: DEFERRED, pending: [] });
      expect(out.afterRequire).toEqual({ exec: true, spawnSync: true, vmLoaded: true });
    }
    expect(out.afterGetBuiltin).toEqual({ runInNewContext: true });
    expect(out.afterImport).toEqual({ request: true, server: true, responses: true });
    expect(out.named).toEqual({ createHash: true, exec: true, readFile: true });
    // Once every deferred builtin is patched, the resolve hook is gone.
    expect(out.pendingAtEnd).toEqual([]);
  });

  it('refuses an attack through a builtin first reached in the middle of a request, by each route in', async () => {
    const script = `
      const { runWithContext } = require('./dist/src/index.js');
      const attack = 'x; echo INJECTED';
      const outcome = (fn) => { try { return String(fn()).trim(); } catch (e) { return /refused|stepguard/i.test(String(e && e.message)) ? 'refused' : 'error: ' + e.message; } };
      (async () => {
        const viaGetBuiltin = runWithContext({ url: '/?q=' + encodeURIComponent(attack) }, () =>
          outcome(() => (process.getBuiltinModule ? process.getBuiltinModule('node:child_process') : require('child_process')).execSync('echo ' + attack)));
        const { execSync } = await import('node:child_process');
        const viaImport = runWithContext({ url: '/?q=' + encodeURIComponent(attack) }, () => outcome(() => execSync('echo ' + attack)));
        const benign = runWithContext({ url: '/?q=hello' }, () => outcome(() => execSync('echo hello')));
        process.stdout.write(JSON.stringify({ viaGetBuiltin, viaImport, benign }));
      })();
    `;
    const { out } = await run(['--require', REGISTER, scriptFile(script)]);
    expect(out).toEqual({ viaGetBuiltin: 'refused', viaImport: 'refused', benign: 'hello' });
  });

  it('covers an ES module whose only route to a builtin is a static named import', async () => {
    const file = scriptFile(
      `import { execSync } from 'node:child_process';
       import { createRequire } from 'node:module';
       const require = createRequire(import.meta.url);
       const { runWithContext } = require('./dist/src/index.js');
       const { isWrapped } = require('./dist/src/instrument/wrap.js');
       const attack = 'x; echo INJECTED';
       let outcome;
       try { outcome = String(runWithContext({ url: '/?q=' + encodeURIComponent(attack) }, () => execSync('echo ' + attack))); } catch (e) { outcome = 'refused: ' + /stepguard|refused/i.test(e.message); }
       process.stdout.write(JSON.stringify({ wrapped: isWrapped(execSync), outcome }));`,
      'mjs',
    );
    for (const preload of [['--require', REGISTER], ['--import', join(REPO, 'dist/src/register-esm.mjs')]]) {
      const { out } = await run([...preload, file]);
      expect(out, preload.join(' ')).toEqual({ wrapped: true, outcome: 'refused: true' });
    }
  });

  it('fs.promises is loaded at its first read, not at start, and patched before the reader gets it', async () => {
    const script = `${COMMON}
      const fs = require('node:fs');
      const { runWithContext } = require('./dist/src/index.js');
      const attack = '../../../../../../etc/passwd';
      (async () => {
        const beforeRead = loaded('internal/fs/promises');
        // First read inside a request, by a path traversal: refused like any fs.promises call.
        const outcome = await runWithContext({ url: '/?file=' + encodeURIComponent(attack) }, () =>
          fs.promises.readFile(__dirname + '/' + attack, 'utf8').then(() => 'read', (e) => (/stepguard|refused/i.test(String(e && e.message)) ? 'refused' : 'error: ' + e.message)));
        const benign = await runWithContext({ url: '/?file=script' }, () => fs.promises.readFile(__filename, 'utf8').then((t) => t.includes('fs.promises'), (e) => 'error: ' + e.message));
        const descriptor = Object.getOwnPropertyDescriptor(fs, 'promises');
        process.stdout.write(JSON.stringify({
          canDefer, beforeRead, outcome, benign,
          patched: isWrapped(fs.promises.readFile) && isWrapped(fs.promises.open) && isWrapped(fs.promises.watch),
          sameObject: fs.promises === require('node:fs/promises'),
          // Node's own getter is back after the first read: enumerable, configurable, and no work of the agent's per read.
          property: { enumerable: descriptor.enumerable, configurable: descriptor.configurable, getter: typeof descriptor.get, ours: /patchPromises/.test(String(descriptor.get)) },
        }));
      })();
    `;
    const { out } = await run(['--require', REGISTER, scriptFile(script)]);
    expect(out.beforeRead).toBe(!out.canDefer);
    expect(out).toMatchObject({ outcome: 'refused', benign: true, patched: true, sameObject: true });
    expect(out.property).toEqual({ enumerable: true, configurable: true, getter: 'function', ours: false });
  });

  it('a builtin the process loaded before the agent started is patched at start, with what it brings along', async () => {
    const before = scriptFile("require('node:https');");
    const { out } = await run(['--require', before, '--require', REGISTER, scriptFile(`${COMMON}
      const https = require('node:https');
      const http = require('node:http');
      process.stdout.write(JSON.stringify({
        pending: atStart.pending,
        https: isWrapped(https.request) && isWrapped(https.Server.prototype.emit),
        http: isWrapped(http.ServerResponse.prototype.end) && isWrapped(http.Server.prototype.emit),
      }));`)]);
    if (out.pending === undefined) throw new Error('no result');
    expect((out.pending as string[]).filter((id) => id === 'https' || id === 'http')).toEqual([]);
    expect(out).toMatchObject({ https: true, http: true });
  });

  it('STEPGUARD_EAGER_BUILTINS=true patches them all at start', async () => {
    const { out } = await run(['--require', REGISTER, scriptFile(`${COMMON} process.stdout.write(JSON.stringify(atStart))`)], { STEPGUARD_EAGER_BUILTINS: 'true' });
    expect(out).toEqual({ loaded: DEFERRED, pending: [] });
  });

  it('STEPGUARD_EAGER_BUILTINS is a checked setting: a wrong value is named at start, off by default', () => {
    expect(loadConfig({}, REPO).config.eagerBuiltins).toBe(false);
    expect(loadConfig({ STEPGUARD_EAGER_BUILTINS: 'yes' }, REPO).config.eagerBuiltins).toBe(true);
    const { problems, config } = loadConfig({ STEPGUARD_EAGER_BUILTINS: 'always' }, REPO);
    expect(config.eagerBuiltins).toBe(false);
    expect(problems).toEqual([{ where: 'env STEPGUARD_EAGER_BUILTINS', message: expect.stringContaining('"always"') }]);
  });
});
