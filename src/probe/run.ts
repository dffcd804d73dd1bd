/**
 * One `mcp-migrate probe` run: detect the era, then run the sessions (Streamable HTTP, legacy
 * HTTP+SSE when asked, 2026-07-28 request series when served) at the chosen concurrency, all bounded
 * by `--timeout`, then settle cross-session checks and decide the verdict. Never throws for anything
 * the endpoint does: an unreachable or misbehaving endpoint is a finding in the report.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { detectEra } from './era.js';
import { probeLegacySseSession } from './legacy-sse.js';
import { probeModernSeries } from './modern.js';
import type { ProbeOptions } from './options.js';
import { probeStreamableSession } from './session.js';
import { settleNotifications } from './settle.js';
import { computeSpread } from './spread.js';
import type { RunContext } from './step.js';
import type { EraResult, ProbeReport, ReportedOptions, SessionRun } from './types.js';
import { decideVerdict } from './verdict.js';

export interface ProbeHooks {
  /** Called when a session finishes: sessions done so far, sessions planned. */
  onProgress?: (done: number, total: number) => void;
}

type Task = () => Promise<SessionRun>;

export async function runProbe(opts: ProbeOptions, version: string, hooks: ProbeHooks = {}): Promise<ProbeReport> {
  const t0 = performance.now();
  const clock = (): number => performance.now() - t0;
  const controller = new AbortController();
  // Every in-flight request of every session listens on the run's signal.
  setMaxListeners(0, controller.signal);
  const timer = setTimeout(() => controller.abort(new Error('--timeout reached')), opts.timeoutMs);
  const run: RunContext = { opts, runId: randomBytes(3).toString('hex'), clock, signal: controller.signal, deadline: opts.timeoutMs, version };
  try {
    const era = await detectEra(run);
    const tasks = planTasks(run, era);
    hooks.onProgress?.(0, tasks.length);
    const finished = await runPool(tasks, opts.concurrency, controller.signal, (done) => hooks.onProgress?.(done, tasks.length));
    const sessions = settleNotifications(finished, opts.notify !== undefined);
    const stopped = controller.signal.aborted;
    const complete = sessions.filter((s) => !s.checks.some((c) => c.symptom === 'aborted')).length;
    const incomplete = stopped ? { reason: `--timeout ${opts.timeoutMs / 1000} s reached: ${complete} of ${tasks.length} sessions finished`, sessionsFinished: complete, sessionsPlanned: tasks.length } : undefined;
    return {
      url: opts.url.href,
      options: reported(opts),
      era,
      sessions,
      spread: computeSpread(opts.replicaHeader, sessions, era),
      ...(incomplete ? { incomplete } : {}),
      verdict: decideVerdict({ era, sessions, ...(incomplete ? { incomplete } : {}) }),
      durationMs: Math.round(clock()),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The sessions to run: Streamable HTTP unless the endpoint is 2026-07-28 only, legacy SSE when asked, 2026-07-28 when served. */
function planTasks(run: RunContext, era: EraResult): Task[] {
  const { opts } = run;
  if (era.unreachable !== undefined) return [];
  const legacy = opts.era === 'legacy' || (opts.era === 'auto' && era.era !== 'modern');
  const modern = opts.era === 'modern' || (opts.era === 'auto' && (era.era === 'modern' || era.era === 'dual'));
  const tasks: Task[] = [];
  for (let i = 0; i < opts.sessions; i += 1) {
    if (legacy) tasks.push(() => probeStreamableSession(run, i));
    if (opts.legacySseUrl) tasks.push(() => probeLegacySseSession(run, i));
    if (modern) tasks.push(() => probeModernSeries(run, i));
  }
  return tasks;
}

/** Runs `tasks` with at most `concurrency` at once; starts none after `signal` aborts. Results in task order. */
async function runPool(tasks: readonly Task[], concurrency: number, signal: AbortSignal, onDone: (done: number) => void): Promise<SessionRun[]> {
  const results: (SessionRun | undefined)[] = new Array(tasks.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length && !signal.aborted) {
      const i = next;
      next += 1;
      results[i] = await tasks[i]!();
      done += 1;
      onDone(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, tasks.length)) }, worker));
  return results.filter((r): r is SessionRun => r !== undefined);
}

function reported(o: ProbeOptions): ReportedOptions {
  const spec = (s: { name: string; argumentsJson: string } | undefined): string | undefined => (s ? `${s.name} ${s.argumentsJson}` : undefined);
  return {
    sessions: o.sessions,
    concurrency: o.concurrency,
    timeoutMs: o.timeoutMs,
    requestTimeoutMs: o.requestTimeoutMs,
    era: o.era,
    headerNames: Object.keys(o.headers),
    replicaHeader: o.replicaHeader,
    ...(o.legacySseUrl ? { legacySseUrl: o.legacySseUrl.href } : {}),
    ...(o.write ? { write: spec(o.write) } : {}),
    ...(o.read ? { read: spec(o.read) } : {}),
    ...(o.expect !== undefined ? { expect: o.expect } : {}),
    ...(o.notify ? { notify: spec(o.notify) } : {}),
    ...(o.bodyBytes ? { bodyBytes: o.bodyBytes } : {}),
    ...(o.holdMs ? { holdMs: o.holdMs } : {}),
  };
}
