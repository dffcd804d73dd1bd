import { describe, expect, it } from 'vitest';
import { PROBE_JSON_VERSION, probeReporters } from '../../src/probe/reporters/index.js';
import { describeSpread, tallyChecks } from '../../src/probe/reporters/describe.js';
import { DUAL_ERA, healthy, lost, ok, report, session } from './fixture.js';

const ctx = { color: false, version: '9.9.9' };
const failing = report([lost(0), lost(1), healthy(2)]);
const passing = report([healthy(0), healthy(1), session(0, [ok('discover', 'c'), { id: 'get-405', status: 'warn', symptom: 'wrong-error', detail: '400; a GET without a session SHOULD get 405' }], 'modern')], DUAL_ERA);

describe('tallyChecks and describeSpread', () => {
  it('counts each check per transport, in the order checks ran, with skip and warning notes', () => {
    const t = tallyChecks(passing);
    expect(t.map((x) => [x.transport, x.sessions])).toEqual([['streamable-http', 2], ['modern', 1]]);
    expect(t[0]!.checks.map((c) => c.id)).toEqual(['initialize', 'initialized', 'tools/list', 'ping', 'delete', 'after-delete', 'forged-session']);
    expect(t[1]!.checks[1]).toEqual({ id: 'get-405', pass: 0, fail: 0, skip: 0, warn: 1, notes: ['400; a GET without a session SHOULD get 405'] });
  });

  it('describes the spread from the replica header, or says the replicas were not named', () => {
    expect(describeSpread(passing.spread)).toBe('3 replicas named in x-mcp-migrate-replica (a 8, b 6, c 1); 2 of 3 sessions crossed replicas');
    expect(describeSpread({ header: 'x-served-by', replicas: {}, unnamed: 4, sessionsCrossing: 0, sessionsNamed: 0 })).toMatch(/^not named: no response carried x-served-by/);
    expect(describeSpread({ header: 'h', replicas: { a: 3 }, unnamed: 0, sessionsCrossing: 0, sessionsNamed: 1 })).toMatch(/every response came from one replica/);
  });
});

describe('stylish', () => {
  it('shows era, replicas, the check table and, last, the verdict with causes, examples and fixes', () => {
    const text = probeReporters.stylish(failing, ctx);
    expect(text).toContain('mcp-migrate probe http://lb.example/mcp');
    expect(text).toContain('era:      2025-era (initialize: protocol 2025-11-25');
    expect(text).toMatch(/✖ initialized\s+1\s+2\s+0/);
    expect(text).toMatch(/✔ initialize\s+3\s+0\s+0/);
    expect(text).toContain('✖ Sessions do not survive round-robin: sessions are lost on other replicas; unknown or ended session ids get 400 instead of 404.');
    expect(text).toContain('  1. Sessions are lost on other replicas (2 sessions)  needs-sticky-routing');
    expect(text).toContain('e.g. session 0 (streamable-http): initialized: 400 on replica b');
    expect(text).toMatch(/fix: No code change: run `mcp-migrate proxy/);
    expect(text).not.toMatch(/\x1b\[/);
  });

  it('ends with the survive line when every check passed, and lists warnings', () => {
    const text = probeReporters.stylish(passing, ctx);
    expect(text.split('\n').at(-1)).toBe('✔ Sessions survive round-robin: every check passed (2 streamable-http sessions, 1 2026-07-28 request series).');
    expect(text).toContain('get-405: 400; a GET without a session SHOULD get 405');
    expect(text).toMatch(/get-405\s+0\s+0\s+0\s+1 warning/);
  });

  it('colours only when asked', () => {
    expect(probeReporters.stylish(failing, { ...ctx, color: true })).toMatch(/\x1b\[31m/);
  });
});

describe('json', () => {
  it('is one versioned document, verdict first, with tallies and every session', () => {
    const doc = JSON.parse(probeReporters.json(failing, ctx));
    expect(Object.keys(doc).slice(0, 4)).toEqual(['version', 'tool', 'url', 'verdict']);
    expect(doc.version).toBe(PROBE_JSON_VERSION);
    expect(doc.tool).toEqual({ name: 'mcp-migrate', version: '9.9.9' });
    expect(doc.verdict.survives).toBe(false);
    expect(doc.verdict.causes.map((c: { id: string }) => c.id)).toEqual(['needs-sticky-routing', 'unknown-session-400']);
    expect(doc.sessions).toHaveLength(3);
    expect(doc.checks[0].checks.find((c: { id: string }) => c.id === 'initialized')).toMatchObject({ pass: 1, fail: 2 });
  });
});

describe('markdown', () => {
  it('heads with the verdict, tables the checks and gives each cause its fix, with cells escaped', () => {
    const text = probeReporters.markdown(failing, ctx);
    expect(text.split('\n')[0]).toBe('## ❌ mcp-migrate probe: Sessions do not survive round-robin: sessions are lost on other replicas; unknown or ended session ids get 400 instead of 404.');
    expect(text).toContain('| Streamable HTTP sessions (3) | `initialized` | 1 | **2** | 0 |  |');
    expect(text).toContain('### Sessions are lost on other replicas (2 sessions)');
    expect(text).toContain('**What to do:**');
    expect(probeReporters.markdown(passing, ctx).split('\n')[0]).toMatch(/^## ✅ /);
  });
});

it('reporters are pure: the same report renders the same text', () => {
  for (const r of Object.values(probeReporters)) expect(r(failing, ctx)).toBe(r(failing, ctx));
});
