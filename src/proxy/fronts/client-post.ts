import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  classifyMessage,
  negotiatedProtocolVersion,
  isResponse,
  isRewrittenId,
  RUNTIME_ID_PREFIX,
  sessionFingerprint,
  writeErrorAnswer,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '@mcp-migrate/runtime';
import { BodyTooLargeError, headerValue, readBody } from '../http/util.js';
import type { InitializeOutcome } from '../upstreams/upstream.js';
import type { LocalSession } from '../sessions.js';
import type { FrontContext } from './context.js';

/** What the Streamable HTTP and legacy HTTP+SSE fronts do alike with a client's POST. */

/**
 * Reads a client POST body: answers 415 (not `application/json`), 413 (over `maxBodyBytes`) or 400/-32700
 * (malformed JSON) and resolves `undefined`; else the body as received and parsed.
 */
export async function readPostBody(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): Promise<{ raw: Buffer; parsed: unknown } | undefined> {
  const raw = await readRawPostBody(req, res, maxBodyBytes);
  return raw && parsePostBody(raw, res);
}

/** The first half of {@link readPostBody}: the body as received, or `undefined` once 415 or 413 was answered. */
export async function readRawPostBody(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): Promise<Buffer | undefined> {
  const contentType = headerValue(req.headers, 'content-type') ?? '';
  if (!contentType.toLowerCase().includes('application/json')) {
    req.resume();
    writeErrorAnswer(res, 'unsupportedMediaType');
    return undefined;
  }
  try {
    return await readBody(req, maxBodyBytes);
  } catch (err) {
    if (!(err instanceof BodyTooLargeError)) throw err;
    writeErrorAnswer(res, 'payloadTooLarge', { detail: `body exceeds ${maxBodyBytes} bytes` });
    return undefined;
  }
}

/** The second half of {@link readPostBody}: the parsed body, or `undefined` once 400/-32700 was answered. */
export function parsePostBody(raw: Buffer, res: ServerResponse): { raw: Buffer; parsed: unknown } | undefined {
  try {
    return { raw, parsed: JSON.parse(raw.toString('utf8')) };
  } catch {
    writeErrorAnswer(res, 'parseError');
    return undefined;
  }
}

/**
 * The JSON-RPC messages of a parsed body (one, or a batch), or `undefined` after answering 400/-32600:
 * not JSON-RPC 2.0, an empty batch, or a request id in the runtime's reserved `mcp-migrate:` space.
 */
export function messagesOf(parsed: unknown, res: ServerResponse): { messages: JsonRpcMessage[]; batch: boolean } | undefined {
  const batch = Array.isArray(parsed);
  const values = batch ? (parsed as unknown[]) : [parsed];
  if (values.length === 0 || values.some((v) => classifyMessage(v) === undefined)) {
    writeErrorAnswer(res, 'invalidRequest', { detail: 'not a JSON-RPC 2.0 message' });
    return undefined;
  }
  const messages = values as JsonRpcMessage[];
  if (messages.some((m) => 'method' in m && 'id' in m && typeof m.id === 'string' && m.id.startsWith(RUNTIME_ID_PREFIX))) {
    writeErrorAnswer(res, 'invalidRequest', { detail: `request ids starting with "${RUNTIME_ID_PREFIX}" are reserved` });
    return undefined;
  }
  return { messages, batch };
}

/** Whether a client message answers a server-initiated request whose id the router rewrote. */
export function isAnswerToRewritten(m: JsonRpcMessage): m is JsonRpcResponse {
  return isResponse(m) && isRewrittenId(m.id);
}

/**
 * Hands the client's answers to server-initiated requests to the router, which delivers each to the
 * upstream session that asked, on whichever replica holds it. Returns the messages left to send upstream
 * here (anything else, and answers whose id is not a rewritten one).
 */
export async function routeAnswers(ctx: FrontContext, sessionId: string, messages: JsonRpcMessage[]): Promise<JsonRpcMessage[]> {
  const rest: JsonRpcMessage[] = [];
  for (const m of messages) {
    if (!isResponse(m)) {
      rest.push(m);
      continue;
    }
    const outcome = await ctx.router.reply(sessionId, m);
    ctx.metrics.answerRouted(outcome);
    if (outcome === 'unknown') rest.push(m);
  }
  return rest;
}

/**
 * A client's `initialize` on a new upstream session (within `--max-sessions`); on success the session
 * record is created (before the answer goes out, so the client's next request may reach any replica)
 * with the protocol version the upstream negotiated, and the session is this replica's. The caller
 * writes the answer (`outcome.respond`). Rejects like the exchange path (503, 502/504).
 *
 * `signal` aborts when the client went away (see `clientGoneSignal`): then nothing is left behind, no
 * upstream session (a child process) and no record of a session nobody knows the id of, and the call
 * rejects with {@link ClientGoneError}, whatever the upstream answered.
 */
export async function initializeSession(
  ctx: FrontContext,
  a: { sessionId: string; principal: string; req: IncomingMessage; raw: Buffer; init: JsonRpcRequest; owner?: string | undefined; signal?: AbortSignal },
): Promise<InitializeOutcome & { created?: LocalSession }> {
  // Owner routing: the record names this replica only once other replicas can find it in the registry.
  if (a.owner !== undefined) await ctx.owner?.ready;
  await ctx.sessions.reserve();
  let created: LocalSession | undefined;
  let reserved = true;
  try {
    if (a.signal?.aborted) throw new ClientGoneError();
    const deadlines = ctx.sessions.deadlines;
    const init = ctx.connector.initialize({
      sessionId: a.sessionId,
      req: a.req,
      raw: a.raw,
      message: a.init,
      ...(a.signal ? { signal: a.signal } : {}),
      ...(deadlines ? { deadline: deadlines.of(a.req) } : {}),
    });
    const outcome = deadlines
      ? await deadlines.race(a.req, init, 'the upstream initialize', (late) => void late.session?.close('failed').catch(() => undefined)).catch((err: unknown) => {
          // Past the deadline: the room stays reserved until the upstream initialize ends.
          reserved = false;
          void init.catch(() => undefined).finally(() => ctx.sessions.release());
          throw err;
        })
      : await init;
    const response = outcome.response;
    if (!outcome.session || !response || !('result' in response) || a.signal?.aborted) {
      await outcome.session?.close('failed');
      if (a.signal?.aborted) throw new ClientGoneError();
      return outcome;
    }
    const protocolVersion = negotiatedProtocolVersion(response.result, a.init.params);
    let record;
    try {
      record = await ctx.store.create({
        id: a.sessionId,
        principal: a.principal,
        protocolVersion,
        initializeParams: a.init.params ?? {},
        ...(a.owner !== undefined ? { owner: a.owner } : {}),
      });
    } catch (err) {
      await outcome.session.close('failed');
      throw err;
    }
    if (a.signal?.aborted) {
      await outcome.session.close('failed');
      await ctx.store.delete(a.sessionId).catch(() => undefined);
      throw new ClientGoneError();
    }
    created = ctx.sessions.adopt(record, outcome.session);
    ctx.metrics.sessionsCreated.inc();
    ctx.logger.debug({ session: sessionFingerprint(a.sessionId), protocolVersion }, 'session created');
    return { ...outcome, created };
  } finally {
    if (!created && reserved) ctx.sessions.release();
  }
}

/** The client went away before its `initialize` was answered: there is nobody to answer. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client went away before initialize was answered');
    this.name = 'ClientGoneError';
  }
}
