import type { HtmlEvent, UserInput } from '../events.js';
import type { Detector, Finding } from './types.js';
import { forEachOccurrence } from '../grammar/occurrences.js';
import { tokenizeHtml, type HtmlToken } from '../grammar/html.js';
import { tokenizeJs } from '../grammar/js-tokenizer.js';

/**
 * Reflected XSS: request input that changes the structure of an HTML response the app writes.
 *
 * The chunk is tokenized with parse5's WHATWG tokenizer (the browser's own state machine, raw-text states for
 * `<script>`, `<style>`, `<textarea>`, `<title>` included), once as written and once with the input's
 * occurrence replaced by neutral letters. The input is an attack when:
 *  - the token sequence differs — it opened or closed a tag or comment, or added an attribute (`tag`,
 *    `comment`, `attribute`, `event-handler` when the new attribute is `on*`);
 *  - it stays inside an `on*` attribute or a `<script>` body but changes the JavaScript token structure there
 *    (`event-handler`, `script`): it left a string, added a call or an operator;
 *  - it decides that a URL attribute (`href`, `src`, `action`, `formaction`, …) starts with `javascript:` or
 *    `vbscript:` after the browser decodes character references and drops control characters (`javascript-url`).
 * Input that arrives escaped (`&lt;b&gt;`) does not occur in the chunk; input that occurs verbatim but stays
 * text (`a < b`, `<b>` inside a `<textarea>`) changes nothing. Each chunk of a streamed response is judged
 * alone, from the data state, without buffering the body.
 */

export type XssReason = 'tag' | 'comment' | 'attribute' | 'event-handler' | 'javascript-url' | 'script';

/** A value without any of these cannot change HTML or JavaScript structure. */
const SPECIAL = /[<>"'`=:;(){}/\\]/;
const MAX_OCCURRENCES = 8;
const URL_ATTRIBUTES: ReadonlySet<string> = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'data', 'poster', 'background', 'cite', 'codebase']);
const SCRIPT_SCHEME = /^(?:javascript|vbscript):/;

function signature(tokens: readonly HtmlToken[]): string {
  let s = '';
  for (const t of tokens) s += t.type === 'text' ? '|T' : `|${t.type}:${t.name}:${t.attrs.map((a) => a.name).join(',')}`;
  return s;
}

function jsShape(source: string): string {
  let s = '';
  for (const t of tokenizeJs(source).tokens) {
    switch (t.type) {
      case 'punctuator':
        s += ` ${source.slice(t.start, t.end)}`;
        break;
      case 'string':
      case 'template':
        s += ' S';
        break;
      case 'comment':
        s += ' C';
        break;
      default:
        s += t.type.startsWith('unterminated') ? ' U' : ' w';
    }
  }
  return s;
}

function schemeOf(value: string): string {
  // Browsers drop leading C0 controls and spaces and tabs/newlines anywhere before reading the scheme.
  return value.replace(/[\u0000-\u0020]/g, '').toLowerCase();
}

/** Why the neutral version differs in token sequence: the first token that differs says what the input added. */
function structureReason(original: readonly HtmlToken[], neutral: readonly HtmlToken[]): XssReason {
  const count = (tokens: readonly HtmlToken[], type: HtmlToken['type']) => tokens.reduce((n, t) => n + (t.type === type ? 1 : 0), 0);
  if (count(original, 'comment') !== count(neutral, 'comment')) return 'comment';
  if (count(original, 'start') !== count(neutral, 'start') || count(original, 'end') !== count(neutral, 'end')) return 'tag';
  for (let i = 0; i < original.length && i < neutral.length; i++) {
    const o = original[i]!;
    const n = neutral[i]!;
    if (o.name !== n.name) return 'tag';
    const names = new Set(n.attrs.map((a) => a.name));
    const added = o.attrs.filter((a) => !names.has(a.name));
    if (added.length > 0) return added.some((a) => a.name.startsWith('on')) ? 'event-handler' : 'attribute';
  }
  return 'attribute';
}

