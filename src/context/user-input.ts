import type { InputSource, UserInput } from '../events.js';
import type { ValueScreen } from '../detectors/types.js';
import { pairsOf, type TextPairs } from '../grammar/pairs.js';

/**
 * Flattens request data into the list of strings the detectors look for in sinks.
 *
 * Two uses, one walker: the *budget* pass (STEPGUARD_MAX_INPUTS / _MAX_INPUT_BYTES, depth 32) builds the list
 * every detector sees in full; when it had to skip something, the *search* pass (hard caps, see
 * input-limits.ts) walks the whole request once more and keeps its values only for a sink whose text contains
 * them. Both are linear in the size of the request: strings and Buffers are referenced, never split into
 * per-character objects.
 */

export interface InputLimits {
  readonly maxInputs: number;
  readonly maxInputBytes: number;
}

export interface CollectorLimits extends InputLimits {
  /** Nesting walked; BUDGET_MAX_DEPTH when not given. */
  readonly maxDepth?: number;
}

/** Why a pass did not see every value: `count`/`bytes` (a cap reached), `depth` (nesting deeper than the cap). */
export type SkipReason = 'count' | 'bytes' | 'depth';

/** Values shorter than this can't change a statement's structure in a way detectors would flag. */
const MIN_LENGTH = 1;
export const BUDGET_MAX_DEPTH = 32;
const MAX_DECODE_ROUNDS = 3;
/** Bytes sniffed to tell text from binary before decoding a whole Buffer. */
export const SNIFF_BYTES = 512;

/**
 * Up to this many kept values are told apart by comparing strings; past it, by a Map. A request's values are new
 * strings whose hash V8 has not computed yet, and hashing them for a Map cost more than a few comparisons (most fail
 * on the length) in a request of ordinary size.
 */
const SCAN_UP_TO = 16;
/** …and while they hold this many characters in all, so that no comparison of long look-alike values adds up. */
const SCAN_UP_TO_CHARS = 4096;

/** `parent.name`, or `parent` alone when there is no name: the dotted path of a value. */
export function joinPath(parent: string, name: string | number | undefined): string {
  return name === undefined ? parent : `${parent}.${name}`;
}

/**
 * A kept value. Its path (`headers.host`, `query.id`) is joined only when something reads it — a finding's span,
 * a rule's report — since most requests give none: joining one string per value was a measurable part of
 * gathering a small request (README, Performance). `path` is an accessor, so a copy made with `{ ...input }`
 * leaves it out.
 */
class GatheredInput implements UserInput {
  constructor(
    readonly source: InputSource,
    private readonly parent: string,
    private readonly name: string | number | undefined,
    readonly value: string,
    /** true, or undefined (not false) for a value, as in an input written `{ source, path, value }`. */
    readonly isKey: true | undefined,
  ) {}

  get path(): string {
    return joinPath(this.parent, this.name);
  }
}

export class InputCollector {
  /** The kept values, one per distinct text, in the order first seen. */
  private readonly kept: UserInput[] = [];
  /** Text → position in `kept`, once there are more than SCAN_UP_TO or they are longer than SCAN_UP_TO_CHARS. */
  private index: Map<string, number> | undefined;
  private bytes = 0;
  protected full = false;
  /** The first reason something was left out, if anything was. */
  skipped: SkipReason | undefined;
  /** `skipped` happened at this input path (for the `input-limit` finding). */
  skippedAt: string | undefined;

  constructor(protected readonly limits: CollectorLimits) {}

  get inputs(): UserInput[] {
    return this.kept.slice();
  }

  /** The kept values themselves, not a copy: for a caller that is done adding (a request's gathering). */
  keptInputs(): readonly UserInput[] {
    return this.kept;
  }

  has(value: string): boolean {
    return this.positionOf(value) !== -1;
  }

  private positionOf(value: string): number {
    if (this.index !== undefined) return this.index.get(value) ?? -1;
    const kept = this.kept;
    const length = value.length;
    // The lengths first: two different strings are compared by a call into V8, and most differ in length.
    for (let i = 0; i < kept.length; i++) {
      const other = kept[i]!.value;
      if (other.length === length && other === value) return i;
    }
    return -1;
  }

