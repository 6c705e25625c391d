import type { UserInput, XmlEvent } from '../events.js';
import type { Detector, Finding } from './types.js';

/**
 * XXE: a document from the request, parsed with entity substitution or DTD loading on (libxmljs `noent`,
 * `dtdload`), that declares an external entity (`<!ENTITY x SYSTEM "file:///etc/passwd">`, a parameter entity
 * `<!ENTITY % x SYSTEM …>`, `PUBLIC` ids) or an external DTD (`<!DOCTYPE x SYSTEM "http://…">`). The
 * declaration must be in some input (the body, a field, an uploaded file's content): an app's own DTD is not
 * the client's. With substitution off, libxml2 does not fetch external entities: nothing to report.
 */

export type XxeReason = 'external-entity' | 'external-dtd';

/** The first external declaration in `text`, scanning declarations left to right (linear). */
export function externalDeclaration(text: string): { reason: XxeReason; start: number; end: number } | undefined {
  let from = 0;
  for (;;) {
    const at = text.indexOf('<!', from);
    if (at === -1) return undefined;
    const isEntity = text.startsWith('ENTITY', at + 2);
    const isDoctype = text.startsWith('DOCTYPE', at + 2);
    if (!isEntity && !isDoctype) {
      from = at + 2;
      continue;
    }
    // A DOCTYPE's external id comes before its internal subset `[`; an ENTITY declaration ends at `>`.
    let end = at + 2;
    while (end < text.length && text[end] !== '>' && !(isDoctype && text[end] === '[')) end++;
    const words = text.slice(at + 2, end).split(/[\s"']+/);
    if (words.includes('SYSTEM') || words.includes('PUBLIC')) return { reason: isEntity ? 'external-entity' : 'external-dtd', start: at, end };
    from = isDoctype && text[end] === '[' ? end + 1 : end;
  }
}

export const xxe: Detector<XmlEvent> = {
  id: 'xxe',
  kinds: ['xml'],
  detect(event, inputs) {
    if (!event.externalEntities) return [];
    const declared = externalDeclaration(event.xml);
    if (!declared) return [];
    for (const input of inputs) {
      if (input.value.length < 8 || !input.value.includes('<!')) continue;
      const own = externalDeclaration(input.value);
      if (!own) continue;
      return [{ detector: 'xxe', kind: 'attack', input: input as UserInput, start: declared.start, end: declared.end, reason: own.reason } satisfies Finding];
    }
    return [];
  },
};
