import { createHash } from 'node:crypto';
import { isResponse, type JsonRpcMessage } from './jsonrpc.js';
import { defaultStores, type RuntimeStores } from './from-env.js';
import { currentSession } from './session-context.js';
import { STREAM_ID_PATTERN } from './session-streams.js';
import { StoreEventStore } from './store-event-store.js';

/**
 * The event store `mcp-migrate apply` gives a server's transports (`createEventStore()`): for a
 * transport registered with a `SessionTransportRegistry`, each event of a POST stream is appended to
 * that stream in the session's shared streams (`RuntimeStores.streams`, the proxy's layout), the
 * response that completes the stream marked as its end, and its event id is the session-stream id
 * (`<stream>_<entry>`). A client whose POST stream broke (or that the server told to poll,
 * `closeSSEStream`) resumes with `Last-Event-ID` on any replica: the registry serves the stored events
 * after the id, then the live ones the replica running the request appends, and ends the stream after
 * its response (spec 2025-11-25 `basic/transports.mdx` §Resumability and Redelivery).
 *
 * Outside a registered session (a transport without sessions) it is the {@link StoreEventStore} it
 * extends: events in a list per store instance, replayed by the transport itself.
 *
 * A batch POST (protocol ≤ 2025-03-26) whose stream carries several responses is marked ended at the
 * first: a resume after it gets no more.
 */
export class SessionStreamsEventStore extends StoreEventStore {
  readonly #stores: (() => RuntimeStores) | RuntimeStores;

  constructor(options: { namespace?: string; stores?: RuntimeStores } = {}) {
    super(options);
    this.#stores = options.stores ?? defaultStores;
  }

  override async storeEvent(streamId: string, message: JsonRpcMessage | object): Promise<string> {
    const sessionId = currentSession();
    if (sessionId === undefined) return await super.storeEvent(streamId, message);
    const s = typeof this.#stores === 'function' ? this.#stores() : this.#stores;
    await s.ready();
    const event = await s.streams.append(sessionId, postStreamName(streamId), message as JsonRpcMessage, { end: isResponse(message as JsonRpcMessage) });
    return event.eventId;
  }
}

/** A transport's stream id (a UUID in the SDK) as a session-stream id: `t` + its letters and digits (hashed when longer than the pattern allows). */
export function postStreamName(streamId: string): string {
  const name = `t${streamId.replace(/[^A-Za-z0-9]/g, '')}`;
  return STREAM_ID_PATTERN.test(name) ? name : `t${createHash('sha256').update(streamId).digest('hex').slice(0, 40)}`;
}

/** The event store for a server's transports (see {@link SessionStreamsEventStore}). */
export function createEventStore(options?: { namespace?: string; stores?: RuntimeStores }): SessionStreamsEventStore {
  return new SessionStreamsEventStore(options);
}
