/**
 * isHtmlType (hooks/html-response.ts) answers without its pattern for types that start with a letter. It must give
 * the pattern's answer for every input: case variants, leading spaces, non-ASCII look-alikes, prefixes of prefixes.
 */
import { describe, expect, it } from 'vitest';
import { isHtmlType } from '../../../hooks/html-response.js';

const PATTERN = /^\s*(?:text\/html|application\/xhtml\+xml)/i;

describe('isHtmlType', () => {
  const cases = [
    'text/html',
    'text/html; charset=utf-8',
    'TEXT/HTML',
    'Text/Html;charset=UTF-8',
    'application/xhtml+xml',
    'APPLICATION/XHTML+XML; charset=utf-8',
    ' text/html',
    '\ttext/html',
    '\u00a0text/html',
    '\ufefftext/html',
    'application/json; charset=utf-8',
    'application/xhtml',
    'application/xhtml+xm',
    'text/htm',
    'text/plain',
    'text/htmlx',
    'texT/html',
    'tExt/HTML',
    '',
    't',
    'a',
    '[text/html',
    '@text/html',
    'ſext/html', // U+017F upper-cases to S, not T: no match in either
    'text\u2215html',
    'image/svg+xml',
    'multipart/form-data',
    'Text/html',
    'application/XHTML+xml',
  ];
  for (const type of cases) {
    it(`${JSON.stringify(type)} → ${PATTERN.test(type)}`, () => {
      expect(isHtmlType(type)).toBe(PATTERN.test(type));
    });
  }

  it('agrees with the pattern on random mixtures of its own characters', () => {
    const alphabet = 'textTEXThtmlHTMLapplicationAPPLICATIONxhtml+/; \t-';
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const prefixes = ['text/html', 'application/xhtml+xml', 'TEXT/HTML', 'Application/Xhtml+Xml'];
    for (let n = 0; n < 5000; n++) {
      let type = random() < 0.5 ? prefixes[Math.floor(random() * prefixes.length)]!.slice(0, Math.floor(random() * 22)) : '';
      const extra = Math.floor(random() * 6);
      for (let k = 0; k < extra; k++) type += alphabet[Math.floor(random() * alphabet.length)];
      expect(isHtmlType(type), JSON.stringify(type)).toBe(PATTERN.test(type));
    }
  });
});
