import type { JsonRpcRequest, JsonRpcResponse } from './jsonrpc.js';

/**
 * Routing of server-initiated requests (`sampling/createMessage`, `elicitation/create`, `roots/list`,
 * `ping`) across replicas.
 *
 * Spec §Sending Messages to the Server: the client answers a server's request with a new POST, which a
 * round-robin load balancer may send to any replica, while the pending request lives in one upstream
 * session on one replica (in the TS SDK, `Protocol._responseHandlers`, ids counting from 0 per
 * instance). So every server-to-client request leaving a replica gets a client-facing id that names
 * that replica and is unique among all replicas (request ids must not repeat within a session,
 * spec `basic/index.mdx`); the replica that receives the client's response sends it to the named
 * replica over the message bus, which restores the original id and hands it to the upstream session.
 */
export interface ServerRequestRouter {
  /** This replica's id as it appears in rewritten request ids. */
  readonly replicaId: string;
  /**
   * Registers a request from a local upstream session of `sessionId` and returns a copy with the
   * client-facing id. `deliver` receives the client's response with the upstream's original id.
   * Pending entries expire after the router's timeout (default 10 minutes).
   */
  outgoing(sessionId: string, request: JsonRpcRequest, deliver: (response: JsonRpcResponse) => void): JsonRpcRequest;
  /**
   * Routes a client's response that arrived on this replica for `sessionId`: `local` (delivered here),
   * `remote` (published to the replica named in its id), or `unknown` (not a rewritten id: the caller
   * forwards it as before). A response for a pending request of another session is never delivered.
   */
  reply(sessionId: string, response: JsonRpcResponse): Promise<'local' | 'remote' | 'unknown'>;
  /** Drops the pending requests of a session on this replica (its upstream session closed). */
  forget(sessionId: string): void;
  close(): Promise<void>;
}
