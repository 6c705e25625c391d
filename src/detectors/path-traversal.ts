import type { FsEvent, UserInput } from '../events.js';
import type { Detector, Finding } from './types.js';

/**
 * Path traversal: request input that steers a file path outside the directory the app put it in.
 *
 * An **attack** is an input that, where it occurs in the path,
 * - climbs out of the directory it was joined to with `..` segments (`dot-segments`), confirmed by resolving
 *   the path's own prefix plus the input lexically — `sub/../x` stays inside and is data, `../x` leaves;
 * - reached the path after the app normalised it (`path.join`, `path.resolve`, `new URL(name, base)` all
 *   remove the `..` segments the input brought): the input's own lexical form starts with `..` and the part
 *   it names after climbing (`secret/key.pem` of `../../secret/key.pem`) is a whole-segment part of the path
 *   (`dot-segments-normalized`). A single `..` before a bare word (`../dashboard`, a relative link) is not
 *   enough on its own: the named part needs a dot or a separator, or the input must climb twice;
 * - only reached the path through a flawed filter the app applied — `....//` after stripping `../` once,
 *   `..\` after turning backslashes into slashes (`filter-bypass`). These variants are tried only when the
 *   input itself is nowhere in the path, so an app that doesn't transform the input is judged on the input;
 * - is an absolute path (or a `file:` URL naming one) that begins the path and chooses its directory
 *   (`absolute-path`, `file-url`): `path.resolve(base, '/etc/passwd')` or `readFile(req.query.file)`;
 * - carries a NUL byte into the path (`nul-byte`). Node refuses such paths anyway (ERR_INVALID_ARG_VALUE):
 *   reported as an attempt, refused before Node would.
 *
 * A **vulnerability** is an input that is a whole file name or sub-path inside the path (`file-name`): the
 * app builds paths from request data without mapping it to a known name. URL path segments are not
 * reported as vulnerabilities (static file servers map them to files by design); they can still be attacks.
 *
 * Separators: on POSIX only `/` separates, so `..\..\x` is a single file name and harmless unless the app
 * converts backslashes (then `filter-bypass`). In Windows mode `\` and `/` both separate and drive letters
 * (`C:`) and UNC names are absolute.
 *
 * Cost: a request's inputs are scanned once for suspects (`..`, a leading `/`, `file:`, NUL), at its first
 * fs call; after that, per call, an input that can't be an attack costs a length check and at most one
 * `indexOf`, and nothing is allocated unless an input occurs in the path. Everything is linear in the
 * lengths of the path and the inputs.
 */

export type PathTraversalReason =
  | 'dot-segments'
  | 'dot-segments-normalized'
  | 'filter-bypass'
  | 'absolute-path'
  | 'file-url'
  | 'nul-byte'
  | 'file-name';

export interface PathTraversalOptions {
  /** Treat `\` as a separator and drive letters / UNC names as absolute (Node on Windows). */
  readonly windows: boolean;
}

/** Occurrences of one input tried per call (a short input can occur many times in a long path). */
const MAX_OCCURRENCES = 8;
/** Values longer than this are not searched for as a whole (no file path is that long); they can still be attacks. */
const MAX_NAME_LENGTH = 4096;

const SLASH = 47;
const DOT = 46;

/** A form of the input to look for, with its lexical resolution (see `walk`). */
interface Form {
  readonly text: string;
  readonly up: number;
  /** The segments it names after climbing `up` levels, joined by `/` ('' when none). */
  readonly rest: string;
}

/** An input that could be an attack: it has `..`, is absolute, is a `file:` URL or holds a NUL. Rare. */
interface Suspect {
  /** Position in the request's input list. */
  readonly index: number;
  /** The value with separators as the path uses them (`\` → `/` in Windows mode). */
  readonly value: string;
  /** The value as a `..` form, when it has `..` segments. */
  readonly dots: Form | undefined;
  /** Filter-bypass variants (see module doc). */
  readonly variants: readonly Form[];
  /** The value resolved lexically (what `path.join` would make of it), for inputs with variants. */
  readonly lexical: string;
  /** The absolute path the input names (lexically normalised), from a plain path or a `file:` URL. */
  readonly absolute: string | undefined;
  readonly fromUrl: boolean;
  readonly nul: boolean;
}

/** The result of resolving a relative path lexically: `up` levels climbed above its start, then `names`. */
interface Walk {
  up: number;
  names: string[];
}

