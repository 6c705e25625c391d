import { describe, expect, it } from 'vitest';
import { xss } from '../../../src/detectors/xss.js';
import type { UserInput } from '../../../src/events.js';

const q = (value: string): UserInput => ({ source: 'query', path: 'query.q', value });
/** The page template with X replaced by the input, as an app that concatenates would write it. */
const judge = (template: string, value: string) => xss.detect({ kind: 'html', op: 'res.end', html: template.split('X').join(value) }, [q(value)]).map((f) => `${f.kind}:${f.reason}`);

describe('xss', () => {
  it.each([
    ['<p>Results for X</p>', '<script>alert(1)</script>', 'tag'],
    ['<p>Results for X</p>', '<img src=x onerror=alert(1)>', 'tag'],
    ['<p>X</p>', '<!-- hide the rest', 'comment'],
    ['<input value="X">', '" autofocus onfocus="alert(1)', 'event-handler'],
    ['<input value="X">', '" style="color:red', 'attribute'],
    ['<input value=X>', 'x onmouseover=alert(1)', 'event-handler'],
    ['<a href="X">home</a>', 'javascript:alert(1)', 'javascript-url'],
    ['<a href="X">home</a>', ' JAVA\tSCRIPT:alert(1)', 'javascript-url'],
    ['<script>var q = "X";</script>', '";alert(1);//', 'script'],
    ['<script>var q = "X";</script>', '</script><script>alert(1)</script>', 'tag'],
    ['<div onclick="go(\'X\')">x</div>', "');alert(1);('", 'event-handler'],
    ['<textarea>X</textarea>', '</textarea><script>alert(1)</script>', 'tag'],
    ['<title>X</title>', '</title><svg onload=alert(1)>', 'tag'],
  ])('%s with %j is an attack (%s)', (template, value, reason) => {
    expect(judge(template, value)).toEqual([`attack:${reason}`]);
  });

  it.each([
    ['<p>Results for X</p>', 'a < b'],
    ['<p>Results for X</p>', 'Tom & Jerry (2)'],
    ['<p>Results for X</p>', 'I <3 you'],
    ['<input value="X">', "it's <b>fine</b>"],
    ['<a href="X">home</a>', '/search?q=a:b'],
    ['<a href="/p?q=X">home</a>', 'javascript:alert(1)'], // in the query of a fixed URL: not the scheme
    ['<script>var q = "X";</script>', 'hello (world); a=b'],
    ['<div onclick="go(\'X\')">x</div>', 'a:b/c'],
    ['<textarea>X</textarea>', '<b>bold</b>'],
    ['<p>X</p>', '&lt;script&gt;'],
  ])('%s with %j is not an attack', (template, value) => {
    expect(judge(template, value)).toEqual([]);
  });

  it('sees through character references in handlers and URLs (the browser decodes them first)', () => {
    const html = '<div onclick="go(&#39;&#39;);alert(1);(&#39;&#39;)">x</div>';
    expect(xss.detect({ kind: 'html', op: 'res.end', html }, [q("');alert(1);('")])).toHaveLength(1);
    const link = '<a href="javascript:alert(&#39;x&#39;)">x</a>';
    expect(xss.detect({ kind: 'html', op: 'res.end', html: link }, [q("javascript:alert('x')")]).map((f) => f.reason)).toEqual(['javascript-url']);
  });

  it('judges an input that is escaped in the page as nothing', () => {
    const html = '<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>';
    expect(xss.detect({ kind: 'html', op: 'res.end', html }, [q('<script>alert(1)</script>')])).toEqual([]);
  });
});
