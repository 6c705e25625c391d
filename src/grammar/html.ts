/**
 * HTML tokens with source offsets, from parse5's WHATWG tokenizer (the same state machine browsers run). The
 * tree builder is not involved: it only switches the tokenizer into raw-text states after `<script>`,
 * `<style>`, `<textarea>`… which is done here the same way, so script and style bodies come out as text.
 */
import type { Tokenizer, TokenizerMode as TokenizerModes } from 'parse5';

type Parse5 = typeof import('parse5');
type Mode = (typeof TokenizerModes)[keyof typeof TokenizerModes];

/** parse5 (~30 ms to load) is required at the first HTML response judged, not at the agent's start. */
let loaded: { parse5: Parse5; modeAfter: Readonly<Record<string, Mode>> } | undefined;
function parse5(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use
  const lib = require('parse5') as Parse5;
  const M = lib.TokenizerMode;
  const modeAfter = {
    script: M.SCRIPT_DATA,
    style: M.RAWTEXT,
    xmp: M.RAWTEXT,
    iframe: M.RAWTEXT,
    noembed: M.RAWTEXT,
    noframes: M.RAWTEXT,
    textarea: M.RCDATA,
    title: M.RCDATA,
    plaintext: M.PLAINTEXT,
  };
  loaded = { parse5: lib, modeAfter };
  return loaded;
}

interface Located {
  readonly location: { readonly startOffset: number; readonly endOffset: number } | null;
}

export type HtmlTokenType = 'start' | 'end' | 'comment' | 'doctype' | 'text';

export interface HtmlAttribute {
  readonly name: string;
  /** Decoded value (character references resolved), as the browser sees it. */
  readonly value: string;
  /** Offsets of the whole `name="value"` in the source. */
  readonly start: number;
  readonly end: number;
}

export interface HtmlToken {
  readonly type: HtmlTokenType;
  /** Tag name for tags, `` for others. */
  readonly name: string;
  readonly start: number;
  readonly end: number;
  readonly attrs: readonly HtmlAttribute[];
  /** For text: the raw-text element it is the body of (`script`, `style`, `textarea`, `title`…), else ``. */
  readonly rawTextOf: string;
}


/** Tokenizes `html` from the data state. Never throws on malformed input (the tokenizer recovers as browsers do). */
export function tokenizeHtml(html: string): HtmlToken[] {
  const { parse5: lib, modeAfter } = parse5();
  const tokens: HtmlToken[] = [];
  let rawTextOf = '';
  let text: { start: number; end: number } | undefined;
  const flushText = () => {
    if (text) tokens.push({ type: 'text', name: '', start: text.start, end: text.end, attrs: [], rawTextOf });
    text = undefined;
  };
  const onCharacter = (token: Located) => {
    const loc = token.location;
    if (!loc) return;
    if (text && text.end === loc.startOffset) text.end = loc.endOffset;
    else {
      flushText();
      text = { start: loc.startOffset, end: loc.endOffset };
    }
  };
  const push = (type: HtmlTokenType, token: Located, name = '', attrs: HtmlAttribute[] = []) => {
    flushText();
    const loc = token.location;
    tokens.push({ type, name, start: loc?.startOffset ?? 0, end: loc?.endOffset ?? 0, attrs, rawTextOf: '' });
  };
  const tokenizer: Tokenizer = new lib.Tokenizer(
    { sourceCodeLocationInfo: true },
    {
      onCharacter,
      onWhitespaceCharacter: onCharacter,
      onNullCharacter: onCharacter,
      onComment: (t) => push('comment', t),
      onDoctype: (t) => push('doctype', t),
      onEof: () => flushText(),
      onStartTag: (t) => {
        const attrs: HtmlAttribute[] = t.attrs.map((a) => {
          const loc = t.location?.attrs?.[a.name];
          return { name: a.name, value: a.value, start: loc?.startOffset ?? 0, end: loc?.endOffset ?? 0 };
        });
        push('start', t, t.tagName, attrs);
        const mode = modeAfter[t.tagName];
        if (mode !== undefined) {
          tokenizer.state = mode;
          rawTextOf = t.tagName;
        }
      },
      onEndTag: (t) => {
        push('end', t, t.tagName);
        rawTextOf = '';
      },
    },
  );
  tokenizer.write(html, true);
  flushText();
  return tokens;
}