/** Lexical resolution of `text` (separators `/`), as `path.posix.normalize` does it. Linear. */
function walk(text: string): Walk {
  const result: Walk = { up: 0, names: [] };
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && text.charCodeAt(i) !== SLASH) continue;
    const length = i - start;
    if (length === 2 && text.charCodeAt(start) === DOT && text.charCodeAt(start + 1) === DOT) {
      if (result.names.length > 0) result.names.pop();
      else result.up++;
    } else if (length > 0 && !(length === 1 && text.charCodeAt(start) === DOT)) {
      result.names.push(text.slice(start, i));
    }
    start = i + 1;
  }
  return result;
}

function hasDotSegment(text: string): boolean {
  for (let i = text.indexOf('..'); i !== -1; i = text.indexOf('..', i + 1)) {
    const before = i === 0 || text.charCodeAt(i - 1) === SLASH;
    const after = i + 2 === text.length || text.charCodeAt(i + 2) === SLASH;
    if (before && after) return true;
  }
  return false;
}

function formOf(text: string): Form {
  const w = walk(text);
  return { text, up: w.up, rest: w.names.join('/') };
}

function isAbsolute(text: string, windows: boolean): boolean {
  if (text.charCodeAt(0) === SLASH) return true;
  return windows && /^[A-Za-z]:/.test(text);
}

/** `/a//b/../c` → `/a/c`; `C:/a/../b` → `C:/b`. `..` at the root stays at the root. */
function normalizeAbsolute(text: string, windows: boolean): string {
  const drive = windows && /^[A-Za-z]:/.test(text) ? text.slice(0, 2) : '';
  const unc = !drive && windows && text.startsWith('//');
  const names = walk(text.slice(drive.length)).names;
  return (unc ? '//' : drive + '/') + names.join('/');
}

/**
 * The file a `file:` URL names, the way Node's `fileURLToPath` reads it, or undefined where Node would
 * throw (another scheme, a host on POSIX, an encoded separator).
 */
function fileUrlPath(value: string, windows: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'file:') return undefined;
  const encoded = url.pathname;
  if (/%2f/i.test(encoded) || (windows && /%5c/i.test(encoded))) return undefined;
  let pathname: string;
  try {
    pathname = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  if (!windows) return url.hostname === '' ? pathname : undefined;
  if (url.hostname !== '') return `//${url.hostname}${pathname}`;
  return /^\/[A-Za-z]:/.test(pathname) ? pathname.slice(1) : pathname;
}

/** `file:` in any case, without a regex or a copy. */
function hasFileScheme(value: string): boolean {
  return (
    value.length > 5 &&
    (value.charCodeAt(0) | 32) === 102 && // f
    (value.charCodeAt(1) | 32) === 105 && // i
    (value.charCodeAt(2) | 32) === 108 && // l
    (value.charCodeAt(3) | 32) === 101 && // e
    value.charCodeAt(4) === 58 // :
  );
}

/** The suspects among a request's inputs; everything else can at most be a vulnerability. */
function suspectsOf(inputs: readonly UserInput[], windows: boolean): Suspect[] {
  const suspects: Suspect[] = [];
  for (let index = 0; index < inputs.length; index++) {
    const raw = inputs[index]!.value;
    const nul = raw.includes('\u0000');
    const dotted = raw.includes('..');
    const absoluteLike = isAbsolute(raw, windows) || (windows && raw.charCodeAt(0) === 92) || hasFileScheme(raw);
    if (!nul && !dotted && !absoluteLike) continue;
    const value = windows && raw.includes('\\') ? raw.replaceAll('\\', '/') : raw;
    let dots: Form | undefined;
    const variants: Form[] = [];
    let lexical = '';
    if (dotted) {
      if (hasDotSegment(value)) dots = formOf(value);
      // Flawed filters: `../` removed (all at once, or the first only), backslashes turned into slashes.
      const candidates = [value.replaceAll('../', ''), value.replace('../', ''), windows ? value : value.replaceAll('\\', '/')];
      for (const text of candidates) {
        if (text === value || !hasDotSegment(text) || variants.some((v) => v.text === text)) continue;
        const form = formOf(text);
        if (form.up > 0) variants.push(form);
      }
      if (variants.length > 0) lexical = dots ? dots.rest : walk(value).names.join('/');
    }
    let absolute: string | undefined;
    let fromUrl = false;
    if (isAbsolute(value, windows)) absolute = normalizeAbsolute(value, windows);
    else if (hasFileScheme(value)) {
      const file = fileUrlPath(raw, windows);
      const path = file !== undefined && windows ? file.replaceAll('\\', '/') : file;
      if (path !== undefined && isAbsolute(path, windows)) {
        absolute = normalizeAbsolute(path, windows);
        fromUrl = true;
      }
    }
    if (absolute !== undefined && absolute.length < 2) absolute = undefined; // the root alone matches every absolute path
    if (!dots && variants.length === 0 && absolute === undefined && !nul) continue;
    suspects.push({ index, value, dots, variants, lexical, absolute, fromUrl, nul });
  }
  return suspects;
}