/** Same token sequence: is the occurrence inside a script context or a URL attribute whose meaning it changed? */
function contextReason(html: string, neutralHtml: string, original: readonly HtmlToken[], neutral: readonly HtmlToken[], start: number): XssReason | undefined {
  for (let i = 0; i < original.length; i++) {
    const t = original[i]!;
    if (start < t.start || start >= t.end) continue;
    const n = neutral[i]!;
    if (t.type === 'text' && t.rawTextOf === 'script') {
      return jsShape(html.slice(t.start, t.end)) !== jsShape(neutralHtml.slice(n.start, n.end)) ? 'script' : undefined;
    }
    if (t.type !== 'start') return undefined;
    for (let j = 0; j < t.attrs.length; j++) {
      const a = t.attrs[j]!;
      if (start < a.start || start >= a.end) continue;
      const na = n.attrs[j];
      if (!na) return undefined;
      if (a.name.startsWith('on')) return jsShape(a.value) !== jsShape(na.value) ? 'event-handler' : undefined;
      if (URL_ATTRIBUTES.has(a.name) && SCRIPT_SCHEME.test(schemeOf(a.value)) && !SCRIPT_SCHEME.test(schemeOf(na.value))) return 'javascript-url';
      return undefined;
    }
    return undefined;
  }
  return undefined;
}

export const xss: Detector<HtmlEvent> = {
  id: 'xss',
  kinds: ['html'],
  detect(event, inputs) {
    const html = event.html;
    let original: HtmlToken[] | undefined;
    let originalSignature = '';
    for (const input of inputs) {
      const v = input.value;
      if (v.length === 0 || v.length > html.length || !SPECIAL.test(v)) continue;
      const first = html.indexOf(v);
      if (first === -1) continue;
      if (!original) {
        original = tokenizeHtml(html);
        originalSignature = signature(original);
      }
      const tokens = original;
      let found: Finding | undefined;
      let seen = 0;
      forEachOccurrence(html, v, first, (start) => {
        const end = start + v.length;
        const neutralHtml = html.slice(0, start) + 'a'.repeat(v.length) + html.slice(end);
        const neutral = tokenizeHtml(neutralHtml);
        const reason = signature(neutral) !== originalSignature ? structureReason(tokens, neutral) : contextReason(html, neutralHtml, tokens, neutral, start);
        if (reason) {
          found = { detector: 'xss', kind: 'attack', input, start, end, reason };
          return false;
        }
        return ++seen < MAX_OCCURRENCES;
      });
      if (found) return [found];
    }
    return decodedAttributeFinding(html, inputs, () => (original ??= tokenizeHtml(html)));
  },
};

const ANCHOR = /[A-Za-z0-9]{4,}/;

/**
 * An escaper made for text (`'` → `&#39;`) does not protect an event handler or a URL: the browser decodes
 * character references in attribute values before running them. Inputs that do not occur verbatim are looked
 * for in the decoded values of `on*` and URL attributes — only when one of their words is in the chunk at all.
 */
function decodedAttributeFinding(html: string, inputs: readonly UserInput[], tokens: () => HtmlToken[]): Finding[] {
  for (const input of inputs) {
    const v = input.value;
    if (v.length === 0 || v.length > html.length || !SPECIAL.test(v)) continue;
    const anchor = ANCHOR.exec(v)?.[0];
    if (!anchor || !html.includes(anchor) || html.includes(v)) continue;
    for (const t of tokens()) {
      if (t.type !== 'start') continue;
      for (const a of t.attrs) {
        const handler = a.name.startsWith('on');
        if (!handler && !URL_ATTRIBUTES.has(a.name)) continue;
        const at = a.value.indexOf(v);
        if (at === -1) continue;
        const neutral = a.value.slice(0, at) + 'a'.repeat(v.length) + a.value.slice(at + v.length);
        const changed = handler
          ? jsShape(a.value) !== jsShape(neutral)
          : SCRIPT_SCHEME.test(schemeOf(a.value)) && !SCRIPT_SCHEME.test(schemeOf(neutral));
        if (changed) return [{ detector: 'xss', kind: 'attack', input, start: a.start, end: a.end, reason: handler ? 'event-handler' : 'javascript-url' }];
      }
    }
  }
  return [];
}
