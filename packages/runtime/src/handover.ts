/**
 * Graceful shutdown of an owner, the parts shared by `mcp-migrate proxy` (`src/proxy/owner/handover.ts`,
 * `src/proxy/lifecycle.ts`) and the runtime's `SessionTransportRegistry.drain` (docs/proxy.md "Graceful
 * shutdown", docs/runtime.md "Graceful hand-over"): the loop that lets go of each owned session once it
 * is due, the choice of replicas a draining one passes requests on to, and the end of an SSE stream
 * that tells its client to reconnect.
 */
import type { ServerResponse } from 'node:http';
import type { ReplicaRegistry } from './replica-registry.js';

/** How often a draining replica looks for sessions that became due, ms. */
export const HANDOVER_POLL_MS = 50;
/** Replicas tried when a draining replica passes a request on. */
export const HAND_OFF_TRIES = 3;
/** `retry:` written on an SSE stream a shutdown ends, ms: the client reconnects (elsewhere) after it. */
export const SHUTDOWN_RETRY_MS = 1_000;

/** What {@link handOverAll} works on. */
export interface HandoverLoop<S> {
  /** The sessions this replica still owns and is not letting go of yet. */
  owned(): S[];
  /** Whether `s` can be let go of now, before the deadline (typically: no request of it in flight here). */
  due(s: S): boolean;
  /** Lets go of `s` (hands it over, releases or ends it); must not reject. */
  handOver(s: S): Promise<void>;
}

/**
 * Lets go of every owned session: each as soon as it is {@link HandoverLoop.due}, every one still owned
 * at `deadline` (ms since the epoch) regardless. Polls every {@link HANDOVER_POLL_MS}. Resolves when
 * none is left (or at the deadline, once the last ones were let go of). Never rejects.
 */
export async function handOverAll<S>(loop: HandoverLoop<S>, deadline: number): Promise<void> {
  for (;;) {
    const owned = loop.owned();
    if (owned.length === 0) return;
    const late = Date.now() >= deadline;
    await Promise.all((late ? owned : owned.filter((s) => loop.due(s))).map((s) => loop.handOver(s)));
    if (late) return;
    await new Promise((r) => setTimeout(r, Math.min(HANDOVER_POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}

/**
 * Up to {@link HAND_OFF_TRIES} other replicas that take new sessions, in random order (spreads what a
 * draining replica passes on). Empty when the registry cannot be read (the caller serves the request itself).
 */
export async function handOffCandidates(registry: ReplicaRegistry): Promise<string[]> {
  let ids: string[];
  try {
    ids = [...(await registry.accepting())];
  } catch {
    return [];
  }
  const out: string[] = [];
  while (out.length < HAND_OFF_TRIES && ids.length > 0) out.push(ids.splice(Math.floor(Math.random() * ids.length), 1)[0]!);
  return out;
}

/**
 * Ends an SSE stream on shutdown with a `retry:` line ({@link SHUTDOWN_RETRY_MS}), so the client
 * reconnects after it, with `Last-Event-ID` where it got event ids (spec §Resumability and
 * Redelivery), and reaches another replica. A response whose headers were not sent yet is destroyed.
 * The socket is destroyed once flushed: a relayed stream may still try to write to it.
 */
export function endSseStream(res: ServerResponse): void {
  if (res.writableEnded || res.destroyed) return;
  if (!res.headersSent) {
    res.destroy();
    return;
  }
  res.end(`retry: ${SHUTDOWN_RETRY_MS}\n\n`, () => res.destroy());
}
