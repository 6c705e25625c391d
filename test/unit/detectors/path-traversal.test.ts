import { describe, it, expect } from 'vitest';
import { join, posix, resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { createPathTraversal, pathTraversal } from '../../../src/detectors/path-traversal.js';
import { InputCollector } from '../../../src/context/user-input.js';
import type { FsEvent, InputSource, UserInput } from '../../../src/events.js';
import type { Finding } from '../../../src/detectors/types.js';
import { readCorpus } from '../../helpers/corpus.js';

interface AttackCase {
  route: string;
  payload: string;
  effect: string;
}
interface BenignCase {
  payload: string;
}


const attacks = readCorpus<AttackCase>('path-traversal.attack.jsonl');
const benign = readCorpus<BenignCase>('path-traversal.benign.jsonl');

const ROOT = '/tmp/sg-pt-unit';
const BASE = join(ROOT, 'www', 'files');
const posixDetector = createPathTraversal({ windows: false });
const windowsDetector = createPathTraversal({ windows: true });

const fsEvent = (path: string, op = 'fs.readFile'): FsEvent => ({ kind: 'fs', op, path, write: false });
const input = (value: string, source: InputSource = 'query', extra: Partial<UserInput> = {}): UserInput => ({ source, path: `${source}.name`, value, ...extra });

/** The inputs a request carrying `value` in the query string (`?name=`) yields, decoded variants included. */
function requestInputs(value: string, source: InputSource = 'query'): UserInput[] {
  const c = new InputCollector({ maxInputs: 100, maxInputBytes: 1 << 16 });
  if (source === 'query') {
    const search = `name=${encodeURIComponent(value)}`;
    c.add('query', 'query', search);
    for (const [k, v] of new URLSearchParams(search)) c.add('query', `query.${k}`, v);
  } else c.add(source, `${source}.name`, value);
  return c.inputs;
}

/** The path each route of test/fixtures/apps/files-app.cjs hands to fs (first path for copy). */
function appPath(route: string, name: string): string {
  switch (route) {
    case 'concat':
    case 'stream':
      return BASE + '/' + name;
    case 'resolve':
      return resolve(BASE, name);
    case 'strip':
      return join(BASE, name.replace(/\.\.\//g, ''));
    case 'decode':
      return join(BASE, decodeURIComponent(name));
    case 'backslash':
      return join(BASE, name.replace(/\\/g, '/'));
    case 'url':
      return fileURLToPath(new URL(name, pathToFileURL(BASE + '/')));
    case 'ext':
      return join(BASE, name + '.txt');
    case 'raw':
      return name;
    case 'param':
      return join(BASE, decodeURIComponent(name));
    default:
      return join(BASE, name);
  }
}

const judge = (path: string, inputs: UserInput[], detector = posixDetector): readonly Finding[] => detector.detect(fsEvent(path), inputs);
const attacksIn = (findings: readonly Finding[]) => findings.filter((f) => f.kind === 'attack');
/** The one verdict for a single input value. */
const verdict = (path: string, value: string, detector = posixDetector, source: InputSource = 'query') => {
  const f = judge(path, [input(value, source)], detector)[0];
  return f && { kind: f.kind, reason: f.reason, text: path.slice(f.start, f.end) };
};

describe('path-traversal: attack corpus (paths built as files-app.cjs builds them)', () => {
  it('has at least 20 attacks', () => expect(attacks.length).toBeGreaterThanOrEqual(20));
  it.each(attacks.map((a) => [a.route, a.payload, a] as const))('%s: %j is an attack', (route, _p, a) => {
    const name = a.payload.split('{{ROOT}}').join(ROOT).split('{{WHO}}').join('unit');
    const source: InputSource = route === 'header' ? 'headers' : route === 'body' || route === 'write' || route === 'copy' ? 'body' : route === 'param' ? 'path' : 'query';
    const path = appPath(route, name);
    // The path really leaves BASE (the e2e test shows the operation happens).
    expect(resolve(path).startsWith(BASE + '/')).toBe(false);
    const found = attacksIn(judge(path, requestInputs(name, source)));
    expect(found.length, `no attack found in ${JSON.stringify(path)}`).toBeGreaterThan(0);
    for (const f of found) {
      expect(f.detector).toBe('path-traversal');
      expect(f.start).toBeGreaterThanOrEqual(0);
      expect(f.end).toBeLessThanOrEqual(path.length);
      expect(f.end).toBeGreaterThan(f.start);
    }
  });
});

describe('path-traversal: benign corpus', () => {
  it('has at least 30 benign names', () => expect(benign.length).toBeGreaterThanOrEqual(30));
  const routes = ['join', 'concat', 'resolve', 'stream', 'ext', 'raw'];
  it.each(benign.map((b) => [b.payload] as const))('%j is no attack on any route', (name) => {
    for (const route of routes) {
      for (const source of ['query', 'body', 'headers'] as const) {
        const path = appPath(route, name);
        expect(attacksIn(judge(path, requestInputs(name, source))), `${route} ${source}: ${path}`).toEqual([]);
      }
    }
  });

  it('reports a benign name concatenated into the path as a vulnerability', () => {
    for (const b of benign) {
      const path = BASE + '/' + b.payload;
      const findings = judge(path, [input(b.payload)]);
      expect(findings.map((f) => f.kind)).toEqual(['vulnerability']);
      expect(findings[0]!.reason).toBe('file-name');
    }
  });
});

describe('path-traversal: dot segments', () => {
  it('confirms escaping from the path before the input', () => {
    expect(verdict('/srv/files/../../etc/passwd', '../../etc/passwd')).toEqual({ kind: 'attack', reason: 'dot-segments', text: '../../etc/passwd' });
    expect(verdict('/srv/files/..', '..')).toMatchObject({ kind: 'attack', reason: 'dot-segments' });
    expect(verdict('/srv/files/../secret.txt', '../secret')).toMatchObject({ kind: 'attack', reason: 'dot-segments' });
    expect(verdict('/srv/files/sub/../x.txt', 'sub/../x.txt')).toMatchObject({ kind: 'vulnerability' });
    expect(verdict('/srv/files/a/b/../../x.txt', 'a/b/../../x.txt')).toMatchObject({ kind: 'vulnerability' });
    // Climbing back into the same directory by its own name stays inside.
    expect(verdict('/srv/files/../files/x.txt', '../files/x.txt')).toMatchObject({ kind: 'vulnerability' });
    expect(verdict('/srv/files/../other/x.txt', '../other/x.txt')).toMatchObject({ kind: 'attack' });
  });

  it('takes the base from where the input starts, also mid-segment and after a separator it brings', () => {
    // `img_..` is a name: the OS needs a directory called that to go anywhere.
    expect(verdict('/srv/files/img_../x', '../x')).toBeUndefined();
    expect(verdict('/srv/files//../../etc/passwd', '/../../etc/passwd')).toMatchObject({ kind: 'attack', reason: 'dot-segments' });
  });

  it('follows relative paths (cwd-relative) out of their start', () => {
    expect(verdict('files/../../etc/passwd', '../../etc/passwd')).toMatchObject({ kind: 'attack', reason: 'dot-segments' });
    expect(verdict('../../etc/passwd', '../../etc/passwd')).toMatchObject({ kind: 'attack', reason: 'dot-segments' });
    expect(verdict('../data/../x', '../x')).toMatchObject({ kind: 'attack' });
  });

  it('finds inputs that path.join / path.resolve / new URL normalised away', () => {
    expect(verdict(join('/srv/files', '../../etc/passwd'), '../../etc/passwd')).toEqual({ kind: 'attack', reason: 'dot-segments-normalized', text: 'etc/passwd' });
    expect(verdict(join('/srv/files', '../../etc/passwd') + '.bak', '../../etc/passwd')).toMatchObject({ reason: 'dot-segments-normalized' });
    expect(verdict(posix.normalize('files/../../etc/passwd'), '../../etc/passwd')).toMatchObject({ reason: 'dot-segments-normalized' });
    // A relative link (`?next=../dashboard`) while the app renders views/dashboard.ejs is no attack...
    expect(verdict('/app/views/dashboard.ejs', '../dashboard')).toBeUndefined();
    // ...but a climb to a file, a deeper path, or two levels is.
    expect(verdict(join('/srv/files', '../.env'), '../.env')).toMatchObject({ reason: 'dot-segments-normalized' });
    expect(verdict(join('/srv/files', '../conf/app.yml'), '../conf/app.yml')).toMatchObject({ reason: 'dot-segments-normalized' });
    expect(verdict(join('/srv/www/files', '../../secret'), '../../secret')).toMatchObject({ reason: 'dot-segments-normalized' });
    expect(verdict('/srv/files/../secret', '../secret')).toMatchObject({ reason: 'dot-segments' }); // verbatim: always
    // The named part must be whole segments: `etc/passwd` does not name `/xetc/passwd`.
    expect(verdict('/srv/xetc/passwd', '../../etc/passwd')).toBeUndefined();
    expect(verdict('/srv/etc/passwdx', '../../etc/passwd')).toBeUndefined();
  });

  it('does not treat names made of dots as `..`', () => {
    for (const name of ['..hidden', '...', '....', 'a..b', '..txt', 'x..', '.. ', ' ..']) {
      expect(verdict(`/srv/files/${name}`, name)).toMatchObject({ kind: 'vulnerability' });
    }
    expect(verdict('/srv/files/.../x', '.../x')).toMatchObject({ kind: 'vulnerability' });
  });

  it('does not guess when only `..` remains: the normalised path carries no trace of the input (limitation)', () => {
    expect(verdict(join('/srv/files', '..'), '..')).toBeUndefined();
    expect(verdict(join('/srv/files', '../..'), '../..')).toBeUndefined();
  });
});

describe('path-traversal: flawed filters', () => {
  it('sees through "strip ../ once" and backslash conversion', () => {
    const stripped = (v: string) => v.replace(/\.\.\//g, '');
    for (const v of ['....//....//etc/passwd', '..././..././etc/passwd']) {
      expect(verdict(join('/srv/files', stripped(v)), v)).toMatchObject({ kind: 'attack', reason: 'filter-bypass' });
      expect(verdict('/srv/files/' + stripped(v), v)).toMatchObject({ kind: 'attack', reason: 'filter-bypass' });
    }
    expect(verdict('/srv/files/' + '....//etc/passwd'.replace('../', ''), '....//etc/passwd')).toMatchObject({ reason: 'filter-bypass' });
    expect(verdict(join('/srv/files', '..\\..\\etc\\passwd'.replace(/\\/g, '/')), '..\\..\\etc\\passwd')).toMatchObject({ reason: 'filter-bypass' });
  });

  it('judges the input itself when the app did not transform it (the variant would not happen)', () => {
    expect(verdict(join('/srv/files', '....//....//etc/passwd'), '....//....//etc/passwd')).toBeUndefined();
    expect(verdict('/srv/files/....//....//etc/passwd', '....//....//etc/passwd')).toMatchObject({ kind: 'vulnerability' });
    // On POSIX a backslash is part of a name: `..\..\x` is one harmless file name.
    expect(verdict('/srv/files/..\\..\\etc\\passwd', '..\\..\\etc\\passwd')).toMatchObject({ kind: 'vulnerability' });
  });
});

describe('path-traversal: absolute paths and file: URLs', () => {
  it('flags an absolute input that begins the path and chooses its directory', () => {
    expect(verdict('/etc/passwd', '/etc/passwd')).toEqual({ kind: 'attack', reason: 'absolute-path', text: '/etc/passwd' });
    expect(verdict('/etc/passwd.txt', '/etc/passwd')).toMatchObject({ reason: 'absolute-path' });
    expect(verdict('/etc/passwd', '/etc/')).toMatchObject({ reason: 'absolute-path' });
    expect(verdict('/etc/ssh/sshd_config', '/etc/ssh')).toMatchObject({ reason: 'absolute-path' });
    expect(verdict('/etc/passwd', '//etc/./passwd')).toMatchObject({ reason: 'absolute-path' });
    expect(verdict('/etc//passwd', '/etc//passwd')).toMatchObject({ reason: 'absolute-path' });
    expect(verdict('/srv/files/../../etc/passwd', '/srv/files/../../etc/passwd')).toMatchObject({ kind: 'attack' });
  });

  it('leaves coincidences with the app\'s own location alone (`?next=/app`)', () => {
    expect(verdict('/app/views/login.ejs', '/app')).toBeUndefined();
    expect(verdict('/app/index.html', '/app')).toBeUndefined();
    expect(verdict('/home/node/app/index.html', '/home')).toBeUndefined();
    expect(verdict('/srv/app/x', '/')).toBeUndefined();
    expect(verdict('/srv/app/x', '//')).toBeUndefined();
  });

  it('treats an absolute input joined below BASE as a name', () => {
    expect(verdict(join('/srv/files', '/etc/passwd'), '/etc/passwd')).toMatchObject({ kind: 'vulnerability' });
  });

  it('reads file: URLs the way fileURLToPath does', () => {
    expect(verdict('/etc/passwd', 'file:///etc/passwd')).toEqual({ kind: 'attack', reason: 'file-url', text: '/etc/passwd' });
    expect(verdict('/etc/passwd', 'FILE:///etc/passwd')).toMatchObject({ reason: 'file-url' });
    expect(verdict('/etc/passwd', 'file://localhost/etc/passwd')).toMatchObject({ reason: 'file-url' });
    expect(verdict('/etc/passwd', 'file:///etc/%70asswd')).toMatchObject({ reason: 'file-url' });
    expect(verdict('/etc/passwd', 'file:///tmp/../etc/passwd')).toMatchObject({ reason: 'file-url' });
    // Node refuses these URLs itself.
    expect(verdict('/etc/passwd', 'file://evil/etc/passwd')).toBeUndefined();
    expect(verdict('/etc/passwd', 'file:///etc%2fpasswd')).toBeUndefined();
    expect(verdict('/etc/passwd', 'http:///etc/passwd')).toBeUndefined();
    // A relative name that starts with `file:` is just a name.
    expect(verdict('/srv/files/file:notes.txt', 'file:notes.txt')).toMatchObject({ kind: 'vulnerability' });
  });
});

describe('path-traversal: NUL bytes', () => {
  it('flags a NUL the input carries into the path (Node refuses it anyway: reported as an attempt)', () => {
    expect(verdict('/srv/files/a.pdf\u0000.txt', 'a.pdf\u0000')).toMatchObject({ kind: 'attack', reason: 'nul-byte', text: 'a.pdf\u0000' });
    expect(verdict('/srv/files/a.pdf', 'a.pdf\u0000')).toBeUndefined();
  });
});

describe('path-traversal: Windows mode', () => {
  const w = (path: string, value: string) => verdict(path, value, windowsDetector);
  it('treats \\ as a separator and drive letters and UNC names as absolute', () => {
    expect(w('C:\\srv\\files\\..\\..\\Windows\\win.ini', '..\\..\\Windows\\win.ini')).toMatchObject({ kind: 'attack', reason: 'dot-segments' });
    expect(w('C:\\srv\\Windows\\win.ini', '..\\..\\Windows\\win.ini')).toMatchObject({ reason: 'dot-segments-normalized' });
    expect(w('C:\\srv\\files\\../../x', '../../x')).toMatchObject({ reason: 'dot-segments' });
    expect(w('C:\\Windows\\win.ini', 'C:\\Windows\\win.ini')).toMatchObject({ reason: 'absolute-path' });
    expect(w('C:\\Windows\\win.ini', 'c:/Windows/win.ini')).toBeUndefined(); // case differs: not the same text
    expect(w('\\\\server\\share\\x.txt', '\\\\server\\share\\x.txt')).toMatchObject({ reason: 'absolute-path' });
    expect(w('C:\\Windows\\win.ini', 'file:///C:/Windows/win.ini')).toMatchObject({ reason: 'file-url' });
    expect(w('C:\\srv\\files\\report.pdf', 'report.pdf')).toMatchObject({ kind: 'vulnerability' });
    expect(w('C:\\srv\\files\\..hidden', '..hidden')).toMatchObject({ kind: 'vulnerability' });
  });

  it('POSIX mode does not treat Windows forms as absolute', () => {
    expect(verdict('C:\\Windows\\win.ini', 'C:\\Windows\\win.ini')).toMatchObject({ kind: 'vulnerability' });
    expect(pathTraversal.id).toBe('path-traversal');
    expect(pathTraversal.kinds).toEqual(['fs']);
  });
});

describe('path-traversal: vulnerabilities', () => {
  it('needs a whole name: segment start, and segment end or an extension', () => {
    expect(verdict('/srv/locales/en.json', 'en')).toMatchObject({ kind: 'vulnerability', text: 'en' });
    expect(verdict('/srv/node_modules/entities/x.js', 'en')).toBeUndefined();
    expect(verdict('/srv/files/thumb_cat.png', 'cat.png')).toBeUndefined();
    expect(verdict('/srv/files/a', 'a')).toBeUndefined(); // one character: matches everywhere
  });

  it('does not report URL path segments (static servers map them to files by design), nor keys', () => {
    expect(verdict('/srv/public/app.css', 'app.css', posixDetector, 'path')).toBeUndefined();
    expect(judge('/srv/files/name', [input('name', 'query', { isKey: true })])).toEqual([]);
    // ...but an attack through them is still one.
    expect(verdict('/srv/public/../../etc/passwd', '../../etc/passwd', posixDetector, 'path')).toMatchObject({ kind: 'attack' });
  });

  it('reports attacks first, then vulnerabilities, one finding per input', () => {
    const path = '/srv/files/report/../../../etc/passwd';
    const findings = judge(path, [input('report', 'query'), input('../../../etc/passwd', 'body')]);
    expect(findings.map((f) => [f.kind, f.input?.source])).toEqual([
      ['attack', 'body'],
      ['vulnerability', 'query'],
    ]);
  });
});

describe('path-traversal: cost', () => {
  it('returns nothing quickly for no inputs or an empty path', () => {
    expect(judge('', [input('../x')])).toEqual([]);
    expect(judge('/srv/x', [])).toEqual([]);
  });

  // Linear time on this shape is checked by test/fuzz/complexity.test.ts (CPU time against size, no clock bound here).
  it('judges long hostile inputs and paths', () => {
    const longInput = 'a/../'.repeat(20_000) + '../etc/passwd';
    const longPath = '/srv/' + 'x/'.repeat(20_000) + 'etc/passwd';
    const findings = judge(longPath, [input(longInput), input('x/'.repeat(1000)), input('/'.repeat(50_000))]);
    expect(attacksIn(findings).length).toBe(1);
  });

  it('classifies the inputs of a request once (same array → same answers)', () => {
    const inputs = [input('../../etc/passwd'), input('report.pdf')];
    const a = judge('/srv/files/../../etc/passwd', inputs);
    const b = judge('/srv/files/../../etc/passwd', inputs);
    expect(b).toEqual(a);
    expect(judge('C:\\srv\\files\\..\\..\\x', inputs, windowsDetector)).toEqual([]);
  });
});
