/**
 * Owner affinity for a server's own HTTP routes that act for a session but are not MCP requests: the
 * browser page of a URL-mode elicitation and the form it posts back (spec: Elicitation, URL mode; the
 * server completes it with `notifications/elicitation/complete` on that session), an OAuth callback, a
 * status page. Such a route reaches state the session's owner holds in process (the elicitation's
 * waiter), so it must run there: {@link routeToOwner} finds the session id the request carries, serves
 * the request here when this replica holds the session, forwards it to the owner otherwise (the same
 * `OwnerAffinity.route` as MCP requests: node-forward, signed forwarding header, owner-loss policy), and
 * answers 404 when the session is not open on any replica. Used by `SessionTransportRegistry.ownerRoute`
 * (Express-style middleware) and `SessionTransportRegistry.routeNode` (plain node:http).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeErrorPage, type ErrorKind } from './error-answers.js';
import type { OwnerAffinity } from './owner-affinity.js';

/**
 * Where a route's request carries the id of the session it acts for: a query parameter (`{ query:
 * 'session' }`), a field of a form or JSON body (`{ body: 'session' }`: `application/x-www-form-urlencoded`
 * or `application/json`, top level), a path parameter (`{ param: 'id' }`: Express's `req.params`, so the
 * middleware must be route-level), a request header (`{ header: 'x-session' }`), or a function of the
 * request and its raw body (`undefined` when the body is not needed or was already read).
 */
export type SessionLocator =
  | { query: string }
  | { body: string }
  | { param: string }
  | { header: string }
  | ((req: IncomingMessage, body: Buffer | undefined) => string | undefined);

/** Largest body {@link routeToOwner} reads to find a session id in it, bytes (a larger one gets 413). */
export const MAX_ROUTE_BODY_BYTES = 1024 * 1024;

/** What {@link routeToOwner} needs of the registry. */
export interface OwnerRouteHost {
  /** The registry's owner affinity; `undefined` with `affinity: 'replay'` (the route is served where it lands). */
  affinity: OwnerAffinity | undefined;
  /** Whether this replica holds the session's transport (and so the state the owner keeps). */
  isLocal(sessionId: string): boolean;
  /** The error kind of a thrown error (store unreachable: 503). */
  failed(err: unknown): ErrorKind;
}

/**
 * Routes one request of a session's own HTTP route. Resolves `true` when the route's code should run
 * here: the request names no session (the route answers its own 400), this replica holds the session,
 * or the registry has no owner affinity. Resolves `false` once the request was answered: forwarded to
 * the owner (its answer relayed), or an error page from the error table (HTML when the client accepts
 * it, else JSON-RPC JSON): 404 `sessionNotFound` when the store does not know the session or it is not
 * open on its owner any more (owner gone: `MCP_MIGRATE_ON_OWNER_LOSS`), 413 for a body over
 * {@link MAX_ROUTE_BODY_BYTES}, 421 for a forged forwarding header, 503 when the store or the owner
 * does not answer. A body read to find the id is forwarded as received (byte for byte) and, when served
 * here, given back to the request stream unread, so body parsers after this (`express.urlencoded()`)
 * read it as if nothing had.
 */
export async function routeToOwner(host: OwnerRouteHost, req: IncomingMessage, res: ServerResponse, locate: SessionLocator): Promise<boolean> {
  let found: { sessionId: string | undefined; raw: Buffer | undefined };
  try {
    found = await locateSession(req, locate);
  } catch (err) {
    writeErrorPage(req, res, err instanceof BodyTooLargeError ? 'payloadTooLarge' : 'badRequest');
    return false;
  }
  const { sessionId, raw } = found;
  if (sessionId === undefined || host.affinity === undefined) return true;
  try {
    const routed = await host.affinity.route(sessionId, host.isLocal(sessionId), req, res, () => raw ?? bodyAlreadyRead(req));
    if (routed.action === 'answered') return false;
    if (routed.action === 'error') {
      writeErrorPage(req, res, routed.kind, routed.detail, routed.headers);
      return false;
    }
  } catch (err) {
    writeErrorPage(req, res, host.failed(err));
    return false;
  }
  if (host.isLocal(sessionId)) return true;
  // Known nowhere, or claimed here without its state (never owned, or its owner gone under `replay`).
  writeErrorPage(req, res, 'sessionNotFound', 'no replica holds this session any more; the client must start it again');
  return false;
}

