/** The pure judges of single answers: unknown ids (404 required), answers to server requests, 2026-07-28 errors. */
import { describe, expect, it } from 'vitest';
import { discoverCheck, expectError } from '../../src/probe/modern.js';
import { answerCheck, judgeUnknownId } from '../../src/probe/session.js';
import type { Exchange } from '../../src/probe/types.js';

const ex = (status: number, extra: Partial<Exchange> = {}): Exchange => ({ at: 0, method: 'POST', path: '/mcp', status, ...extra });

describe('judgeUnknownId (spec §Session Management: 404 for an id the server does not know)', () => {
  it('404 passes, 400 is the 400-vs-404 fault, 2xx means the id was served', () => {
    expect(judgeUnknownId('forged-session', ex(404, { replica: 'b' }), 'unknown-id-accepted')).toMatchObject({ status: 'pass', detail: '404 on replica b', replica: 'b' });
    expect(judgeUnknownId('after-delete', ex(400, { error: { code: -32000, message: 'Bad Request: No valid session ID provided' } }), 'alive-after-delete')).toMatchObject({
      status: 'fail',
      symptom: 'unknown-id-400',
      http: 400,
      rpcCode: -32000,
    });
    expect(judgeUnknownId('after-delete', ex(200), 'alive-after-delete')).toMatchObject({ status: 'fail', symptom: 'alive-after-delete' });
    expect(judgeUnknownId('forged-session', ex(202), 'unknown-id-accepted')).toMatchObject({ status: 'fail', symptom: 'unknown-id-accepted' });
  });

  it('other answers fail with what they show, never as a session problem', () => {
    expect(judgeUnknownId('forged-session', ex(401, { error: { message: 'Unauthorized' } }), 'unknown-id-accepted')).toMatchObject({ status: 'fail', symptom: 'auth' });
    expect(judgeUnknownId('forged-session', ex(405), 'unknown-id-accepted')).toMatchObject({ status: 'fail', symptom: 'rpc-error' });
    expect(judgeUnknownId('forged-session', { at: 0, method: 'POST', path: '/mcp', network: 'timed out' }, 'unknown-id-accepted')).toMatchObject({ symptom: 'timeout' });
  });
});

describe('answerCheck', () => {
  it('is absent without answers, passes when all were accepted, fails on a refused one', () => {
    expect(answerCheck([ex(200, { rpc: 'tools/list' })])).toBeUndefined();
    expect(answerCheck([ex(202, { rpc: 'response' }), ex(202, { rpc: 'response', replica: 'c' })])).toMatchObject({ status: 'pass', replica: 'c' });
    expect(answerCheck([ex(202, { rpc: 'response' }), ex(404, { rpc: 'response', replica: 'a', error: { code: -32001, message: 'Session not found' } })])).toMatchObject({
      status: 'fail',
      symptom: 'answer-refused',
      detail: 'an answer to a server-initiated request got 404 on replica a: "Session not found" (-32001)',
    });
  });
});

describe('2026-07-28 judges', () => {
  const id = 'req-1';
  it('expectError wants the exact status, code and the request id', () => {
    const good = { ex: ex(400), message: { id, error: { code: -32022, message: 'Unsupported protocol version', data: { supported: ['2026-07-28'], requested: '2099-01-01' } } } };
    expect(expectError('unsupported-version', good, id, 400, -32022)).toMatchObject({ status: 'pass' });
    expect(expectError('unsupported-version', { ...good, ex: ex(200) }, id, 400, -32022)).toMatchObject({ status: 'fail', symptom: 'wrong-error', detail: expect.stringContaining('HTTP 200, expected 400') });
    const legacy = { ex: ex(400), message: { id: null, error: { code: -32000, message: 'Bad Request: Server not initialized' } } };
    const r = expectError('unsupported-version', legacy, id, 400, -32022);
    expect(r.detail).toContain('code -32000, expected -32022');
    expect(r.detail).toContain("error id null, expected the request's");
    expect(expectError('x', good, id, 400, -32022, () => 'data.supported does not list 2026-07-28')).toMatchObject({ status: 'fail', detail: expect.stringContaining('data.supported') });
  });

  it('discoverCheck wants supportedVersions naming 2026-07-28 and capabilities', () => {
    expect(discoverCheck({ ex: ex(200, { replica: 'a' }), message: { id, result: { supportedVersions: ['2026-07-28'], capabilities: {} } } })).toMatchObject({ status: 'pass', detail: 'supportedVersions 2026-07-28 (replica a)' });
    expect(discoverCheck({ ex: ex(200), message: { id, result: { capabilities: {} } } })).toMatchObject({ status: 'fail', symptom: 'wrong-error' });
    expect(discoverCheck({ ex: { at: 0, method: 'POST', path: '/mcp', network: 'fetch failed' } })).toMatchObject({ status: 'fail', symptom: 'unreachable' });
  });
});
