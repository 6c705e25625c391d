/**
 * scanShell().count(cls, start, end): the command-injection detector's O(1) "how many characters of this
 * syntax class lie in [start, end)", kept in 1 byte per character per class with a count per 256-character
 * block. Compared with a plain count over `syntax` on commands longer than several blocks.
 */
import { describe, expect, it } from 'vitest';
import { scanShell, type SyntaxClass } from '../../../src/grammar/shell-tokenizer.js';

type Counted = Exclude<SyntaxClass, 0>;

/** A deterministic pseudo-random generator (tests must not depend on chance). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const ALPHABET = ['a', 'b', ' ', ';', '|', '&', '>', '<', '$(', ')', '`', '"', "'", '*', '{', '}', '~', '#', '\n', '\\', '${', '=', '2>', '$'];

describe('shell syntax class counts', () => {
  it('agree with a plain count for any span, across 256-character blocks, for every class', () => {
    const random = lcg(14);
    for (let round = 0; round < 6; round++) {
      let command = '';
      while (command.length < 300 + round * 500) command += ALPHABET[Math.floor(random() * ALPHABET.length)];
      const scan = scanShell(command);
      const n = command.length;
      const spans: Array<[number, number]> = [[0, n], [0, 0], [n, n], [255, 257], [256, 512]];
      for (let k = 0; k < 60; k++) {
        const a = Math.floor(random() * (n + 1));
        const b = Math.floor(random() * (n + 1));
        spans.push([Math.min(a, b), Math.max(a, b)]);
      }
      for (let cls = 1; cls <= 8; cls++) {
        for (const [s, e] of spans) {
          if (e > n) continue;
          let expected = 0;
          for (let i = s; i < e; i++) if (scan.syntax[i] === cls) expected++;
          expect(scan.count(cls as Counted, s, e)).toBe(expected);
        }
      }
    }
  });

  it('a block of 256 characters of one class does not wrap its 1-byte count', () => {
    const command = ';'.repeat(1000);
    const scan = scanShell(command);
    const cls = scan.syntax[0]! as Counted;
    expect(cls).toBeGreaterThan(0);
    expect(scan.count(cls, 0, 1000)).toBe(1000);
    expect(scan.count(cls, 0, 256)).toBe(256);
    expect(scan.count(cls, 255, 513)).toBe(258);
  });
});