  protected skip(reason: SkipReason, path: string): void {
    // One oversized value or subtree is skipped alone; only the count cap ends the pass.
    if (reason === 'count') this.full = true;
    if (this.skipped === undefined) {
      this.skipped = reason;
      this.skippedAt = path;
    }
  }

  /** Adds a value and the forms an app is likely to decode it into (see hasDecodedForms). */
  add(source: InputSource, path: string, value: string, isKey = false): void {
    this.addAt(source, path, undefined, value, isKey);
  }

  /** The same as `add(source, \`${parent}.${name}\`, value, isKey)`, with the path joined only if it is read. */
  addNamed(source: InputSource, parent: string, name: string | number, value: string, isKey = false): void {
    this.addAt(source, parent, name, value, isKey);
  }

  private addAt(source: InputSource, parent: string, name: string | number | undefined, value: string, isKey: boolean): void {
    if (!this.addExact(source, parent, name, value, isKey)) return;
    const forms = decodedFormsOf(value);
    if (forms === NO_DECODED_FORM) return;
    if ((forms & PERCENT_ENCODED) !== 0) this.addUrlDecoded(source, parent, name, value);
    if ((forms & JWT_LIKE) !== 0) this.addJwtClaims(source, joinPath(parent, name), value);
    if ((forms & BASE64_LIKE) !== 0) this.addBase64Decoded(source, joinPath(parent, name), value);
  }

  /** Walks objects/arrays: keys and values; arrays also joined (`a,b`), as frameworks do for repeated params. */
  addTree(source: InputSource, path: string, value: unknown, depth = 0): void {
    if (value === null || value === undefined) return;
    if (this.full) return; // the reason and place were recorded when the cap was reached
    if (typeof value === 'string') return this.add(source, path, value);
    if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
      return this.add(source, path, String(value));
    }
    if (typeof value !== 'object') return;
    // Binary data first: walking a Buffer's keys would make one string per byte.
    if (ArrayBuffer.isView(value)) return this.addBuffer(source, path, Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    if (value instanceof ArrayBuffer) return this.addBuffer(source, path, Buffer.from(value));
    if (depth >= (this.limits.maxDepth ?? BUDGET_MAX_DEPTH)) return this.skip('depth', path);
    if (Array.isArray(value)) {
      const scalars: string[] = [];
      for (let i = 0; i < value.length; i++) {
        if (this.full) return;
        const item: unknown = value[i];
        if (typeof item === 'string' || typeof item === 'number') scalars.push(String(item));
        this.addChild(source, path, i, item, depth + 1);
      }
      if (scalars.length > 1) this.add(source, path, scalars.join(','));
      return;
    }
    for (const key of Object.keys(value)) {
      if (this.full) return;
      this.addNamed(source, path, key, key, true);
      let child: unknown;
      try {
        child = (value as Record<string, unknown>)[key];
      } catch {
        continue; // a throwing getter on a framework object
      }
      this.addChild(source, path, key, child, depth + 1);
    }
  }

  /** `addTree` of `parent.name`: a scalar is added without joining its path; an object is walked under it. */
  private addChild(source: InputSource, parent: string, name: string | number, child: unknown, depth: number): void {
    if (typeof child === 'string') return this.addNamed(source, parent, name, child);
    if (typeof child === 'number' || typeof child === 'bigint' || typeof child === 'boolean') return this.addNamed(source, parent, name, String(child));
    if (child !== null && child !== undefined) this.addTree(source, joinPath(parent, name), child, depth);
  }

  /** Text content of a buffer (uploads, raw bodies); binary data is ignored. Never one object per byte. */
  addBuffer(source: InputSource, path: string, buffer: Buffer): void {
    if (buffer.length === 0) return;
    if (this.full || isBinary(buffer.subarray(0, SNIFF_BYTES))) return;
    if (buffer.length > this.limits.maxInputBytes - this.bytes) return this.skip('bytes', path);
    const text = decodeText(buffer);
    if (text !== null) this.add(source, path, text);
  }

