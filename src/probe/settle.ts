/**
 * Cross-session settling of the notification check, before the verdict. A server that never sent
 * anything on any session's GET stream after the trigger may simply not use roots: then there was
 * nothing to check, and the failures become skips. When some sessions got the message and others did
 * not, the misses are real (the message went to a replica that did not hold the stream). With
 * `--notify`, the user named a trigger that must work: misses stay failures. Pure.
 */
import type { SessionRun } from './types.js';

export function settleNotifications(sessions: readonly SessionRun[], notifyGiven: boolean): SessionRun[] {
  const checks = sessions.flatMap((s) => s.checks.filter((c) => c.id === 'notification'));
  if (notifyGiven || checks.some((c) => c.status === 'pass')) return [...sessions];
  const detail = 'the server sent nothing on the GET stream after notifications/roots/list_changed in any session (it may not use roots); name a tool that makes it notify with --notify';
  return sessions.map((s) => ({
    ...s,
    checks: s.checks.map((c) => (c.id === 'notification' && c.status === 'fail' ? { id: c.id, status: 'skip' as const, detail } : c)),
  }));
}
