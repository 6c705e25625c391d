import { describe, expect, it } from 'vitest';
import { forEachQueryPair } from '../../../src/context/request-context.js';

const pairs = (search: string): [string, string][] => {
  const out: [string, string][] = [];
  forEachQueryPair(search, (key, value) => out.push([key, value]));
  return out;
};

describe('query pairs (the URLSearchParams shortcut of input gathering)', () => {
  it('yields what URLSearchParams yields on the shapes queries take', () => {
    const cases = ['', 'a', 'a=', '=b', '=', '&&', '&a=1&', 'a=1&b=2', 'a=1&&b', 'a==b', 'a=b=c', 'x=1&x=2', 'k&v=', 'a=;b', 'ä=ö', '?a=1', '??a', 'a=%41', 'a=%zz', 'a+b=c+d', '\ud800=x', 'name=alice', '\ud83d\ude00=%41', '\ud83d\ude00=x&\ud800=y', 'a=\ud83d\ude00+b', `${'k'.repeat(64)}=v`, `a=${'v'.repeat(70)}&b`, `?${'a=1&'.repeat(20)}`];
    for (const search of cases) expect(pairs(search), JSON.stringify(search)).toEqual([...new URLSearchParams(search)]);
  });

  it('agrees with URLSearchParams on random strings over the characters that matter', () => {
    const alphabet = ['a', 'b', '=', '&', '%', '4', '1', '+', '?', ' ', 'é', '\ud83d', '\ude00'];
    // Without the characters that send a query to URLSearchParams: the shortcut's own splitting at every length.
    const plain = ['a', 'b', '=', '&', '1', ' ', 'é', ';'];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    // Short and long queries (a pair cut out of a long one by searches that start past its first characters).
    for (let i = 0; i < 3000; i++) {
      let search = '';
      const letters = i % 2 === 0 ? plain : alphabet;
      for (let n = i % 3 === 0 ? 60 + random(40) : random(12); n > 0; n--) search += letters[random(letters.length)];
      expect(pairs(search), JSON.stringify(search)).toEqual([...new URLSearchParams(search)]);
    }
  });
});
