import type { Logger } from 'pino';
import { handOverAll as handOverEach, sessionFingerprint, type SessionEvent, type SessionStore } from '@mcp-migrate/runtime';
import type { LocalSession, SessionManager } from '../sessions.js';
import type { OwnerLossPolicy } from './routing.js';

/** `outcome` label values of `mcp_migrate_owner_handovers_total`. */
export type HandoverCount = 'handed_over' | 'released' | 'ended';

/** What a hand-over needs from the owner routing. */
export interface HandoverContext {
  replicaId: string;
  sessions: SessionManager;
  store: SessionStore;
  logger: Logger;
  onOwnerLoss: OwnerLossPolicy;
  /** Publishes a session event to the other replicas. */
  announce(event: SessionEvent): void;
  /** Ends a session this replica owns (record, streams, everywhere): `OwnerRouting.endOwned`. */
  end(s: LocalSession): Promise<unknown>;
  count(outcome: HandoverCount): void;
}

/**
 * The sessions this replica owns, handed over as it shuts down (docs/proxy.md "Graceful shutdown"):
 * each is served here until it is idle (no request of it in flight here, its upstream session not
 * busy), then let go of:
 * - with its upstream session, when that can move (an HTTP upstream's own session: the next owner goes
 *   on with it, nothing is lost if the replicas share the upstream server);
 * - otherwise (a stdio child ends with its replica), with `--on-owner-loss replay` the record is released
 *   and the next owner replays the handshake; with `end` the session is served until `deadline`, in
 *   case its client finishes with it, and then ended (404 on its next request) rather than handed on
 *   without its state.
 * At `deadline` (ms since the epoch) every session still owned is let go of as above, busy or not.
 * Resolves when none is left. Never rejects.
 */
export async function handOverAll(ctx: HandoverContext, deadline: number): Promise<void> {
  await handOverEach<LocalSession>(
    {
      owned: () => [...ctx.sessions.all()].filter((s) => s.record.owner === ctx.replicaId && !s.releasing),
      due: (s) => isIdle(s) && (movable(s) || ctx.onOwnerLoss === 'replay'),
      handOver: (s) => handOver(ctx, s),
    },
    deadline,
  );
}

/** No request of the session in flight here, and its upstream session neither busy nor being opened or re-synced. */
function isIdle(s: LocalSession): boolean {
  return (s.active ?? 0) === 0 && !s.upstream?.busy && !s.opening && !s.syncing;
}

/**
 * Whether the session's upstream session can go on at another replica: an open one that can move, or
 * one handed over to this replica that it has not opened yet (no request came since it claimed it).
 */
function movable(s: LocalSession): boolean {
  if (s.upstream === undefined || s.upstream.closed) return s.handover !== undefined;
  return s.upstream.handover !== undefined;
}

/** Lets go of one session (see {@link handOverAll}); requests for it wait on `s.releasing` meanwhile. */
function handOver(ctx: HandoverContext, s: LocalSession): Promise<void> {
  s.releasing = (async () => {
    const up = s.upstream && !s.upstream.closed ? s.upstream : undefined;
    // Not opened here yet: what the previous owner handed over goes on to the next one as it is.
    const handover = up ? up.handover?.() : s.handover;
    const log = ctx.logger.child({ session: sessionFingerprint(s.id) });
    if (handover === undefined && ctx.onOwnerLoss === 'end') {
      ctx.count('ended');
      await ctx.end(s);
      return;
    }
    // Its streams first, so the next owner's own standalone GET upstream does not meet ours. What was
    // handed over to this replica goes on with the record: nothing here may open it any more.
    s.upstream = undefined;
    s.handover = undefined;
    if (up) await up.close(handover !== undefined ? 'handover' : 'shutdown').catch(() => undefined);
    let released = false;
    try {
      released = await ctx.store.releaseOwner(s.id, ctx.replicaId, handover);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not hand the session over (store unavailable)');
    }
    if (released) {
      ctx.count(handover !== undefined ? 'handed_over' : 'released');
      const { owner: _self, ...record } = s.record;
      s.record = record;
      ctx.announce({ type: 'released', sessionId: s.id, origin: ctx.replicaId });
      log.debug({ withUpstream: handover !== undefined }, 'handed the session over');
    }
    await ctx.sessions.drop(s.id, 'shutdown');
  })().finally(() => {
    s.releasing = undefined;
  });
  return s.releasing;
}
