/**
 * The string literals of a GraphQL document, decoded as the server decodes them before a resolver sees them:
 * `user(name: "x' OR '1'='1")` hands the resolver `x' OR '1'='1`, which is request input although it appears in
 * the request only inside the document text. One left-to-right pass, no backtracking: comments are skipped (a
 * quote inside one starts nothing), `"…"` strings are unescaped, `"""…"""` block strings are dedented per the
 * spec (BlockStringValue). Anything that is not a string or comment is skipped a character at a time, so a
 * malformed document costs the same as a valid one.
 */

/** Executable documents start with `{` or one of these keywords (type-system documents are never executed). */
const OPERATION_KEYWORDS = ['query', 'mutation', 'subscription', 'fragment'];

/** Whether `text` starts like an executable GraphQL document (after ignored tokens: whitespace, commas, comments, BOM). */
export function looksLikeGraphql(text: string): boolean {
  let i = skipIgnored(text, 0);
  if (i >= text.length) return false;
  if (text.charCodeAt(i) === 123 /* { */) return true;
  for (const keyword of OPERATION_KEYWORDS) {
    if (text.startsWith(keyword, i)) {
      const next = text.charCodeAt(i + keyword.length);
      // `query{`, `query Name`, `query(`, `query ` — not `queryX`.
      if (Number.isNaN(next) || !isNameChar(next)) return true;
    }
  }
  return false;
}

/** Every string literal's value in document order, at most `max` of them; [] for text that is not GraphQL. */
export function graphqlStringValues(text: string, max = 1000): string[] {
  const values: string[] = [];
  if (!looksLikeGraphql(text)) return values;
  let i = 0;
  const n = text.length;
  while (i < n && values.length < max) {
    const c = text.charCodeAt(i);
    if (c === 35 /* # */) {
      i = endOfLine(text, i);
    } else if (c === 34 /* " */) {
      if (text.startsWith('"""', i)) {
        const end = blockStringEnd(text, i + 3);
        values.push(blockStringValue(text.slice(i + 3, end).replaceAll('\\"""', '"""')));
        i = end + 3;
      } else {
        const [value, end] = stringValue(text, i + 1);
        values.push(value);
        i = end + 1;
      }
    } else {
      i++;
    }
  }
  return values;
}

function skipIgnored(text: string, from: number): number {
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 44 /* , */ || c === 0xfeff) i++;
    else if (c === 35) i = endOfLine(text, i);
    else break;
  }
  return i;
}

function isNameChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95;
}

function endOfLine(text: string, from: number): number {
  let i = from;
  while (i < text.length && text.charCodeAt(i) !== 10 && text.charCodeAt(i) !== 13) i++;
  return i;
}

/** Index of the closing `"""` (or the end of the text for an unterminated one); `\"""` does not close. */
function blockStringEnd(text: string, from: number): number {
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */ && text.startsWith('"""', i + 1)) i += 4;
    else if (c === 34 && text.startsWith('"""', i)) return i;
    else i++;
  }
  return text.length;
}

/** A `"…"` string from just after its opening quote: [decoded value, index of the closing quote or line end]. */
function stringValue(text: string, from: number): [string, number] {
  let out = '';
  let chunkStart = from;
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 34 || c === 10 || c === 13) break;
    if (c !== 92) {
      i++;
      continue;
    }
    out += text.slice(chunkStart, i);
    const e = text.charCodeAt(i + 1);
    let consumed = 2;
    switch (e) {
      case 34: out += '"'; break;
      case 92: out += '\\'; break;
      case 47: out += '/'; break;
      case 98: out += '\b'; break;
      case 102: out += '\f'; break;
      case 110: out += '\n'; break;
      case 114: out += '\r'; break;
      case 116: out += '\t'; break;
      case 117: {
        const [char, length] = unicodeEscape(text, i + 2);
        out += char;
        consumed = 2 + length;
        break;
      }
      default:
        // Invalid escape: the server rejects the document; keep the text as written.
        out += text.slice(i, i + 2);
    }
    i += consumed;
    chunkStart = i;
  }
  return [out + text.slice(chunkStart, i), i];
}

/** `\uXXXX` or (GraphQL 17) `\u{X…}` from just after `\u`: [the character(s), characters consumed]. */
function unicodeEscape(text: string, from: number): [string, number] {
  if (text.charCodeAt(from) === 123 /* { */) {
    const close = text.indexOf('}', from);
    if (close !== -1 && close - from <= 9) {
      const code = parseHex(text, from + 1, close);
      if (code !== undefined && code <= 0x10ffff) return [String.fromCodePoint(code), close - from + 1];
    }
    return ['\\u', 0];
  }
  const code = parseHex(text, from, from + 4);
  return code === undefined ? ['\\u', 0] : [String.fromCharCode(code), 4];
}

function parseHex(text: string, from: number, to: number): number | undefined {
  if (to > text.length || to <= from) return undefined;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    const digit = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (digit < 0) return undefined;
    value = value * 16 + digit;
  }
  return value;
}

/** The spec's BlockStringValue: common indentation removed (first line excepted), blank edge lines dropped. */
function blockStringValue(raw: string): string {
  const lines = raw.split(/\r\n|[\n\r]/);
  let common = Infinity;
  for (let k = 1; k < lines.length; k++) {
    const line = lines[k]!;
    const indent = leadingWhitespace(line);
    if (indent < line.length && indent < common) common = indent;
  }
  if (common !== Infinity) for (let k = 1; k < lines.length; k++) lines[k] = lines[k]!.slice(common);
  let first = 0;
  let last = lines.length - 1;
  while (first <= last && leadingWhitespace(lines[first]!) === lines[first]!.length) first++;
  while (last >= first && leadingWhitespace(lines[last]!) === lines[last]!.length) last--;
  return lines.slice(first, last + 1).join('\n');
}

function leadingWhitespace(line: string): number {
  let i = 0;
  while (i < line.length && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
  return i;
}