  /** Keeps one value (at `parent.name`, or `parent` without a name); false when its decoded forms need not be tried. */
  protected addExact(source: InputSource, parent: string, name: string | number | undefined, value: string, isKey = false): boolean {
    if (value.length < MIN_LENGTH) return false;
    if (this.full) return false;
    const position = this.positionOf(value);
    if (position !== -1) {
      // The same text as a value outranks it as a key: values are what apps concatenate.
      if (this.kept[position]!.isKey === true && !isKey) this.kept[position] = new GatheredInput(source, parent, name, value, undefined);
      return true;
    }
    if (this.kept.length >= this.limits.maxInputs) {
      this.skip('count', joinPath(parent, name));
      return false;
    }
    if (this.bytes + value.length > this.limits.maxInputBytes) {
      this.skip('bytes', joinPath(parent, name));
      return false;
    }
    this.bytes += value.length;
    this.kept.push(new GatheredInput(source, parent, name, value, isKey ? true : undefined));
    if (this.index !== undefined) this.index.set(value, this.kept.length - 1);
    else if (this.kept.length > SCAN_UP_TO || this.bytes > SCAN_UP_TO_CHARS) this.index = new Map(this.kept.map((input, i) => [input.value, i]));
    return true;
  }

  private addUrlDecoded(source: InputSource, parent: string, name: string | number | undefined, value: string): void {
    let current = value;
    for (let round = 0; round < MAX_DECODE_ROUNDS && current.includes('%'); round++) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(current.replace(/\+/g, ' '));
      } catch {
        return;
      }
      if (decoded === current) return;
      this.addExact(source, parent, name, decoded);
      current = decoded;
    }
  }

  private addJwtClaims(source: InputSource, path: string, value: string): void {
    const token = value.startsWith('Bearer ') ? value.slice(7) : value;
    // Every JWT header is base64url of `{"…`, so it starts with "eyJ"; anything else is not worth splitting.
    if (!token.startsWith('eyJ')) return;
    const parts = token.split('.');
    if (parts.length !== 3 || !isBase64Url(parts[0]!) || !isBase64Url(parts[1]!)) return;
    const header = tryJson(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    if (!header || typeof header !== 'object' || !('alg' in header)) return;
    const payload = tryJson(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    if (payload && typeof payload === 'object') this.addTree(source, `${path}.jwt`, payload, 1);
  }

  /**
   * Apps often base64-decode a parameter themselves (cursors, state). Decoded text only counts when it
   * is clean printable UTF-8 — random binary never matches a sink, so this adds no false positives.
   */
  private addBase64Decoded(source: InputSource, path: string, value: string): void {
    const decoded = Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64').toString('utf8');
    if (decoded.length < 2 || decoded.includes('\uFFFD') || hasBinaryControl(decoded)) return;
    this.addExact(source, path, 'base64', decoded);
  }
}

/**
 * The budget pass for one sink: every value the budget pass would keep, and each form decoded from it, is put to
 * `screen`, and only the values it lets through are kept (as the budget pass keeps them: one per text, a value
 * outranking a key). `skipped` when the budget pass would have left something out (the walk counts every value as
 * if it were new, so it is never later than the budget pass to skip; the walk then stops). `occurs` when some value
 * of two characters or more occurs in `text` as it is (RequestContext.someInputOccursIn's question), asked until
 * the first one does.
 *
 * For a request whose input is nowhere in a statement (a parameterised query: nearly all of them), this is what
 * judging it costs: no value kept, no list built, and the detector not called.
 */
export class ScreenCollector extends InputCollector {
  occurs = false;
  private count = 0;
  private walkedBytes = 0;
  private readonly pairs: TextPairs;

  constructor(
    limits: CollectorLimits,
    private readonly text: string,
    private readonly screen: ValueScreen,
  ) {
    super(limits);
    this.pairs = pairsOf(text);
  }

  protected override addExact(source: InputSource, parent: string, name: string | number | undefined, value: string, isKey = false): boolean {
    if (value.length < MIN_LENGTH || this.full) return false;
    if (++this.count > this.limits.maxInputs) {
      this.skip('count', joinPath(parent, name));
      return false;
    }
    if ((this.walkedBytes += value.length) > this.limits.maxInputBytes) {
      this.skip('bytes', joinPath(parent, name));
      return false;
    }
    if (!this.occurs && value.length >= 2 && this.pairs.mayHold(value) && this.text.includes(value)) this.occurs = true;
    if (this.screen(value, isKey)) return super.addExact(source, parent, name, value, isKey);
    if (isKey) (this.keysTurnedAway ??= []).push(value);
    // A value turned away is dropped, but its decoded forms are still tried: they are other strings.
    return true;
  }

  /**
   * Whether the kept values may stand in another order than gathering gives them: gathering keeps a text at the
   * place it was first seen, which for a text first seen as a parameter name the screen turned away (the SQL
   * detector passes over names that are plain words) is earlier than where the screen kept it. With two values or
   * more kept, the findings would then come in another order; the caller gathers instead.
   */
  keptOutOfOrder(): boolean {
    const kept = this.keptInputs();
    const turnedAway = this.keysTurnedAway;
    if (kept.length < 2 || turnedAway === undefined) return false;
    return kept.some((input) => turnedAway.includes(input.value));
  }
  private keysTurnedAway: string[] | undefined;

  /** The caller then gathers as before, with the budget pass and its search: nothing more to walk here. */
  protected override skip(reason: SkipReason, path: string): void {
    super.skip(reason, path);
    this.full = true;
  }
}

/** Whether `add` would try decoded forms of this value (percent-decoding, JWT claims, base64): false for most. */
export function hasDecodedForms(value: string): boolean {
  return decodedFormsOf(value) !== NO_DECODED_FORM;
}

const NO_DECODED_FORM = 0;
const PERCENT_ENCODED = 1;
const JWT_LIKE = 2;
const BASE64_LIKE = 4;
/** Values longer than this are not base64-decoded. */
const MAX_BASE64_LENGTH = 64 * 1024;

/** Which decoded forms `add` tries for a value (PERCENT_ENCODED | JWT_LIKE | BASE64_LIKE): none for most values. */
function decodedFormsOf(value: string): number {
  const forms = value.includes('%') ? PERCENT_ENCODED : NO_DECODED_FORM;
  if (value.length < 8) return forms;
  // The first character before `startsWith`: each is a call into V8, and most values start otherwise.
  const first = value.charCodeAt(0);
  const jwt = (first === 101 /* e */ && value.startsWith('eyJ')) || (first === 66 /* B */ && value.startsWith('Bearer eyJ'));
  // isBase64Like stops at the first character outside the alphabet, which most values have early (`.`, `=`, `:`).
  const base64 = value.length <= MAX_BASE64_LENGTH && isBase64Like(value);
  return forms | (jwt ? JWT_LIKE : NO_DECODED_FORM) | (base64 ? BASE64_LIKE : NO_DECODED_FORM);
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isBase64Url(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95;
    if (!ok) return false;
  }
  return true;
}

/** Base64 or base64url alphabet, valid length, and the character mix that encoded text has. */
function isBase64Like(text: string): boolean {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 61 /* = */) end--;
  if (text.length - end > 2) return false;
  if (end !== text.length && text.length % 4 !== 0) return false;
  let sawDigit = false;
  let sawUpper = false;
  let sawLower = false;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 65 && c <= 90) sawUpper = true;
    else if (c >= 97 && c <= 122) sawLower = true;
    else if (c >= 48 && c <= 57) sawDigit = true;
    else if (c !== 43 && c !== 47 && c !== 45 && c !== 95) return false;
  }
  // Base64 of text mixes cases (or letters and digits); words like "keep-alive" do not.
  return (sawUpper && sawLower) || (sawDigit && (sawUpper || sawLower));
}

function hasBinaryControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 32 && c !== 9 && c !== 10 && c !== 13) return true;
  }
  return false;
}

/** UTF-8 text of a buffer, or null when it is binary (invalid UTF-8 or control characters). */
export function decodeText(buffer: Buffer): string | null {
  const text = buffer.toString('utf8');
  return text.includes('\uFFFD') || hasBinaryControl(text) ? null : text;
}

/** A NUL or other C0 control byte (besides tab/newlines) in the first bytes: an image, an archive, a protobuf. */
export function isBinary(head: Buffer): boolean {
  for (let i = 0; i < head.length; i++) {
    const c = head[i]!;
    if (c < 32 && c !== 9 && c !== 10 && c !== 13) return true;
  }
  return false;
}
