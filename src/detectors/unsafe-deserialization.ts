import type { DeserializeEvent } from '../events.js';
import type { Detector, Finding } from './types.js';

/**
 * Unsafe deserialization: request input that hands a code-running loader the marker that makes it run code.
 *  - `node-serialize`: `unserialize` evaluates every string that starts with `_$$ND_FUNC$$_` (CVE-2017-5941);
 *    with a trailing `()` the function runs during `unserialize` itself.
 *  - `js-yaml` < 4 `load`/`loadAll` with its default schema: `!!js/function` (also spelled
 *    `!<tag:yaml.org,2002:js/function>` or through a `%TAG` directive) builds a real function, which runs as soon
 *    as the app coerces the object (`toString`, `valueOf`) or calls a method.
 * The marker must be in both the text and some input (any decoding the app did in between — base64 cookies, JSON
 * escaping — does not matter: nobody sends a function marker by accident), which is an `attack`. Input that is
 * the whole serialized text without a marker is a `vulnerability`: the app deserialises untrusted data with a
 * loader that would run code.
 */

export type UnsafeDeserializationReason = 'function-marker' | 'js-type' | 'untrusted-input';

const ND_FUNC = '_$$ND_FUNC$$_';
const YAML_JS_FUNCTION = /!!js\/function|tag:yaml\.org,2002:js\//;

function marker(format: DeserializeEvent['format'], text: string): boolean {
  return format === 'node-serialize' ? text.includes(ND_FUNC) : YAML_JS_FUNCTION.test(text);
}

export const unsafeDeserialization: Detector<DeserializeEvent> = {
  id: 'unsafe-deserialization',
  kinds: ['deserialize'],
  detect(event, inputs) {
    const text = event.text;
    const reason: UnsafeDeserializationReason = event.format === 'node-serialize' ? 'function-marker' : 'js-type';
    if (marker(event.format, text)) {
      for (const input of inputs) {
        if (!marker(event.format, input.value)) continue;
        const at = text.indexOf(input.value);
        const start = at === -1 ? 0 : at;
        const end = at === -1 ? text.length : at + input.value.length;
        return [{ detector: 'unsafe-deserialization', kind: 'attack', input, start, end, reason } satisfies Finding];
      }
    }
    const whole = text.trim();
    if (whole.length < 2) return [];
    for (const input of inputs) {
      if (input.value.trim() === whole) {
        return [{ detector: 'unsafe-deserialization', kind: 'vulnerability', input, start: 0, end: text.length, reason: 'untrusted-input' } satisfies Finding];
      }
    }
    return [];
  },
};

