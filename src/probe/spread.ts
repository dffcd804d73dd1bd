/** How responses spread over replicas, from the replica header each exchange recorded. Pure. */
import type { EraResult, SessionRun, Spread } from './types.js';

export function computeSpread(header: string, sessions: readonly SessionRun[], era?: EraResult): Spread {
  const replicas: Record<string, number> = {};
  let unnamed = 0;
  let sessionsCrossing = 0;
  let sessionsNamed = 0;
  const count = (replica: string | undefined, status: number | undefined): void => {
    if (status === undefined) return;
    if (replica === undefined) unnamed += 1;
    else replicas[replica] = (replicas[replica] ?? 0) + 1;
  };
  for (const e of era?.exchanges ?? []) count(e.replica, e.status);
  for (const s of sessions) {
    const seen = new Set<string>();
    for (const e of s.exchanges) {
      count(e.replica, e.status);
      if (e.replica !== undefined) seen.add(e.replica);
    }
    if (seen.size > 0) sessionsNamed += 1;
    if (seen.size > 1) sessionsCrossing += 1;
  }
  return { header, replicas, unnamed, sessionsCrossing, sessionsNamed };
}
