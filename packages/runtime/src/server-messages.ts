import type { JsonRpcMessage, JsonRpcResponse } from './jsonrpc.js';
import { rewriteCancellation, type ServerRequestRouter } from './server-requests.js';
import { SessionStreamGoneError, STANDALONE_STREAM, type SessionStreams } from './session-streams.js';

/**
 * Server-to-client messages across replicas: the one implementation used by the proxy's HTTP and stdio
 * upstream sessions and by `SessionTransportRegistry` (spec §Sending Messages to the Server,
 * §Listening for Messages from the Server).
 */

/**
 * A server message as the client must see it: a server-initiated request gets its client-facing id from
 * `router.outgoing` (the client's answer, on whichever replica it lands, comes back to `deliver` with the
 * server's own id); the server's `notifications/cancelled` for such a request names the client-facing
 * id; responses and other notifications are returned as they are.
 */
export function toClientMessage(
  router: ServerRequestRouter,
  sessionId: string,
  message: JsonRpcMessage,
  deliver: (response: JsonRpcResponse) => void,
): JsonRpcMessage {
  if (!('method' in message)) return message;
  if ('id' in message) return router.outgoing(sessionId, message, deliver);
  return rewriteCancellation(router, sessionId, message);
}

/**
 * Appends a message the server sent outside any request to the session's standalone stream, which the
 * replica holding the client's GET delivers. Resolves `false` when the session is gone (the client's
 * `DELETE` came first: nobody can receive it, so it is dropped quietly); rejects with what the streams
 * reject with otherwise (`SessionStoreUnavailableError`).
 */
export async function appendStandalone(streams: SessionStreams, sessionId: string, message: JsonRpcMessage): Promise<boolean> {
  try {
    await streams.append(sessionId, STANDALONE_STREAM, message);
    return true;
  } catch (err) {
    if (err instanceof SessionStreamGoneError) return false;
    throw err;
  }
}
