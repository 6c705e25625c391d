import { describe, expect, it } from 'vitest';
import { forEachQueryPair } from '../../../src/context/request-context.js';

const pairs = (search: string): [string, string][] => {
  const out: [string, string][] = [];
  forEachQueryPair(search, (key, value) => out.push([key, value]));
  return out;
};

describe('query pairs (the URLSearchParams shortcut of input gathering)', () => {
  it('yields what URLSearchParams yields on the shapes queries take', () => {
    const cases = ['', 'a', 'a=', '=b', '=', '&&', '&a=1&', 'a=1&b=2', 'a=1&&b', 'a==b', 'a=b=c', 'x=1&x=2', 'k&v=', 'a=;b', 'ä=ö', '?a=1', '??a', 'a=%41', 'a=%zz', 'a+b=c+d', '\ud800=x', 'name=alice', '\ud83d\ude00=%41', '\ud83d\ude00=x&\ud800=y', 'a=\ud83d\ude00+b'];
    for (const search of cases) expect(pairs(search), JSON.stringify(search)).toEqual([...new URLSearchParams(search)]);
  });

  it('agrees with URLSearchParams on random strings over the characters that matter', () => {
    const alphabet = ['a', 'b', '=', '&', '%', '4', '1', '+', '?', ' ', 'é', '\ud83d', '\ude00'];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 3000; i++) {
      let search = '';
      for (let n = random(12); n > 0; n--) search += alphabet[random(alphabet.length)];
      expect(pairs(search), JSON.stringify(search)).toEqual([...new URLSearchParams(search)]);
    }
  });
});