interface Span {
  readonly start: number;
  readonly end: number;
}

/**
 * Does the occurrence [s, e) of an input with `..` segments leave the directory it was put in? The base is
 * the path before the occurrence's segment; the walk covers the input and the rest of its last segment
 * (an appended extension). Climbing back into the base by its own name (`../files/x`) stays inside.
 */
function escapesAt(path: string, s: number, e: number): boolean {
  const startsSegment = s === 0 || path.charCodeAt(s) === SLASH || path.charCodeAt(s - 1) === SLASH;
  const segStart = startsSegment ? s : path.lastIndexOf('/', s - 1) + 1;
  let segEnd = e;
  if (path.charCodeAt(e - 1) !== SLASH) {
    const next = path.indexOf('/', e);
    segEnd = next === -1 ? path.length : next;
  }
  const base = walk(path.slice(0, segStart));
  const after = walk(path.slice(segStart, segEnd));
  if (after.up === 0) return false;
  // Relative bases that already climbed (`../data/`) have unknown names above them: any climb is out.
  if (after.up > base.names.length) return true;
  const left = base.names.slice(base.names.length - after.up);
  for (let k = 0; k < left.length; k++) if (after.names[k] !== left[k]) return true;
  return false;
}

/** Occurrences of `needle` in `hay` for which `accept` holds; the first accepted one. */
function findOccurrence(hay: string, needle: string, accept: (s: number, e: number) => boolean): Span | undefined {
  if (needle.length === 0 || needle.length > hay.length) return undefined;
  let tries = 0;
  for (let s = hay.indexOf(needle); s !== -1 && tries < MAX_OCCURRENCES; s = hay.indexOf(needle, s + 1), tries++) {
    if (accept(s, s + needle.length)) return { start: s, end: s + needle.length };
  }
  return undefined;
}

/** A whole-segment part of the path: starts a segment, ends one (or is followed by an extension). */
function segmentAligned(path: string, text: string, s: number, e: number): boolean {
  const startOk = s === 0 || path.charCodeAt(s - 1) === SLASH || text.charCodeAt(0) === SLASH;
  const endOk = e === path.length || path.charCodeAt(e) === SLASH || path.charCodeAt(e) === DOT || text.charCodeAt(text.length - 1) === SLASH;
  return startOk && endOk;
}

/** The `..` form of an input in the path, verbatim (confirmed escaping) or after the app normalised it. */
function judgeDots(path: string, form: Form): { span: Span; normalized: boolean } | undefined {
  if (path.includes(form.text)) {
    // Present as written: the path shows where it leads, no need to guess what the app normalised.
    const verbatim = findOccurrence(path, form.text, (s, e) => escapesAt(path, s, e));
    return verbatim && { span: verbatim, normalized: false };
  }
  if (form.up === 0 || form.rest === '') return undefined;
  // One `..` and a bare word (`../dashboard`) is what a relative link looks like; matched only by name it
  // is too weak to call an attack. Files have a dot or a directory (`../.env`, `../conf/app.yml`).
  if (form.up === 1 && !form.rest.includes('/') && !form.rest.includes('.')) return undefined;
  const named = findOccurrence(path, form.rest, (s, e) => segmentAligned(path, form.rest, s, e));
  return named ? { span: named, normalized: true } : undefined;
}

/** The input reached the path untransformed: as written, or as `path.join` would normalise it. */
function foundAsIs(path: string, p: Suspect): boolean {
  if (path.includes(p.value)) return true;
  const lexical = p.lexical;
  return lexical !== '' && findOccurrence(path, lexical, (s, e) => segmentAligned(path, lexical, s, e)) !== undefined;
}

