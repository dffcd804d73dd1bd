/**
 * The verdict: sessions survive round-robin only when every check that ran passed and the run
 * completed; otherwise each failed check is attributed to one likely cause (src/probe/causes.ts),
 * with up to three examples. Pure: a function of the sessions and the era.
 */
import { CAUSE_ORDER, CAUSES } from './causes.js';
import type { Cause, CauseId, CheckResult, EraResult, SessionRun, Verdict } from './types.js';

export interface VerdictInput {
  era: EraResult;
  sessions: readonly SessionRun[];
  /** Set when `--timeout` stopped the run. */
  incomplete?: { reason: string };
}

/** Examples kept per cause, each from another session. */
const EVIDENCE = 3;

export function decideVerdict(input: VerdictInput): Verdict {
  const found = new Map<CauseId, { sessions: Set<string>; evidence: string[] }>();
  // One example per session (its first failure of the kind), from up to EVIDENCE sessions.
  const note = (id: CauseId, session: string, example: string): void => {
    const entry = found.get(id) ?? { sessions: new Set<string>(), evidence: [] };
    if (!entry.sessions.has(session) && entry.evidence.length < EVIDENCE) entry.evidence.push(example);
    entry.sessions.add(session);
    found.set(id, entry);
  };
  if (input.era.unreachable !== undefined) note('unreachable', 'era', `server/discover and initialize: ${input.era.unreachable}`);
  for (const s of input.sessions) {
    const key = `${s.transport}#${s.index}`;
    for (const c of s.checks) {
      if (c.status !== 'fail') continue;
      note(causeOf(c), key, `session ${s.index} (${s.transport}): ${c.id}: ${c.detail}`);
    }
  }
  if (input.incomplete) note('incomplete', 'run', input.incomplete.reason);
  const causes: Cause[] = CAUSE_ORDER.filter((id) => found.has(id)).map((id) => ({
    id,
    ...CAUSES[id],
    sessions: [...found.get(id)!.sessions].filter((k) => k.includes('#')).length,
    evidence: found.get(id)!.evidence,
  }));
  const ran = input.sessions.length;
  if (causes.length > 0) return { survives: false, headline: failedHeadline(causes), causes };
  if (ran === 0) return { survives: false, headline: 'Nothing was checked.', causes };
  return { survives: true, headline: survivedHeadline(input), causes };
}

/** The one cause a failed check points at. */
export function causeOf(c: CheckResult): CauseId {
  switch (c.symptom) {
    case 'unreachable':
      return 'unreachable';
    case 'timeout':
      return 'no-answer';
    case 'aborted':
      return 'incomplete';
    case 'auth':
      return 'auth-required';
    case 'endpoint-refused':
      return 'endpoint-refused';
    case 'session-unknown':
      return 'needs-sticky-routing';
    case 'not-initialized':
      return 'handshake-not-rebuilt';
    case 'unknown-id-400':
      return 'unknown-session-400';
    case 'unknown-id-accepted':
      return 'unknown-session-accepted';
    case 'alive-after-delete':
      return 'delete-not-shared';
    case 'state-mismatch':
      return stateCause(c);
    case 'notification-missing':
      return 'notifications-lost';
    case 'answer-refused':
      return 'server-requests-lost';
    case 'stream-cut':
    case 'too-large':
    case 'gateway-timeout':
      return 'balancer-limits';
    case 'bad-gateway':
      return 'upstream-unavailable';
    case 'wrong-error':
      return 'modern-nonconformant';
    default:
      return 'request-failed';
  }
}

/**
 * A read that did not return the session's value. Another session's value read on the replica that
 * served the write means the server shares the state between sessions; anything else (no value, a
 * value read on another replica or on an unnamed one) means the state stayed on another replica.
 * With unnamed replicas and concurrent sessions the two cannot be told apart: `state-not-read-back`.
 */
function stateCause(c: CheckResult): CauseId {
  const write = c.state?.writeReplica;
  if (c.state?.ambiguous) return 'state-not-read-back';
  return c.state?.otherSession === true && write !== undefined && write === c.replica ? 'state-shared-across-sessions' : 'state-lost-across-replicas';
}

/** Causes that break sessions (or stop the run) behind round-robin; the others are protocol faults found on the way. */
const BREAKING = new Set<CauseId>([
  'unreachable', 'auth-required', 'endpoint-refused', 'needs-sticky-routing', 'handshake-not-rebuilt', 'state-lost-across-replicas',
  'delete-not-shared', 'notifications-lost', 'server-requests-lost', 'balancer-limits', 'no-answer', 'upstream-unavailable',
]);

function failedHeadline(causes: readonly Cause[]): string {
  if (causes.length === 1 && causes[0]!.id === 'incomplete') return 'Not shown: the probe did not finish within --timeout.';
  const titles = causes.map((c) => c.title.charAt(0).toLowerCase() + c.title.slice(1)).join('; ');
  return causes.some((c) => BREAKING.has(c.id)) ? `Sessions do not survive round-robin: ${titles}.` : `Checks failed: ${titles}.`;
}

function survivedHeadline(input: VerdictInput): string {
  const counts = new Map<string, number>();
  for (const s of input.sessions) counts.set(s.transport, (counts.get(s.transport) ?? 0) + 1);
  const parts = [...counts].map(([t, n]) => `${n} ${t === 'modern' ? '2026-07-28 request series' : `${t} session${n === 1 ? '' : 's'}`}`);
  if (input.era.era === 'modern' && !counts.has('streamable-http')) return `2026-07-28 requests pass every check on any replica (${parts.join(', ')}).`;
  return `Sessions survive round-robin: every check passed (${parts.join(', ')}).`;
}
