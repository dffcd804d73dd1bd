/** Pieces every probe reporter shows the same way: check tallies, the era line, the replica spread. Pure. */
import type { CheckStatus, ProbeReport, ProbeTransport, Spread } from '../types.js';

export interface CheckTally {
  id: string;
  pass: number;
  fail: number;
  skip: number;
  warn: number;
  /** Distinct details of the skips and warnings (at most three). */
  notes: string[];
}

export interface TransportTally {
  transport: ProbeTransport;
  /** How many sessions (or 2026-07-28 request series) ran. */
  sessions: number;
  checks: CheckTally[];
}

export const TRANSPORT_LABELS: Record<ProbeTransport, string> = {
  'streamable-http': 'Streamable HTTP sessions',
  'legacy-sse': 'Legacy HTTP+SSE sessions',
  modern: '2026-07-28 request series',
};

/** The order checks are listed in: the order of a full session, then any other id as first seen. */
export const CHECK_ORDER = [
  'sse-stream', 'initialize', 'initialized', 'get-stream', 'trigger', 'tools/list', 'ping', 'call', 'write', 'read', 'large-body',
  'notification', 'idle', 'stream', 'answer', 'delete', 'after-delete', 'after-close', 'forged-session',
  'discover', 'connect', 'missing-meta', 'header-mismatch', 'unsupported-version', 'unknown-method', 'get-405',
];

const rank = (id: string): number => {
  const i = CHECK_ORDER.indexOf(id);
  return i < 0 ? CHECK_ORDER.length : i;
};

/** Counts per transport and check id, in {@link CHECK_ORDER}. */
export function tallyChecks(report: Pick<ProbeReport, 'sessions'>): TransportTally[] {
  const out: TransportTally[] = [];
  for (const transport of Object.keys(TRANSPORT_LABELS) as ProbeTransport[]) {
    const sessions = report.sessions.filter((s) => s.transport === transport);
    if (sessions.length === 0) continue;
    const byId = new Map<string, CheckTally>();
    for (const s of sessions) {
      for (const c of s.checks) {
        const t = byId.get(c.id) ?? { id: c.id, pass: 0, fail: 0, skip: 0, warn: 0, notes: [] };
        t[c.status as CheckStatus] += 1;
        if ((c.status === 'skip' || c.status === 'warn') && !t.notes.includes(c.detail) && t.notes.length < 3) t.notes.push(c.detail);
        byId.set(c.id, t);
      }
    }
    out.push({ transport, sessions: sessions.length, checks: [...byId.values()].sort((a, b) => rank(a.id) - rank(b.id)) });
  }
  return out;
}

/** `dual: 2026-07-28 (server/discover: …) and 2025-era sessions (initialize: …)`. */
export function describeEra(report: Pick<ProbeReport, 'era'>): string {
  const { era } = report;
  if (era.unreachable !== undefined) return `unknown: the endpoint gave no answer (${era.unreachable})`;
  switch (era.era) {
    case 'dual':
      return `dual: 2026-07-28 (${era.modern.detail}) and 2025-era sessions (${era.legacy.detail}) on one endpoint`;
    case 'modern':
      return `2026-07-28 only (${era.modern.detail}; ${era.legacy.detail})`;
    case 'legacy':
      return `2025-era (${era.legacy.detail}; ${era.modern.detail})`;
    default:
      return `neither (${era.legacy.detail}; ${era.modern.detail})`;
  }
}

/** `3 replicas (a 40, b 41, c 39); 10 of 10 sessions crossed replicas`, or why none were seen. */
export function describeSpread(spread: Spread): string {
  const entries = Object.entries(spread.replicas).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return `not named: no response carried ${spread.header} (name another header with --replica-header)`;
  const list = entries.map(([id, n]) => `${id} ${n}`).join(', ');
  const unnamed = spread.unnamed > 0 ? `, ${spread.unnamed} unnamed` : '';
  const one = entries.length === 1 ? ' — every response came from one replica, so no session was shown crossing replicas' : '';
  return `${entries.length} replica${entries.length === 1 ? '' : 's'} named in ${spread.header} (${list}${unnamed}); ${spread.sessionsCrossing} of ${spread.sessionsNamed} sessions crossed replicas${one}`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
