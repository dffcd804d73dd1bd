import { describe, expect, it } from 'vitest';
import { CAUSE_ORDER, CAUSES } from '../../src/probe/causes.js';
import { settleNotifications } from '../../src/probe/settle.js';
import type { CheckResult, Symptom } from '../../src/probe/types.js';
import { causeOf, decideVerdict } from '../../src/probe/verdict.js';
import { DUAL_ERA, healthy, LEGACY_ERA, lost, ok, session } from './fixture.js';

const failed = (symptom: Symptom, extra: Partial<CheckResult> = {}): CheckResult => ({ id: 'x', status: 'fail', symptom, detail: 'd', ...extra });

describe('decideVerdict', () => {
  it('survives only when every check that ran passed', () => {
    const v = decideVerdict({ era: LEGACY_ERA, sessions: [healthy(0), healthy(1)] });
    expect(v).toEqual({ survives: true, headline: 'Sessions survive round-robin: every check passed (2 streamable-http sessions).', causes: [] });
  });

  it('skips and warnings do not fail the run, one failure does', () => {
    const skipped = session(0, [ok('initialize'), { id: 'notification', status: 'skip', detail: 'no GET stream held' }, { id: 'get-405', status: 'warn', symptom: 'wrong-error', detail: '400' }]);
    expect(decideVerdict({ era: LEGACY_ERA, sessions: [skipped] }).survives).toBe(true);
    const one = session(1, [ok('initialize'), failed('rpc-error')]);
    expect(decideVerdict({ era: LEGACY_ERA, sessions: [skipped, one] }).survives).toBe(false);
  });

  it('names the sticky-routing cause, counts sessions, keeps at most three examples, orders causes', () => {
    const v = decideVerdict({ era: LEGACY_ERA, sessions: [0, 1, 2, 3, 4].map(lost) });
    expect(v.survives).toBe(false);
    expect(v.causes.map((c) => c.id)).toEqual(['needs-sticky-routing', 'unknown-session-400']);
    const sticky = v.causes[0]!;
    expect(sticky.sessions).toBe(5);
    expect(sticky.evidence).toHaveLength(3);
    expect(sticky.evidence[0]).toBe('session 0 (streamable-http): initialized: 400 on replica b: "Bad Request: No valid session ID provided" (-32000)');
    expect(sticky.fix.join(' ')).toMatch(/mcp-migrate proxy/);
    expect(sticky.fix.join(' ')).toMatch(/mcp-migrate apply --store redis/);
    expect(v.headline).toBe('Sessions do not survive round-robin: sessions are lost on other replicas; unknown or ended session ids get 400 instead of 404.');
  });

  it('takes one example per session, so the examples show different sessions', () => {
    const twice = session(0, [ok('initialize'), failed('session-unknown', { id: 'tools/list', detail: 'first' }), failed('session-unknown', { id: 'ping', detail: 'second' })]);
    const v = decideVerdict({ era: LEGACY_ERA, sessions: [twice, lost(1)] });
    expect(v.causes[0]!.evidence).toEqual(['session 0 (streamable-http): tools/list: first', expect.stringMatching(/^session 1 /)]);
    expect(v.causes[0]!.sessions).toBe(2);
  });

  it('a protocol fault alone is a failed check, not a round-robin failure', () => {
    const v = decideVerdict({ era: LEGACY_ERA, sessions: [session(0, [ok('initialize'), failed('unknown-id-400')])] });
    expect(v.headline).toBe('Checks failed: unknown or ended session ids get 400 instead of 404.');
  });

  it('an unreachable endpoint is a finding', () => {
    const era = { ...LEGACY_ERA, era: 'none' as const, unreachable: 'no answer (fetch failed (ECONNREFUSED))' };
    const v = decideVerdict({ era, sessions: [] });
    expect(v.survives).toBe(false);
    expect(v.causes.map((c) => c.id)).toEqual(['unreachable']);
    expect(v.causes[0]!.evidence).toEqual(['server/discover and initialize: no answer (fetch failed (ECONNREFUSED))']);
  });

  it('a run stopped by --timeout never survives, even if what ran passed', () => {
    const v = decideVerdict({ era: LEGACY_ERA, sessions: [healthy(0)], incomplete: { reason: '--timeout 5 s reached: 1 of 10 sessions finished' } });
    expect(v.survives).toBe(false);
    expect(v.headline).toBe('Not shown: the probe did not finish within --timeout.');
  });

  it('a run that checked nothing does not survive', () => {
    expect(decideVerdict({ era: DUAL_ERA, sessions: [] })).toMatchObject({ survives: false, headline: 'Nothing was checked.' });
  });

  it('a 2026-07-28-only endpoint that passes says so', () => {
    const era = { ...DUAL_ERA, era: 'modern' as const };
    const v = decideVerdict({ era, sessions: [session(0, [ok('discover')], 'modern')] });
    expect(v).toMatchObject({ survives: true, headline: '2026-07-28 requests pass every check on any replica (1 2026-07-28 request series).' });
  });
});

