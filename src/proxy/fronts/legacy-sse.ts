import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  allowsBatches,
  errorBodyOf,
  errorKindOf,
  HANDSHAKE_METHODS,
  idKey,
  isRequest,
  LAST_EVENT_ID_HEADER,
  PROTOCOL_VERSION_HEADER,
  sessionFingerprint,
  STANDALONE_STREAM,
  SUPPORTED_PROTOCOL_VERSIONS,
  unsupportedVersionDetail,
  writeErrorAnswer,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type StreamEvent,
  type StreamFollow,
} from '@mcp-migrate/runtime';
import { answerFailure, logFailure } from '../errors.js';
import { runExchange } from '../exchange.js';
import { acceptsOf, clientGoneSignal, headerValue } from '../http/util.js';
import { SSE_KEEPALIVE } from '../http/sse.js';
import type { LocalSession } from '../sessions.js';
import type { ExchangeSink } from '../upstreams/upstream.js';
import { initializeSession, messagesOf, readPostBody, routeAnswers } from './client-post.js';
import type { FrontContext } from './context.js';

/** Paths and timings of the legacy HTTP+SSE front. */
export interface LegacySseOptions {
  /** Path of the SSE endpoint (`GET`), e.g. `/sse`. */
  ssePath: string;
  /** Path of the message endpoint (`POST`) announced in the `endpoint` event, e.g. `/message`. */
  messagePath: string;
  /** Interval of `: keep-alive` comments on open SSE streams, ms. Default 15,000 (as SDK 1.x Streamable HTTP). */
  keepAliveMs?: number;
  /**
   * How long an SSE stream may stay open without its session being initialized (no record in the
   * store), ms. Default 60,000. Bounds streams opened by clients that never send `initialize`.
   */
  initializeTimeoutMs?: number;
}

/** The legacy front as the proxy's request handler sees it. */
export interface LegacySseFront {
  readonly ssePath: string;
  readonly messagePath: string;
  /** Whether `pathname` is one of this front's paths. */
  serves(pathname: string): boolean;
  /** Whether `req` opens a long-lived SSE stream (not counted as an in-flight request). */
  isStream(req: IncomingMessage): boolean;
  /** Serves a request on one of {@link serves}'s paths. */
  handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void>;
  /** SSE streams open on this replica. */
  readonly openStreams: number;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;

/** Accept header sent upstream for a legacy client's messages (its POSTs carry none that the Streamable HTTP upstream accepts). */
const UPSTREAM_ACCEPT = 'application/json, text/event-stream';
/** A client whose SSE socket holds more than this many unsent bytes is too slow: its stream is ended. */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;

/**
 * Separates the session id from the session-stream event id in the SSE `id:` of a message event
 * (`<sessionId>.<eventId>`). Session ids are base64url, so they never contain it.
 */
const EVENT_ID_SEPARATOR = '.';

/**
 * The legacy HTTP+SSE transport (spec 2024-11-05 `basic/transports.mdx` §HTTP with SSE; deprecated since
 * 2025-03-26), served across replicas.
 *
 * - `GET <ssePath>` mints a session id (the {@link SessionIdCodec} id, bound to the principal), answers
 *   `text/event-stream` and sends `event: endpoint` with `<messagePath>?sessionId=<id>` (a relative URL,
 *   as SDK 1.x `SSEServerTransport` does; clients treat it as opaque). It then follows the session's
 *   standalone session stream (`'g'`), writing each message as `event: message` with an `id:`, plus
 *   keep-alive comments. Every server message of the session, whichever replica produced it, is
 *   appended to that stream, so the stream may be held by any replica.
 * - `POST <messagePath>?sessionId=<id>` may land on any replica: `initialize` opens the upstream session
 *   and creates the session record; other messages go through this replica's upstream session of the
 *   session (opened by handshake replay if needed) with {@link UpstreamSession.exchange}, and every
 *   resulting message (responses too) is appended to the stream. Client responses to server-initiated
 *   requests go through {@link ServerRequestRouter.reply}. The answer is `202 Accepted` (SDK behaviour),
 *   at once for requests (their responses arrive on the stream), after delivery for notifications and
 *   responses (so `notifications/initialized` reaches the upstream before the client's next request).
 * - Closing the SSE stream ends the session, as in the SDK: the record and streams are deleted and every
 *   replica closes its upstream session. A stream ended by this replica's graceful shutdown (a `retry:`
 *   line) keeps its session: a client that reconnects with `Last-Event-ID` (the SSE `id:` of the last
 *   event, `<sessionId>.<eventId>`) on any replica resumes it with the events it missed.
 *
 * Status codes on the message endpoint: 202 (accepted), 400 (no `sessionId`, malformed JSON -32700,
 * not JSON-RPC, a batch for ≥ 2025-06-18, `initialize` in a batch or twice, unsupported
 * `MCP-Protocol-Version`), 403 (`Origin`), 404 (unknown, forged, other principal's, ended, or not yet
 * initialized session: -32001), 405, 413, 415, 502/503/504 (as the Streamable HTTP front).
 */
export function createLegacySseFront(options: LegacySseOptions, ctx: FrontContext): LegacySseFront {
  const { ssePath, messagePath } = options;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const initializeTimeoutMs = options.initializeTimeoutMs ?? 60_000;
  const { sessions, store, streams, router, logger } = ctx;
  const fail = (res: ServerResponse, err: unknown, id: JsonRpcRequest['id'] | null = null) => answerFailure(res, err, logger, id);
  /** Refresh period of the record's TTL while its SSE stream is open. */
  const touchEveryMs = Math.max(1_000, Math.min(store.ttlMs / 3, 30_000));
  const open = new Set<ServerResponse>();
  /** The SSE stream open on this replica for each session id (its client's end of the session). */
  const streamOf = new Map<string, ServerResponse>();

  function pathOf(url: string | undefined): string {
    const u = url ?? '/';
    const q = u.indexOf('?');
    return q < 0 ? u : u.slice(0, q);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const origin = req.headers.origin;
    if (origin !== undefined && !ctx.originAllowed(origin)) {
      req.resume();
      return writeErrorAnswer(res, 'forbiddenOrigin');
    }
    if (pathname === ssePath) {
      if (req.method !== 'GET') {
        req.resume();
        return writeErrorAnswer(res, 'methodNotAllowed', { headers: { allow: 'GET' } });
      }
      return await openStream(req, res);
    }
    if (req.method !== 'POST') {
      req.resume();
      return writeErrorAnswer(res, 'methodNotAllowed', { headers: { allow: 'POST' } });
    }
    const version = headerValue(req.headers, PROTOCOL_VERSION_HEADER);
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      req.resume();
      return writeErrorAnswer(res, 'unsupportedVersion', { detail: unsupportedVersionDetail(version) });
    }
    return await post(req, res);
  }