/** The session id a request carries per `locate`, and the raw body when it was read for it (already given back to `req`). @throws BodyTooLargeError */
export async function locateSession(req: IncomingMessage, locate: SessionLocator): Promise<{ sessionId: string | undefined; raw: Buffer | undefined }> {
  if (typeof locate !== 'function' && !('body' in locate)) return { sessionId: nonEmpty(fromRequest(req, locate)), raw: undefined };
  const raw = req.readableEnded || req.readableFlowing ? undefined : await readAndGiveBack(req);
  if (typeof locate === 'function') return { sessionId: nonEmpty(locate(req, raw)), raw };
  return { sessionId: nonEmpty(raw !== undefined ? bodyField(req, raw, locate.body) : parsedField(req, locate.body)), raw };
}

function fromRequest(req: IncomingMessage, locate: { query: string } | { param: string } | { header: string }): unknown {
  if ('query' in locate) return new URL(req.url ?? '/', 'http://localhost').searchParams.get(locate.query);
  if ('param' in locate) return (req as { params?: Record<string, unknown> }).params?.[locate.param];
  return req.headers[locate.header.toLowerCase()];
}

/** A top-level field of a form or JSON body, by the request's `content-type`. */
function bodyField(req: IncomingMessage, raw: Buffer, field: string): unknown {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return new URLSearchParams(raw.toString('utf8')).get(field);
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return (JSON.parse(raw.toString('utf8')) as Record<string, unknown> | null)?.[field];
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** A field of a body a parser before this already read (`req.body`). */
function parsedField(req: IncomingMessage, field: string): unknown {
  const body = (req as { body?: unknown }).body;
  return body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;
}

function nonEmpty(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/**
 * A body a parser before the middleware already read, to forward: re-encoded from `req.body` as the
 * request's `content-type` says (a form as `a=b&c=d`, anything else as JSON). Not byte-identical: put
 * the middleware before body parsers for that.
 */
function bodyAlreadyRead(req: IncomingMessage): unknown {
  if (!req.readableEnded) return undefined;
  const body = (req as { body?: unknown }).body;
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('application/x-www-form-urlencoded') && body !== null && typeof body === 'object') {
    return new URLSearchParams(Object.entries(body as Record<string, unknown>).map(([k, v]): [string, string] => [k, String(v)])).toString();
  }
  return body ?? Buffer.alloc(0);
}

export class BodyTooLargeError extends Error {}

/**
 * Reads the whole request body and puts it back at the front of the stream before `'end'` is emitted
 * (`readable.unshift`), so that whoever reads `req` next (a body parser, `for await`) gets the same
 * bytes. @throws BodyTooLargeError past {@link MAX_ROUTE_BODY_BYTES} (the stream is then left consumed).
 */
export function readAndGiveBack(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error): void => {
      req.off('readable', onReadable);
      req.off('error', done);
      req.off('aborted', onAborted);
      req.off('end', onEnd);
      if (err) return reject(err);
      const raw = Buffer.concat(chunks);
      // Same tick as the read that saw the end: `'end'` is not emitted yet, so the bytes can go back.
      if (raw.length > 0) req.unshift(raw);
      resolve(raw);
    };
    const onAborted = (): void => done(new Error('the client went away before sending the whole body'));
    // An empty body whose end arrived before this: the stream ends without a `'readable'` with data.
    const onEnd = (): void => done();
    function onReadable(): void {
      let chunk: Buffer | null;
      while ((chunk = req.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > MAX_ROUTE_BODY_BYTES) return done(new BodyTooLargeError(`request body over ${MAX_ROUTE_BODY_BYTES} bytes`));
      }
      if (req.complete) done();
    }
    req.on('readable', onReadable);
    req.once('error', done);
    req.once('aborted', onAborted);
    req.once('end', onEnd);
  });
}