describe('causeOf: symptom → cause', () => {
  it.each<[Symptom, string]>([
    ['unreachable', 'unreachable'],
    ['timeout', 'no-answer'],
    ['aborted', 'incomplete'],
    ['auth', 'auth-required'],
    ['endpoint-refused', 'endpoint-refused'],
    ['session-unknown', 'needs-sticky-routing'],
    ['not-initialized', 'handshake-not-rebuilt'],
    ['unknown-id-400', 'unknown-session-400'],
    ['unknown-id-accepted', 'unknown-session-accepted'],
    ['alive-after-delete', 'delete-not-shared'],
    ['notification-missing', 'notifications-lost'],
    ['answer-refused', 'server-requests-lost'],
    ['stream-cut', 'balancer-limits'],
    ['too-large', 'balancer-limits'],
    ['gateway-timeout', 'balancer-limits'],
    ['bad-gateway', 'upstream-unavailable'],
    ['rpc-error', 'request-failed'],
    ['wrong-error', 'modern-nonconformant'],
  ])('%s → %s', (symptom, cause) => {
    expect(causeOf(failed(symptom))).toBe(cause);
  });

  it('a wrong read on another replica than the write: state lost across replicas', () => {
    expect(causeOf(failed('state-mismatch', { replica: 'b', state: { writeReplica: 'a', otherSession: true } }))).toBe('state-lost-across-replicas');
    expect(causeOf(failed('state-mismatch', { replica: 'b', state: { writeReplica: 'a', otherSession: false } }))).toBe('state-lost-across-replicas');
  });

  it("another session's value on the replica that served the write: state shared across sessions", () => {
    expect(causeOf(failed('state-mismatch', { replica: 'a', state: { writeReplica: 'a', otherSession: true } }))).toBe('state-shared-across-sessions');
  });

  it('no value at all (the initial one), replicas unnamed: lost; another session\'s value, unnamed and concurrent: cannot tell', () => {
    expect(causeOf(failed('state-mismatch', { state: { otherSession: false } }))).toBe('state-lost-across-replicas');
    expect(causeOf(failed('state-mismatch', { state: { otherSession: true, ambiguous: true } }))).toBe('state-not-read-back');
  });

  it('every cause has a title, a why and at least one fix, and a place in the order', () => {
    expect(new Set(CAUSE_ORDER).size).toBe(Object.keys(CAUSES).length);
    for (const id of CAUSE_ORDER) {
      const c = CAUSES[id];
      expect(c.title.length, id).toBeGreaterThan(10);
      expect(c.why.length, id).toBeGreaterThan(20);
      expect(c.fix.length, id).toBeGreaterThan(0);
    }
  });
});

describe('settleNotifications', () => {
  const missing: CheckResult = { id: 'notification', status: 'fail', symptom: 'notification-missing', detail: 'nothing reached the GET stream' };
  const got: CheckResult = { id: 'notification', status: 'pass', detail: 'roots/list reached the GET stream' };

  it('no session got anything after the trigger: nothing to check, the misses become skips', () => {
    const settled = settleNotifications([session(0, [ok('initialize'), missing]), session(1, [missing])], false);
    expect(settled.flatMap((s) => s.checks.filter((c) => c.id === 'notification').map((c) => c.status))).toEqual(['skip', 'skip']);
    expect(settled[0]!.checks[1]!.detail).toMatch(/--notify/);
    expect(decideVerdict({ era: LEGACY_ERA, sessions: settled }).survives).toBe(true);
  });

  it('some sessions got it and others did not: the misses are lost notifications', () => {
    const settled = settleNotifications([session(0, [got]), session(1, [missing])], false);
    expect(settled[1]!.checks[0]!.status).toBe('fail');
    expect(decideVerdict({ era: LEGACY_ERA, sessions: settled }).causes.map((c) => c.id)).toEqual(['notifications-lost']);
  });

  it('with --notify the trigger must work: misses stay failures even when no session got anything', () => {
    const settled = settleNotifications([session(0, [missing])], true);
    expect(settled[0]!.checks[0]!.status).toBe('fail');
  });
});