/**
 * The absolute path the input names begins `path` and chooses the file's directory: the app added at most
 * the rest of the last segment (`.txt`), or — for an input naming two or more directories (`/etc/ssh`) —
 * one more segment. An input naming one directory that the app continues (`/app` in `/app/index.html`) is
 * far more often a coincidence with the app's own location (`?next=/app`) than an attack, and is left out.
 */
function absoluteSpan(path: string, p: Suspect): Span | undefined {
  const lastSep = path.lastIndexOf('/');
  for (const text of p.fromUrl ? [p.absolute!] : [p.value, p.absolute!]) {
    if (text.length < 2 || !path.startsWith(text)) continue;
    if (lastSep < text.length || (lastSep === text.length && text.indexOf('/', 1) > 0)) return { start: 0, end: text.length };
  }
  return undefined;
}

function attackOf(path: string, p: Suspect): { span: Span; reason: PathTraversalReason } | undefined {
  if (p.nul) {
    const at = path.indexOf(p.value);
    if (at !== -1) return { span: { start: at, end: at + p.value.length }, reason: 'nul-byte' };
  }
  if (p.dots) {
    const hit = judgeDots(path, p.dots);
    if (hit) return { span: hit.span, reason: hit.normalized ? 'dot-segments-normalized' : 'dot-segments' };
  }
  if (p.absolute !== undefined) {
    const span = absoluteSpan(path, p);
    if (span) return { span, reason: p.fromUrl ? 'file-url' : 'absolute-path' };
  }
  if (p.variants.length > 0 && !foundAsIs(path, p)) {
    for (const form of p.variants) {
      const hit = judgeDots(path, form);
      if (hit) return { span: hit.span, reason: 'filter-bypass' };
    }
  }
  return undefined;
}

/** A whole-name occurrence of a plain (non-suspect) input: the vulnerability check. Allocates only on a hit. */
function nameSpan(path: string, input: UserInput, windows: boolean): Span | undefined {
  const raw = input.value;
  if (raw.length < 2 || raw.length > path.length || raw.length > MAX_NAME_LENGTH || input.isKey || input.source === 'path') return undefined;
  const value = windows && raw.includes('\\') ? raw.replaceAll('\\', '/') : raw;
  if (path.indexOf(value) === -1) return undefined;
  // An absolute value at the very start that is no attack is the app's own location (see absoluteSpan).
  const absolute = isAbsolute(value, windows);
  return findOccurrence(path, value, (s, e) => segmentAligned(path, value, s, e) && !(s === 0 && absolute));
}

export function createPathTraversal(options: PathTraversalOptions): Detector<FsEvent> {
  const windows = options.windows;
  // The request context hands every call of a request the same (cached) input array: its suspects are
  // found once. One entry is enough; interleaved requests only cost a re-scan.
  let lastInputs: readonly UserInput[] | undefined;
  let lastSuspects: Suspect[] = [];
  return {
    id: 'path-traversal',
    kinds: ['fs'],
    detect(event: FsEvent, inputs: readonly UserInput[]): Finding[] {
      const original = event.path;
      if (original.length === 0 || inputs.length === 0) return [];
      const path = windows && original.includes('\\') ? original.replaceAll('\\', '/') : original;
      if (inputs !== lastInputs) {
        lastSuspects = suspectsOf(inputs, windows);
        lastInputs = inputs;
      }
      const suspects = lastSuspects;
      let attacks: Finding[] | undefined;
      let vulns: Finding[] | undefined;
      let next = 0;
      for (let i = 0; i < inputs.length; i++) {
        const input = inputs[i]!;
        if (next < suspects.length && suspects[next]!.index === i) {
          const attack = attackOf(path, suspects[next++]!);
          if (attack) {
            (attacks ??= []).push({ detector: 'path-traversal', kind: 'attack', input, ...attack.span, reason: attack.reason });
            continue;
          }
        }
        const span = nameSpan(path, input, windows);
        if (span) (vulns ??= []).push({ detector: 'path-traversal', kind: 'vulnerability', input, ...span, reason: 'file-name' });
      }
      if (!attacks) return vulns ?? [];
      return vulns ? attacks.concat(vulns) : attacks;
    },
  };
}

/** The registered detector: separators and absolute forms of the platform Node runs on. */
export const pathTraversal: Detector<FsEvent> = createPathTraversal({ windows: process.platform === 'win32' });
