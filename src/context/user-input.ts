import type { InputSource, UserInput } from '../events.js';

/**
 * Flattens request data into the list of strings the detectors look for in sinks.
 * Runs once per request, at the first sink; bounded in count, size and depth so a hostile body
 * cannot make it expensive.
 */

export interface InputLimits {
  readonly maxInputs: number;
  readonly maxInputBytes: number;
}

/** Values shorter than this can't change a statement's structure in a way detectors would flag. */
const MIN_LENGTH = 1;
const MAX_DEPTH = 32;
const MAX_DECODE_ROUNDS = 3;

export class InputCollector {
  private readonly byValue = new Map<string, UserInput>();
  private bytes = 0;
  private full = false;

  constructor(private readonly limits: InputLimits) {}

  get inputs(): UserInput[] {
    return [...this.byValue.values()];
  }

  /** Adds a value and the forms an app is likely to decode it into. */
  add(source: InputSource, path: string, value: string, isKey = false): void {
    if (!this.addExact(source, path, value, isKey)) return;
    if (value.includes('%')) this.addUrlDecoded(source, path, value);
    if (value.length >= 8) {
      this.addJwtClaims(source, path, value);
      this.addBase64Decoded(source, path, value);
    }
  }

  /** Walks objects/arrays: keys and values; arrays also joined (`a,b`), as frameworks do for repeated params. */
  addTree(source: InputSource, path: string, value: unknown, depth = 0): void {
    if (this.full || value === null || value === undefined) return;
    if (typeof value === 'string') return this.add(source, path, value);
    if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
      return this.add(source, path, String(value));
    }
    if (depth >= MAX_DEPTH || typeof value !== 'object') return;
    if (Buffer.isBuffer(value)) return this.addBuffer(source, path, value);
    if (Array.isArray(value)) {
      const scalars: string[] = [];
      for (let i = 0; i < value.length && !this.full; i++) {
        const item: unknown = value[i];
        if (typeof item === 'string' || typeof item === 'number') scalars.push(String(item));
        this.addTree(source, `${path}.${i}`, item, depth + 1);
      }
      if (scalars.length > 1) this.add(source, path, scalars.join(','));
      return;
    }
    for (const key of Object.keys(value)) {
      if (this.full) return;
      this.add(source, `${path}.${key}`, key, true);
      let child: unknown;
      try {
        child = (value as Record<string, unknown>)[key];
      } catch {
        continue; // a throwing getter on a framework object
      }
      this.addTree(source, `${path}.${key}`, child, depth + 1);
    }
  }

  /** Text content of a buffer (uploads, raw bodies); binary data is ignored. */
  addBuffer(source: InputSource, path: string, buffer: Buffer): void {
    if (buffer.length === 0 || buffer.length > this.limits.maxInputBytes - this.bytes) return;
    const text = buffer.toString('utf8');
    if (text.includes('\uFFFD') || hasBinaryControl(text)) return;
    this.add(source, path, text);
  }

  private addExact(source: InputSource, path: string, value: string, isKey = false): boolean {
    if (this.full || value.length < MIN_LENGTH) return false;
    const existing = this.byValue.get(value);
    if (existing) {
      // The same text as a value outranks it as a key: values are what apps concatenate.
      if (existing.isKey && !isKey) this.byValue.set(value, { source, path, value });
      return true;
    }
    if (this.byValue.size >= this.limits.maxInputs || this.bytes + value.length > this.limits.maxInputBytes) {
      this.full = true;
      return false;
    }
    this.bytes += value.length;
    this.byValue.set(value, isKey ? { source, path, value, isKey } : { source, path, value });
    return true;
  }

  private addUrlDecoded(source: InputSource, path: string, value: string): void {
    let current = value;
    for (let round = 0; round < MAX_DECODE_ROUNDS && current.includes('%'); round++) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(current.replace(/\+/g, ' '));
      } catch {
        return;
      }
      if (decoded === current) return;
      this.addExact(source, path, decoded);
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
    if (value.length > 64 * 1024 || !isBase64Like(value)) return;
    const decoded = Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64').toString('utf8');
    if (decoded.length < 2 || decoded.includes('\uFFFD') || hasBinaryControl(decoded)) return;
    this.addExact(source, `${path}.base64`, decoded);
  }
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
