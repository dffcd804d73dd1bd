import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '@mcp-migrate/runtime';
import type { AnsweredError, SessionRecord } from '@mcp-migrate/runtime';
import { MemoryMessageBus } from '@mcp-migrate/runtime';
import { BusServerRequestRouter, newReplicaId, type ServerRequestRouter } from '@mcp-migrate/runtime';
import { MemorySessionStreams, type SessionStreams } from '@mcp-migrate/runtime';

/**
 * The upstream side of the proxy: the real MCP server, reached over Streamable HTTP or stdio.
 * One {@link UpstreamSession} per client session per replica; a connector opens them, either for a
 * brand-new session (the client's own `initialize`) or by handshake replay from the record.
 */

/** A validated client POST. */
export interface ClientPost {
  req: IncomingMessage;
  res: ServerResponse;
  /** The body as received (forwarded byte-for-byte to an HTTP upstream). */
  raw: Buffer;
  /** The parsed messages (one, or several for a 2025-03-26 batch). */
  messages: JsonRpcMessage[];
  batch: boolean;
  /** The session's negotiated protocol version. */
  protocolVersion: string;
}

/**
 * `done`: the exchange was answered (whatever the status). `lost`: the upstream no longer knows its
 * session (HTTP 404, or 400 "no valid session" / "not initialized") and nothing was written to the
 * client, so the caller may replay the handshake on a fresh upstream session and retry once.
 */
export type ForwardResult = 'done' | 'lost';

/** The replayable state an upstream session currently reflects. */
export interface AppliedState {
  revision: number;
  loggingLevel?: string;
  subscriptions: string[];
}

/**
 * Receives, message by message, what an upstream session answers to an {@link UpstreamSession.exchange}.
 * Server-initiated requests arrive with their client-facing id (see `ServerRequestRouter`).
 */
export interface ExchangeSink {
  /** A server message related to the exchange (progress, logging, a server-initiated request), before its response. */
  message(message: JsonRpcMessage): void;
  /** The response to one of the exchange's requests. */
  response(message: JsonRpcResponse): void;
}

/**
 * What upstream sessions need from the proxy to carry server-to-client traffic across replicas
 * (given to the connector by `createProxy` through {@link UpstreamConnector.attach}):
 * - every server-initiated request gets its client-facing id from `router.outgoing`, and the client's
 *   answer comes back through the `deliver` callback, on whichever replica it was POSTed;
 * - messages of the upstream session's standalone stream (HTTP: a background GET; stdio: unsolicited
 *   lines) are appended to the session's `STANDALONE_STREAM`, which the client's GET follows on any replica;
 * - a POST answered as SSE that carries server messages before its response is stored as its own
 *   session stream, so `Last-Event-ID` resumes it on any replica.
 */
export interface UpstreamContext {
  readonly streams: SessionStreams;
  readonly router: ServerRequestRouter;
  readonly logger: Logger;
  /** Counts one message of an upstream standalone stream (metrics). */
  onStandaloneMessage?(): void;
}

export interface UpstreamSession {
  /** True once the upstream session is unusable (closed, child exited, lost). */
  readonly closed: boolean;
  /** In-flight exchanges: a busy session is never reaped or evicted. */
  readonly busy: boolean;
  /** Time of the last exchange, ms since epoch. */
  readonly lastActivity: number;
  /** Whether `notifications/initialized` has reached this upstream session. */
  initialized: boolean;
  /**
   * The upstream's `InitializeResult` for this upstream session (capabilities, `serverInfo`,
   * `instructions`), when the connector read it. The 2026-07-28 front synthesizes `server/discover` from it.
   */
  initializeResult?: Record<string, unknown>;
  applied: AppliedState;
  /**
   * Forwards a client POST and answers it: JSON, 202, or SSE. Server-initiated requests on an SSE
   * answer carry client-facing ids; an SSE answer that carries server messages before its response
   * is stored as a session stream (SSE `id:`s) so the client can resume it with `Last-Event-ID`.
   */
  post(post: ClientPost): Promise<ForwardResult>;
  /**
   * Message-level exchange, for fronts that do not relay HTTP bytes (legacy HTTP+SSE, 2026-07-28):
   * sends client `messages` and reports every related server message and response to `sink`.
   * Resolves `done` once every request in `messages` has its response (at once if there is none),
   * `lost` as {@link post}; rejects with {@link UpstreamError}. `headers` are the client's (for
   * `Authorization` and the like). `signal` abandons the exchange (the client went away).
   * Responses to server-initiated requests do not belong here: they go through `ServerRequestRouter.reply`.
   */
  exchange(
    messages: JsonRpcMessage[],
    protocolVersion: string,
    headers: IncomingHttpHeaders,
    sink: ExchangeSink,
    signal?: AbortSignal,
  ): Promise<ForwardResult>;
  /**
   * Sends runtime-originated messages (ids from `runtimeRequestId`) in order, waiting for each
   * request's reply and discarding it. Rejects with {@link UpstreamLostSessionError} if the upstream
   * lost the session, or {@link UpstreamError} on failure.
   */
  sendRuntime(messages: JsonRpcMessage[], protocolVersion: string, req: IncomingMessage): Promise<void>;
  /**
   * Owner affinity's graceful hand-over: what another replica needs to go on with this very upstream
   * session ({@link UpstreamConnector.adopt}), or `undefined` if it cannot move (a stdio child ends with
   * its replica). Close it with `handover` afterwards.
   */
  handover?(): string | undefined;
  /**
   * Ends the upstream session (HTTP `DELETE` upstream, or stop the child) and any open streams.
   * `handover`: this replica lets go of it (streams closed, no `DELETE`), another one goes on with it.
   */
  close(reason: CloseReason): Promise<void>;
}

