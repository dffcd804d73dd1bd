import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  allowsBatches,
  HANDSHAKE_METHODS,
  isRequest,
  LAST_EVENT_ID_HEADER,
  PROTOCOL_VERSION_HEADER,
  serveSessionStream,
  SESSION_ID_HEADER,
  sessionFingerprint,
  SUPPORTED_PROTOCOL_VERSIONS,
  unsupportedVersionDetail,
  writeErrorAnswer,
  type JsonRpcMessage,
  type JsonRpcRequest,
} from '@mcp-migrate/runtime';
import { answerFailure } from '../errors.js';
import { FORWARDED_HEADER } from '@mcp-migrate/runtime';
import { runExchange } from '../exchange.js';
import { clientGoneSignal, headerValue } from '../http/util.js';
import type { LocalSession } from '../sessions.js';
import type { ClientPost } from '../upstreams/upstream.js';
import { initializeSession, isAnswerToRewritten, messagesOf, parsePostBody, readRawPostBody, routeAnswers } from './client-post.js';
import type { FrontContext } from './context.js';
import type { ModernFront } from './modern/front.js';
import { classifyPost } from './modern/classify.js';

/**
 * The Streamable HTTP front on the MCP endpoint (spec 2025-03-26/06-18/11-25 `basic/transports.mdx`
 * §Streamable HTTP, §Session Management): POST, GET and DELETE. A POST without a session may be a
 * 2026-07-28 request: `modern` (when on) answers those. Errors are the runtime's error table.
 */
export class StreamableHttpFront {
  constructor(
    readonly ctx: FrontContext,
    readonly modern: ModernFront | undefined,
  ) {}