  // ---------------------------------------------------------------- SSE stream (GET)

  /** `<sessionId>.<eventId>` → its parts, or undefined. */
  function parseLastEventId(value: string | undefined): { sessionId: string; eventId: string | undefined } | undefined {
    if (!value) return undefined;
    const at = value.indexOf(EVENT_ID_SEPARATOR);
    if (at <= 0) return undefined;
    const eventId = value.slice(at + 1);
    return { sessionId: value.slice(0, at), eventId: eventId.length > 0 ? eventId : undefined };
  }

  async function openStream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!acceptsOf(req).sse) return writeErrorAnswer(res, 'notAcceptable');
    // A legacy session lives as long as its stream: none starts on a replica that is shutting down.
    if (ctx.lifecycle.draining) return writeErrorAnswer(res, 'draining');
    const credential = headerValue(req.headers, ctx.principalHeader);
    // Resumption (after a graceful shutdown, on any replica): `Last-Event-ID` names the session; it
    // must verify for this principal and the session must still exist.
    let sessionId: string | undefined;
    let principal: string | undefined;
    let after: string | undefined;
    const last = parseLastEventId(headerValue(req.headers, LAST_EVENT_ID_HEADER));
    if (last) {
      const verified = ctx.verifier.verify(last.sessionId, credential);
      if (verified) {
        try {
          const record = await store.load(last.sessionId);
          if (record && record.principal === verified.principal) {
            sessionId = last.sessionId;
            principal = verified.principal;
            if (last.eventId !== undefined && streams.streamOf(last.eventId) === STANDALONE_STREAM) after = last.eventId;
          }
        } catch (err) {
          return fail(res, err);
        }
      }
    }
    const resumed = sessionId !== undefined;
    if (sessionId === undefined || principal === undefined) ({ id: sessionId, principal } = ctx.codec.mint(credential));
    const sid = sessionId;
    const log = logger.child({ session: sessionFingerprint(sid) });

    // Once the session exists, this replica keeps an upstream session of it open (opened in the
    // background if need be) while the stream is open, as for a Streamable HTTP standalone GET, so
    // the server's unsolicited messages keep coming.
    let holding = false;
    let release: (() => void) | undefined;
    let streamClosed = false;
    const holdUpstream = () => {
      if (holding) return;
      holding = true;
      sessions.resolve(sid, principal).then(
        (session) => {
          if (!session) {
            holding = false; // not initialized yet (or gone): try again on the next event or touch
            return;
          }
          if (streamClosed) return;
          // Owner routing: the owner's upstream session produces the messages; nobody else opens one.
          if (ctx.owner && session.record.owner !== undefined && session.record.owner !== ctx.owner.replicaId) {
            holding = false;
            return;
          }
          release = sessions.hold(session);
          if (!sessions.readyUpstream(session)) {
            sessions.upstreamFor(session, req).catch((err: unknown) => {
              log.warn({ err: (err as Error).message }, 'could not open an upstream session for a legacy SSE stream');
            });
          }
        },
        () => {
          holding = false;
        },
      );
    };

    /** Events delivered before the endpoint event went out (a resumed follow replays at once). */
    let early: StreamEvent[] | undefined = [];
    /** Why the stream ended, when not by the client. */
    let endedBy: 'superseded' | 'deleted' | 'gone' | undefined;
    const write = (ev: StreamEvent, live: boolean) => {
      if (early) {
        early.push(ev);
        return;
      }
      if (res.destroyed || res.writableEnded) return;
      res.write(`id: ${sid}${EVENT_ID_SEPARATOR}${ev.eventId}\nevent: message\ndata: ${JSON.stringify(ev.message)}\n\n`);
      if (live) ctx.metrics.busLag(ev.ts);
      if (!holding) holdUpstream();
      if (res.writableLength > MAX_UNSENT_BYTES) {
        log.warn({ unsent: res.writableLength }, 'legacy SSE client does not read its stream; ending it');
        res.destroy();
      }
    };

    res.writeHead(200, SSE_HEADERS);
    open.add(res);
    streamOf.set(sid, res);
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    let follow: StreamFollow;
    try {
      // Exclusive: one SSE stream per session across replicas. A client resuming elsewhere ends this one.
      follow = await streams.follow(
        sid,
        STANDALONE_STREAM,
        {
          ...(after !== undefined ? { after } : { undelivered: true }),
          exclusive: true,
          onClosed: (reason) => {
            endedBy ??= reason;
            log.debug({ reason }, 'legacy SSE stream ended by its session stream');
            res.end();
          },
        },
        write,
      );
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot follow the session stream; ending the legacy SSE stream');
      open.delete(res);
      res.destroy();
      return;
    }
    // The endpoint event comes first. Its id is the follow's cursor, so a client that resumes before
    // any message arrived still gets every message of the session.
    if (!res.destroyed) res.write(`id: ${sid}${EVENT_ID_SEPARATOR}${follow.cursor}\nevent: endpoint\ndata: ${messagePath}?sessionId=${sid}\n\n`);
    const replayed = early;
    early = undefined;
    for (const ev of replayed) write(ev, false);
    log.debug({ resumed, replayed: replayed.length }, 'legacy SSE stream opened');
    ctx.metrics.standaloneStreams.inc();
    if (resumed) holdUpstream();

    const keepAlive = setInterval(() => {
      if (!res.destroyed && !res.writableEnded) res.write(SSE_KEEPALIVE);
    }, keepAliveMs);
    keepAlive.unref();
    // Keep the record alive while the stream is open (its TTL slides only on requests otherwise); end
    // the stream once the session is gone, or if it was never initialized in time.
    const openedAt = Date.now();
    let initialized = resumed;
    const touch = setInterval(() => {
      store.touch(sid).then(
        (exists) => {
          if (exists) {
            initialized = true;
            holdUpstream();
          } else if (initialized || Date.now() - openedAt >= initializeTimeoutMs) {
            log.debug({ initialized }, initialized ? 'session gone; ending its legacy SSE stream' : 'session never initialized; ending its legacy SSE stream');
            endedBy ??= 'gone';
            res.end();
          }
        },
        () => undefined, // store unavailable: try again next time
      );
    }, Math.min(touchEveryMs, initializeTimeoutMs));
    touch.unref();

    await closed;
    streamClosed = true;
    release?.();
    ctx.metrics.standaloneStreams.dec();
    open.delete(res);
    if (streamOf.get(sid) === res) streamOf.delete(sid);
    clearInterval(keepAlive);
    clearInterval(touch);
    await follow.close().catch(() => undefined);
    if (endedBy === 'superseded') return; // the client resumed the session on another stream
    if (endedBy === undefined && ctx.lifecycle.draining) {
      // Ended by this replica's graceful shutdown (`retry:`): the session lives on for a resuming client.
      log.debug('legacy SSE stream ended by shutdown; session kept');
      return;
    }
    // As SDK 1.x `SSEServerTransport`: the session lives as long as its SSE stream.
    await endSession(sid, log);
  }

  /** Deletes a legacy session everywhere: record, streams, pending server requests, upstream sessions. */
  async function endSession(sid: string, log: Logger): Promise<void> {
    try {
      await store.delete(sid);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not delete the record of an ended legacy session (it expires with its TTL)');
    }
    await streams.delete(sid).catch(() => undefined);
    router.forget(sid);
    await sessions.drop(sid, 'deleted');
    await sessions.announceTermination(sid);
    log.debug('legacy SSE stream closed; session ended');
  }

  // ---------------------------------------------------------------- messages (POST)

  async function post(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const sid = url.searchParams.get('sessionId');
    if (!sid) {
      req.resume();
      return writeErrorAnswer(res, 'badRequest', { detail: 'sessionId query parameter is required' });
    }
    const verified = ctx.verifier.verify(sid, headerValue(req.headers, ctx.principalHeader));
    if (!verified) {
      req.resume();
      return writeErrorAnswer(res, 'sessionNotFound');
    }
    const body = await readPostBody(req, res, ctx.maxBodyBytes);
    if (!body) return;
    const parsed = messagesOf(body.parsed, res);
    if (!parsed) return;
    const { messages, batch } = parsed;
    // A legacy client's POST accepts nothing in particular; the upstream (a Streamable HTTP server, or
    // the stdio relay) is asked for what the proxy itself reads.
    req.headers.accept = UPSTREAM_ACCEPT;
    const init = messages.find((m): m is JsonRpcRequest => isRequest(m) && m.method === HANDSHAKE_METHODS.initialize);
    if (init) {
      if (batch) return writeErrorAnswer(res, 'invalidRequest', { detail: 'initialize must not be part of a JSON-RPC batch' });
      return await initialize(req, res, sid, verified.principal, body.raw, init);
    }
    let session: LocalSession | undefined;
    try {
      session = await sessions.resolve(sid, verified.principal);
    } catch (err) {
      return fail(res, err);
    }
    if (!session) return writeErrorAnswer(res, 'sessionNotFound');
    const protocolVersion = session.record.protocolVersion;
    if (batch && !allowsBatches(protocolVersion)) {
      return writeErrorAnswer(res, 'invalidRequest', { detail: `JSON-RPC batches are not supported in protocol version ${protocolVersion}` });
    }
    // Owner routing: the owner serves the message (its answers reach the stream through the session stream).
    if (ctx.owner) session = await ctx.owner.route(session, req, res, body.raw);
    if (session) await exchangePost(req, res, session, messages);
  }

  /** Answers to server-initiated requests go to the router; the rest through this replica's upstream session. */
  async function exchangePost(req: IncomingMessage, res: ServerResponse, s: LocalSession, messages: JsonRpcMessage[]): Promise<void> {
    let forward: JsonRpcMessage[];
    try {
      forward = await routeAnswers(ctx, s.id, messages);
    } catch (err) {
      return fail(res, err);
    }
    if (forward.length === 0) return accepted(res);
    if (forward.some(isRequest)) {
      // Responses arrive on the SSE stream; a long tool call must not hold the POST (SDK behaviour).
      accepted(res);
      ctx.lifecycle.trackWork(deliver(s, forward, req).catch((err: unknown) => log(s).warn({ err: (err as Error).message }, 'legacy exchange failed')));
      return;
    }
    try {
      await deliver(s, forward, req);
    } catch (err) {
      return fail(res, err);
    }
    accepted(res);
  }

  function accepted(res: ServerResponse): void {
    if (res.headersSent) return;
    res.writeHead(202, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 8 });
    res.end('Accepted');
  }

  function log(session: LocalSession): Logger {
    return logger.child({ session: sessionFingerprint(session.id) });
  }

  async function initialize(req: IncomingMessage, res: ServerResponse, sid: string, principal: string, raw: Buffer, init: JsonRpcRequest): Promise<void> {
    const owner = ctx.owner;
    // Owner routing: a replica that shuts down passes new sessions on to one that stays.
    if (owner && (!owner.acceptNew(req, res, sid) || (await owner.forwardNew(req, res, raw, sid)))) return;
    const gone = initializeGoneSignal(res, sid);
    try {
      // One session per SSE stream: its id is initialized once.
      if (await store.load(sid)) return writeErrorAnswer(res, 'invalidRequest', { id: init.id, detail: 'session already initialized' });
      const outcome = await initializeSession(ctx, { sessionId: sid, principal, req, raw, init, owner: owner?.replicaId, signal: gone.signal });
      // The upstream's answer could not be read (HTTP error): pass it on as the POST's answer.
      if (!outcome.response) return outcome.respond(res, {});
      await streams.append(sid, STANDALONE_STREAM, outcome.response);
      accepted(res);
    } catch (err) {
      if (!gone.signal.aborted) return fail(res, err, init.id);
      logger.info({ session: sessionFingerprint(sid) }, 'client went away during initialize; its upstream session was closed');
      // The POST may still be open (its SSE stream closed): the session is over.
      if (!res.headersSent && !res.destroyed) writeErrorAnswer(res, 'sessionNotFound', { id: init.id });
    } finally {
      gone.dispose();
    }
  }

  /**
   * Aborts when the client of an initialize went away, so it leaves no upstream session (a child
   * process) and no record behind: its POST closed before the answer (as `clientGoneSignal` on the
   * Streamable HTTP front), or the session's SSE stream on this replica closed (the session lives as
   * long as its stream, SDK 1.x `SSEServerTransport`). A stream ended by the proxy (superseded,
   * shutdown) does not abort. A stream on another replica is not watched.
   */
  function initializeGoneSignal(res: ServerResponse, sid: string): { signal: AbortSignal; dispose(): void } {
    const post = clientGoneSignal(res);
    const stream = streamOf.get(sid);
    if (!stream) return post;
    const sse = clientGoneSignal(stream);
    return {
      signal: AbortSignal.any([post.signal, sse.signal]),
      dispose: () => {
        post.dispose();
        sse.dispose();
      },
    };
  }

  /**
   * Sends client messages through this replica's upstream session of `session` (the proxy's one exchange
   * path) and appends every resulting server message and response to the session's stream, in order.
   * Requests whose exchange fails get a JSON-RPC error response on the stream (the error table's code
   * and message); a failure with no request to answer rejects (the caller answers the POST with it).
   */
  async function deliver(session: LocalSession, messages: JsonRpcMessage[], req: IncomingMessage): Promise<void> {
    const sid = session.id;
    const requests = messages.filter(isRequest);
    const answered = new Set<string>();
    let appended: Promise<void> = Promise.resolve();
    const append = (m: JsonRpcMessage) => {
      appended = appended
        .then(() => streams.append(sid, STANDALONE_STREAM, m))
        .then(
          () => undefined,
          (err: unknown) => log(session).warn({ err: (err as Error).message }, 'could not append to the legacy session stream'),
        );
    };
    const sink: ExchangeSink = {
      message: append,
      response: (r: JsonRpcResponse) => {
        if (r.id !== null) answered.add(idKey(r.id));
        append(r);
      },
    };
    const protocolVersion = session.record.protocolVersion;
    try {
      await runExchange(sessions, logger, { session, messages, req, send: (up) => up.exchange(messages, protocolVersion, req.headers, sink) });
    } catch (err) {
      if (requests.length === 0) throw err;
      logFailure(log(session), errorKindOf(err), err);
      for (const r of requests) if (!answered.has(idKey(r.id))) append(errorBodyOf(err, r.id));
    } finally {
      await appended;
    }
  }

  return {
    ssePath,
    messagePath,
    serves: (pathname) => pathname === ssePath || pathname === messagePath,
    isStream: (req) => req.method === 'GET' && pathOf(req.url) === ssePath,
    handle,
    get openStreams() {
      return open.size;
    },
  };
}
