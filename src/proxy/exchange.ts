import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { INITIALIZED_NOTIFICATION, initializedStep, sessionChangeOf, sessionFingerprint, type JsonRpcMessage, type SessionChange } from '@mcp-migrate/runtime';
import { SessionGoneError, type LocalSession, type SessionManager } from './sessions.js';
import { UpstreamError, UpstreamLostSessionError, type ForwardResult, type UpstreamSession } from './upstreams/upstream.js';

/**
 * The one exchange path of the proxy's three fronts (Streamable HTTP, legacy HTTP+SSE, 2026-07-28): client
 * messages of a session, through this replica's upstream session of it.
 */
export interface Exchange {
  session: LocalSession;
  messages: JsonRpcMessage[];
  /** The client's request (its headers go upstream: `Authorization` and the like). */
  req: IncomingMessage;
  /** Sends `messages` on `up`: relays the client's POST, or a message-level exchange. */
  send(up: UpstreamSession): Promise<ForwardResult>;
}

/**
 * Runs an exchange (spec §Session Management, §Lifecycle; docs/proxy.md):
 * 1. the upstream session: the open one, or a new one by handshake replay from the record;
 * 2. `notifications/initialized` (runtime `initializedStep`): sent first where the client's went to
 *    another replica; the client's own dropped where a replay already sent it (resolves `dropped`: the
 *    front answers 202 itself);
 * 3. replayable state changes recorded in the store before the messages go upstream, so a replay on
 *    another replica restores them (`sessionChangeOf`);
 * 4. `send`; if the upstream lost its session, once more on a new upstream session.
 * Rejects with `UpstreamError` (502/504), `SessionGoneError` (404), `CapacityError` or
 * `SessionStoreUnavailableError` (503): the error table answers them.
 */
export async function runExchange(sessions: SessionManager, logger: Logger, x: Exchange): Promise<'done' | 'dropped'> {
  const changes = changesOf(x.messages);
  for (let attempt = 0; attempt < 2; attempt++) {
    let up: UpstreamSession;
    try {
      up = sessions.readyUpstream(x.session) ?? (await sessions.upstreamFor(x.session, x.req));
      const { step, had } = initializedStep(up.initialized, x.messages);
      if (step === 'drop') return 'dropped';
      up.initialized = had;
      if (step === 'send-first') await sendInitialized(up, x);
      if (attempt === 0 && changes) await recordChanges(sessions, x.session, up, changes);
    } catch (err) {
      if (err instanceof UpstreamLostSessionError && attempt === 0) {
        logger.info({ session: sessionFingerprint(x.session.id) }, 'upstream lost the session; replaying the handshake');
        continue;
      }
      throw err;
    }
    if ((await x.send(up)) === 'done') return 'done';
    logger.info({ session: sessionFingerprint(x.session.id) }, 'upstream lost the session; replaying the handshake and retrying');
  }
  throw new UpstreamError('upstream lost the session again right after a handshake replay');
}

function changesOf(messages: JsonRpcMessage[]): SessionChange[] | undefined {
  let changes: SessionChange[] | undefined;
  for (const m of messages) {
    const change = sessionChangeOf(m);
    if (change) (changes ??= []).push(change);
  }
  return changes;
}

/** Step 2 of {@link runExchange}: the `notifications/initialized` the client sent to another replica. Marked sent before the await, so concurrent requests do not send it twice. */
async function sendInitialized(up: UpstreamSession, x: Exchange): Promise<void> {
  try {
    await up.sendRuntime([INITIALIZED_NOTIFICATION], x.session.record.protocolVersion, x.req);
  } catch (err) {
    up.initialized = false;
    throw err;
  }
}

async function recordChanges(sessions: SessionManager, session: LocalSession, up: UpstreamSession, changes: SessionChange[]): Promise<void> {
  for (const change of changes) {
    if (!(await sessions.recordChange(session, up, change))) throw new SessionGoneError();
  }
}