  /** Serves a request on the MCP endpoint. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.ctx.originAllowed(origin)) return writeErrorAnswer(res, 'forbiddenOrigin');
    const method = req.method ?? '';
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return writeErrorAnswer(res, 'methodNotAllowed', { headers: { allow: 'GET, POST, DELETE' } });
    }
    const sessionless = headerValue(req.headers, SESSION_ID_HEADER) === undefined;
    if (this.modern && sessionless && method !== 'POST') {
      // No session, no GET stream or DELETE: 2026-07-28 §Backward Compatibility ("respond with 405").
      return writeErrorAnswer(res, 'methodNotAllowed', { detail: 'no session (2026-07-28 clients only POST)', headers: { allow: 'POST' } });
    }
    // Without a session, a POST's era is known only from its body (the modern front checks its own header).
    if (!(this.modern && sessionless && method === 'POST') && !legacyVersionOk(req, res)) return;
    if (method === 'POST') return await this.#post(req, res);
    if (method === 'GET') return await this.#get(req, res);
    return await this.#delete(req, res);
  }

  /**
   * Validates the session header and starts resolving the session (one store command when cached):
   * `undefined` resolution → 404. Started before the body is read, so both wait at once.
   */
  #resolve(req: IncomingMessage): { sid: string | undefined; pending?: Promise<LocalSession | undefined> } {
    const sid = headerValue(req.headers, SESSION_ID_HEADER);
    if (sid === undefined) return { sid };
    const verified = this.ctx.verifier.verify(sid, headerValue(req.headers, this.ctx.principalHeader));
    if (!verified) return { sid, pending: Promise.resolve(undefined) };
    const pending = this.ctx.sessions.resolve(sid, verified.principal);
    pending.catch(() => undefined); // observed below; avoid an unhandled rejection if we answer early
    return { sid, pending };
  }

  /**
   * The session of a request, or `undefined` once answered (404, 503, or forwarded to its owner).
   * `route`: a POST goes through owner routing; a GET stream is served by any replica (from the session's streams).
   */
  async #session(req: IncomingMessage, res: ServerResponse, pending: Promise<LocalSession | undefined>, raw?: Buffer, route = true): Promise<LocalSession | undefined> {
    let session: LocalSession | undefined;
    try {
      session = await pending;
    } catch (err) {
      answerFailure(res, err, this.ctx.logger);
      return undefined;
    }
    if (!session) {
      writeErrorAnswer(res, 'sessionNotFound');
      return undefined;
    }
    return this.ctx.owner && route ? await this.ctx.owner.route(session, req, res, raw) : session;
  }

  async #post(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Owner affinity's steady path: a session whose owner is known and elsewhere is forwarded without a
    // store command here (the owner's own `touch` proves the session still exists).
    const owner = this.ctx.owner;
    const cached = owner?.cachedOwner(req);
    let resolved = cached ? undefined : this.#resolve(req);
    const raw = await readRawPostBody(req, res, this.ctx.maxBodyBytes);
    if (!raw) return;
    // Forwarded as received: the owner parses and validates it.
    if (cached && (await owner!.forwardCached(cached, req, res, raw))) return;
    const { sid, pending } = (resolved ??= this.#resolve(req));
    const body = parsePostBody(raw, res);
    if (!body) return;
    if (this.modern && sid === undefined) {
      const decision = classifyPost(req.headers, body.parsed);
      if (decision.era !== 'legacy') return await this.modern.serve(req, res, decision);
      if (!legacyVersionOk(req, res)) return;
    }
    const parsed = messagesOf(body.parsed, res);
    if (!parsed) return;
    const { messages, batch } = parsed;
    const init = messages.find((m): m is JsonRpcRequest => isRequest(m) && m.method === HANDSHAKE_METHODS.initialize);
    if (init) {
      if (batch) return writeErrorAnswer(res, 'invalidRequest', { detail: 'initialize must not be part of a JSON-RPC batch' });
      if (sid !== undefined) return writeErrorAnswer(res, 'invalidRequest', { id: init.id, detail: 'initialize must be sent without Mcp-Session-Id' });
      return await this.#initialize(req, res, body.raw, init);
    }
    if (sid === undefined || !pending) return writeErrorAnswer(res, 'sessionRequired');
    const session = await this.#session(req, res, pending, body.raw);
    if (!session) return;
    const protocolVersion = session.record.protocolVersion;
    if (batch && !allowsBatches(protocolVersion)) {
      return writeErrorAnswer(res, 'invalidRequest', { detail: `JSON-RPC batches are not supported in protocol version ${protocolVersion}` });
    }
    const firstId = messages.length === 1 && isRequest(messages[0]!) ? messages[0].id : null;
    try {
      await this.#exchange(session, { req, res, raw: body.raw, messages, batch, protocolVersion });
    } catch (err) {
      answerFailure(res, err, this.ctx.logger, firstId);
    }
  }

  /** Routes the answers to server-initiated requests, then sends the rest upstream (spec: responses only → 202). */
  async #exchange(session: LocalSession, p: ClientPost): Promise<void> {
    if (p.messages.some(isAnswerToRewritten)) {
      const rest = await routeAnswers(this.ctx, session.id, p.messages);
      if (rest.length === 0) return void p.res.writeHead(202).end();
      if (rest.length !== p.messages.length) p = { ...p, messages: rest, raw: Buffer.from(JSON.stringify(p.batch ? rest : rest[0])) };
    }
    const post = p;
    const messages: JsonRpcMessage[] = post.messages;
    const outcome = await runExchange(this.ctx.sessions, this.ctx.logger, { session, messages, req: post.req, send: (up) => up.post(post) });
    // The client's `notifications/initialized` that a handshake replay already sent to this upstream session.
    if (outcome === 'dropped') p.res.writeHead(202).end();
  }

  async #initialize(req: IncomingMessage, res: ServerResponse, raw: Buffer, init: JsonRpcRequest): Promise<void> {
    const owner = this.ctx.owner;
    // Owner routing: a replica that shuts down passes new sessions on to one that stays.
    if (owner && (!owner.acceptNew(req, res) || (await owner.forwardNew(req, res, raw)))) return;
    const { id, principal } = this.ctx.codec.mint(headerValue(req.headers, this.ctx.principalHeader));
    // A client that gives up (its request timeout) must not leave a session, or a child process, behind.
    const gone = clientGoneSignal(res);
    try {
      const outcome = await initializeSession(this.ctx, { sessionId: id, principal, req, raw, init, owner: this.ctx.owner?.replicaId, signal: gone.signal });
      outcome.respond(res, outcome.created ? { [SESSION_ID_HEADER]: id } : {});
    } catch (err) {
      if (gone.signal.aborted) this.ctx.logger.info({ err: (err as Error).message }, 'client went away during initialize; its upstream session was closed');
      else answerFailure(res, err, this.ctx.logger, init.id);
    } finally {
      gone.dispose();
    }
  }

  /**
   * A client GET: an SSE stream served by the proxy itself from the session's streams (spec §Listening
   * for Messages from the Server, §Resumability and Redelivery; the runtime's `serveSessionStream`, shared
   * with apply's `SessionTransportRegistry`), on whichever replica receives it, owner or not. While a
   * standalone stream is open here, this replica keeps its upstream session of the session open, so its
   * notifications keep coming; in owner routing only the owner has one (opened by nobody else).
   */
  async #get(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { sid, pending } = this.#resolve(req);
    if (sid === undefined || !pending) return writeErrorAnswer(res, 'sessionRequired');
    if (!(headerValue(req.headers, 'accept') ?? '').includes('text/event-stream')) return writeErrorAnswer(res, 'notAcceptable');
    if (this.ctx.owner && req.headers[FORWARDED_HEADER] !== undefined) return writeErrorAnswer(res, 'misdirected', { detail: 'GET streams are not forwarded' });
    const session = await this.#session(req, res, pending, undefined, false);
    if (!session) return;
    const holdsUpstream = !this.ctx.owner || session.record.owner === this.ctx.owner.replicaId;
    const { sessions, metrics, logger } = this.ctx;
    try {
      await serveSessionStream(res, {
        streams: this.ctx.streams,
        sessionId: session.id,
        protocolVersion: session.record.protocolVersion,
        lastEventId: headerValue(req.headers, LAST_EVENT_ID_HEADER),
        keepAliveMs: this.ctx.keepAliveMs,
        retryMs: this.ctx.sseRetryMs,
        onEvent: (event, live) => {
          if (live) metrics.busLag(event.ts);
        },
        onOpen: (standalone) => {
          if (!standalone) return;
          metrics.standaloneStreams.inc();
          const release = sessions.hold(session);
          if (holdsUpstream && !sessions.readyUpstream(session)) {
            sessions.upstreamFor(session, req).catch((err: unknown) => {
              logger.warn({ err: (err as Error).message, session: sessionFingerprint(session.id) }, 'could not open an upstream session for a standalone stream');
            });
          }
          return () => {
            release();
            metrics.standaloneStreams.dec();
          };
        },
      });
    } catch (err) {
      answerFailure(res, err, logger);
    }
  }

  async #delete(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { verifier, owner, store, sessions, streams, logger } = this.ctx;
    const sid = headerValue(req.headers, SESSION_ID_HEADER);
    if (sid === undefined) return writeErrorAnswer(res, 'sessionRequired');
    if (!verifier.verify(sid, headerValue(req.headers, this.ctx.principalHeader))) return writeErrorAnswer(res, 'sessionNotFound');
    if (owner && (await owner.routeDelete(sid, req, res))) return;
    let existed: boolean;
    try {
      existed = await store.delete(sid);
    } catch (err) {
      return answerFailure(res, err, logger);
    }
    // Closing the upstream session (stopping a child, DELETE upstream) need not delay the answer.
    const dropped = sessions.drop(sid, 'deleted');
    if (!existed) {
      await dropped;
      return writeErrorAnswer(res, 'sessionNotFound');
    }
    await sessions.announceTermination(sid);
    // Its stored streams go too; their followers (GET streams on any replica) end.
    await streams.delete(sid).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'could not delete the session streams'));
    logger.debug({ session: sessionFingerprint(sid) }, 'session deleted');
    res.writeHead(200).end();
  }
}

/** Answers 400 and returns false for an `MCP-Protocol-Version` no legacy revision has. */
export function legacyVersionOk(req: IncomingMessage, res: ServerResponse): boolean {
  const version = headerValue(req.headers, PROTOCOL_VERSION_HEADER);
  if (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return true;
  writeErrorAnswer(res, 'unsupportedVersion', { detail: unsupportedVersionDetail(version) });
  return false;
}
