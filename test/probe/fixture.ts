/** Synthetic probe reports for the verdict and reporter tests: built from checks, no network. */
import type { CheckResult, EraResult, ProbeReport, ProbeTransport, SessionRun } from '../../src/probe/types.js';
import { computeSpread } from '../../src/probe/spread.js';
import { decideVerdict } from '../../src/probe/verdict.js';

export const LEGACY_ERA: EraResult = {
  era: 'legacy',
  modern: { supported: false, status: 400, detail: 'server/discover got 400: "Bad Request: Server not initialized" (-32000)' },
  legacy: { supported: true, status: 200, protocolVersion: '2025-11-25', sessionIssued: true, detail: 'initialize: protocol 2025-11-25, Mcp-Session-Id issued' },
  exchanges: [],
};

export const DUAL_ERA: EraResult = {
  ...LEGACY_ERA,
  era: 'dual',
  modern: { supported: true, status: 200, supportedVersions: ['2026-07-28'], detail: 'server/discover: supportedVersions 2026-07-28' },
};

export const ok = (id: string, replica?: string): CheckResult => ({ id, status: 'pass', detail: 'ok', ...(replica ? { replica } : {}) });

/** A session with these checks; each check with a replica also gets an exchange answered by it. */
export function session(index: number, checks: CheckResult[], transport: ProbeTransport = 'streamable-http'): SessionRun {
  return {
    index,
    transport,
    sessionId: `sid-${index}`,
    checks,
    exchanges: checks.filter((c) => c.replica).map((c, i) => ({ at: i, method: 'POST', path: '/mcp', status: c.http ?? 200, replica: c.replica! })),
    durationMs: 100,
  };
}

export function report(sessions: SessionRun[], era: EraResult = LEGACY_ERA): ProbeReport {
  return {
    url: 'http://lb.example/mcp',
    options: { sessions: sessions.length, concurrency: 1, timeoutMs: 120_000, requestTimeoutMs: 10_000, era: 'auto', headerNames: [], replicaHeader: 'x-mcp-migrate-replica' },
    era,
    sessions,
    spread: computeSpread('x-mcp-migrate-replica', sessions, era),
    verdict: decideVerdict({ era, sessions }),
    durationMs: 1234,
  };
}

/** A healthy Streamable HTTP session whose requests alternate between replicas a and b. */
export const healthy = (index: number): SessionRun =>
  session(index, [ok('initialize', 'a'), ok('initialized', 'b'), ok('tools/list', 'a'), ok('ping', 'b'), ok('delete', 'a'), ok('after-delete', 'b'), ok('forged-session', 'a')]);

/** A session lost at its second request, as behind round-robin without shared sessions. */
export const lost = (index: number): SessionRun =>
  session(index, [
    ok('initialize', 'a'),
    { id: 'initialized', status: 'fail', symptom: 'session-unknown', detail: '400 on replica b: "Bad Request: No valid session ID provided" (-32000)', http: 400, rpcCode: -32000, replica: 'b' },
    { id: 'forged-session', status: 'fail', symptom: 'unknown-id-400', detail: '400: "Bad Request: No valid session ID provided" (-32000); the spec requires 404', http: 400 },
  ]);
