import { describe, expect, it } from 'vitest';
import {
  PROBLEM,
  challengeHeader,
  challengeResponse,
  forbiddenResponse,
  payloadTooLargeResponse,
  tooManyAttemptsResponse,
  unsupportedMediaTypeResponse,
} from '../../../src/enforce/index.js';

describe('enforce: the responses the agent writes', () => {
  it('403 says nothing about why', () => {
    expect(forbiddenResponse('abc')).toEqual({
      status: 403,
      headers: {},
      body: '{"type":"about:blank","title":"Forbidden","status":403,"detail":"The request was refused.","instance":"urn:stepguard:incident:abc"}',
    });
  });

  it('401 carries the RFC 9470 challenge in WWW-Authenticate and the body', () => {
    const r = challengeResponse({ challengeId: 'c1', acrValues: ['urn:stepguard:acr:otp'], maxAge: 60 }, '/.well-known/stepguard/step-up', 'i1');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe(challengeHeader(['urn:stepguard:acr:otp'], 60));
    expect(r.headers['www-authenticate']).toMatch(/^Bearer error="insufficient_user_authentication", .*acr_values="urn:stepguard:acr:otp", max_age="60"$/);
    expect(JSON.parse(r.body)).toMatchObject({ type: PROBLEM.stepUpRequired, challenge_id: 'c1', max_age: 60, verify_uri: '/.well-known/stepguard/step-up' });
  });

  it('429 tells when to retry', () => {
    const r = tooManyAttemptsResponse(42);
    expect(r).toMatchObject({ status: 429, headers: { 'retry-after': '42' } });
    expect(JSON.parse(r.body)).toEqual({ type: PROBLEM.tooManyAttempts, title: 'Too many attempts', status: 429, detail: 'Too many failed verifications. Try again in 42 seconds.' });
  });

  it('413 and 415 are problem details; 415 names what is accepted', () => {
    expect(JSON.parse(payloadTooLargeResponse('Under 8 KiB, please.').body)).toEqual({ type: 'about:blank', title: 'Payload Too Large', status: 413, detail: 'Under 8 KiB, please.' });
    const r = unsupportedMediaTypeResponse(['application/json']);
    expect(r).toMatchObject({ status: 415, headers: { accept: 'application/json' } });
    expect(JSON.parse(r.body)).toMatchObject({ status: 415, detail: 'Send the body as application/json.' });
  });
});