export type CloseReason = 'deleted' | 'terminated' | 'idle' | 'evicted' | 'shutdown' | 'lost' | 'failed' | 'handover';

/** The upstream's answer to a client's `initialize`. */
export interface InitializeOutcome {
  /** The JSON-RPC response, when it could be read. A session exists only if it is a success. */
  response?: JsonRpcResponse;
  /** Present when `response` is a success: the upstream session now bound to the new session id. */
  session?: UpstreamSession;
  /** Writes the upstream's answer to the client, adding `headers` (e.g. our `Mcp-Session-Id`). */
  respond(res: ServerResponse, headers: OutgoingHttpHeaders): void;
}

export interface UpstreamConnector {
  readonly kind: 'http' | 'stdio';
  /**
   * Gives the connector the proxy's streams and router (see {@link UpstreamContext}); called once by
   * `createProxy` before any session is opened. Sessions opened without it use a one-process
   * context (memory streams, local router).
   */
  attach(context: UpstreamContext): void;
  /**
   * Forwards a client's `initialize` on a new upstream session. `signal` aborts when the client went away:
   * the connector then stops waiting, closes what it opened and rejects (nothing is left behind).
   * `deadline` (ms since the epoch, the request's `--request-timeout`): a connector that waits before
   * starting anything (stdio `--max-starting`) gives up waiting then, having started nothing.
   */
  initialize(args: { sessionId: string; req: IncomingMessage; raw: Buffer; message: JsonRpcRequest; signal?: AbortSignal; deadline?: number }): Promise<InitializeOutcome>;
  /** Opens an upstream session for an existing session by replaying its handshake (`handshakeReplay`). */
  replay(args: { sessionId: string; record: SessionRecord; req: IncomingMessage }): Promise<UpstreamSession>;
  /**
   * Owner affinity: goes on with the upstream session another replica handed over on graceful shutdown
   * (`handover`, from its {@link UpstreamSession.handover}), without a new handshake. Absent when upstream
   * sessions cannot move. If the upstream turns out not to know it, its first exchange reports `lost`.
   */
  adopt?(args: { sessionId: string; record: SessionRecord; handover: string; req: IncomingMessage }): Promise<UpstreamSession>;
  /** Releases shared resources (keep-alive sockets). Sessions are closed by their owner. */
  close(): Promise<void>;
}

/** The upstream failed (unreachable, timed out, crashed, answered `initialize` with an error). → HTTP 502/504 (`badGateway`, `gatewayTimeout`). */
export class UpstreamError extends Error implements AnsweredError {
  readonly answer: 'badGateway' | 'gatewayTimeout';
  constructor(
    message: string,
    readonly status: 502 | 504 = 502,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
    this.answer = status === 504 ? 'gatewayTimeout' : 'badGateway';
  }
}

/** The upstream no longer knows the session (see {@link ForwardResult} `lost`). */
export class UpstreamLostSessionError extends UpstreamError {
  constructor(message = 'upstream lost the session') {
    super(message, 502);
    this.name = 'UpstreamLostSessionError';
  }
}

/**
 * A one-process {@link UpstreamContext} (memory streams, a router on an in-process bus): what a
 * connector uses until {@link UpstreamConnector.attach} gives it the proxy's.
 */
export function localUpstreamContext(logger: Logger): UpstreamContext {
  return {
    streams: new MemorySessionStreams(),
    router: new BusServerRequestRouter({ bus: new MemoryMessageBus(), replicaId: newReplicaId() }),
    logger,
  };
}
