import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ErrorCode, errorResponse, type JsonRpcErrorResponse, type JsonRpcId } from './jsonrpc.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from './protocol.js';
import { SessionStoreUnavailableError } from './session-store.js';

/**
 * The one error table of the Streamable HTTP, legacy HTTP+SSE and 2026-07-28 fronts of `mcp-migrate
 * proxy` and of `SessionTransportRegistry` (apply's generated code): one HTTP status, JSON-RPC code and
 * message per error, whichever front or replica meets it. Codes follow SDK 1.x's Streamable HTTP
 * transport (`-32000` for transport errors, `-32001` "Session not found" with 404, spec §Session
 * Management: the client must initialize again) and JSON-RPC 2.0 (`-32700`, `-32600`, `-32603`).
 */
export interface ErrorAnswer {
  /** HTTP status of the whole answer (when nothing was written yet). */
  readonly status: number;
  /** JSON-RPC `error.code`. */
  readonly code: number;
  /** JSON-RPC `error.message`; a detail, if any, follows after `": "`. */
  readonly message: string;
  /** Extra response headers (`Retry-After` on the retryable 503s). */
  readonly headers?: Readonly<OutgoingHttpHeaders>;
}

const RETRY = { 'retry-after': '1' } as const;

/** Every error the fronts answer, by kind. */
export const ERROR_ANSWERS = {
  parseError: { status: 400, code: ErrorCode.ParseError, message: 'Parse error: Invalid JSON' },
  invalidRequest: { status: 400, code: ErrorCode.InvalidRequest, message: 'Invalid Request' },
  sessionRequired: { status: 400, code: ErrorCode.ServerError, message: 'Bad Request: Mcp-Session-Id header is required' },
  badRequest: { status: 400, code: ErrorCode.ServerError, message: 'Bad Request' },
  /** Detail: see {@link unsupportedVersionDetail}. */
  unsupportedVersion: { status: 400, code: ErrorCode.ServerError, message: 'Bad Request: Unsupported protocol version' },
  forbiddenOrigin: { status: 403, code: ErrorCode.ServerError, message: 'Forbidden: Origin not allowed' },
  notFound: { status: 404, code: ErrorCode.ServerError, message: 'Not Found' },
  sessionNotFound: { status: 404, code: ErrorCode.SessionNotFound, message: 'Session not found' },
  methodNotAllowed: { status: 405, code: ErrorCode.ServerError, message: 'Method Not Allowed' },
  notAcceptable: { status: 406, code: ErrorCode.ServerError, message: 'Not Acceptable: Client must accept text/event-stream' },
  payloadTooLarge: { status: 413, code: ErrorCode.ServerError, message: 'Payload Too Large', headers: { connection: 'close' } },
  unsupportedMediaType: { status: 415, code: ErrorCode.ServerError, message: 'Unsupported Media Type: Content-Type must be application/json' },
  misdirected: { status: 421, code: ErrorCode.ServerError, message: 'Misdirected Request' },
  internal: { status: 500, code: ErrorCode.InternalError, message: 'Internal error' },
  badGateway: { status: 502, code: ErrorCode.InternalError, message: 'Bad Gateway' },
  storeUnavailable: { status: 503, code: ErrorCode.ServerError, message: 'Service Unavailable: session store unavailable', headers: RETRY },
  capacity: { status: 503, code: ErrorCode.ServerError, message: 'Service Unavailable: too many sessions on this replica', headers: RETRY },
  ownerChanging: { status: 503, code: ErrorCode.ServerError, message: 'Service Unavailable: the owner of this session keeps changing', headers: RETRY },
  ownerUnreachable: { status: 503, code: ErrorCode.ServerError, message: 'Service Unavailable: the replica serving this session does not answer', headers: RETRY },
  draining: { status: 503, code: ErrorCode.ServerError, message: 'Service Unavailable: this replica is shutting down', headers: RETRY },
  gatewayTimeout: { status: 504, code: ErrorCode.InternalError, message: 'Gateway Timeout' },
} as const satisfies Record<string, ErrorAnswer>;

export type ErrorKind = keyof typeof ERROR_ANSWERS;

/** The detail of `unsupportedVersion`: the version received and the supported ones. */
export function unsupportedVersionDetail(version: string): string {
  return `${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`;
}

/** An error that says which row of {@link ERROR_ANSWERS} answers it (the proxy's upstream, capacity and session errors). */
export interface AnsweredError extends Error {
  readonly answer: ErrorKind;
}

/** The kind of a thrown error: `storeUnavailable` for {@link SessionStoreUnavailableError}, its own `answer` for an {@link AnsweredError}, else `internal`. */
export function errorKindOf(err: unknown): ErrorKind {
  if (err instanceof SessionStoreUnavailableError) return 'storeUnavailable';
  const answer = (err as Partial<AnsweredError> | null)?.answer;
  return typeof answer === 'string' && Object.hasOwn(ERROR_ANSWERS, answer) ? answer : 'internal';
}

/**
 * The JSON-RPC error response for `kind`: its message, then `": " + detail` when a detail is given (an
 * upstream's failure, a rejected version). For a thrown error use {@link errorBodyOf}.
 */
export function errorBody(kind: ErrorKind, id: JsonRpcId | null = null, detail?: string): JsonRpcErrorResponse {
  const a: ErrorAnswer = ERROR_ANSWERS[kind];
  return errorResponse(id, a.code, detail ? `${a.message}: ${detail}` : a.message);
}

/** {@link errorBody} for a thrown error: the gateway errors carry the upstream's failure as detail; others none. */
export function errorBodyOf(err: unknown, id: JsonRpcId | null = null): JsonRpcErrorResponse {
  const kind = errorKindOf(err);
  return errorBody(kind, id, detailOf(kind, err));
}

/** The detail a thrown error adds to its message: only the gateway errors (502, 504) say what failed. */
export function detailOf(kind: ErrorKind, err: unknown): string | undefined {
  return kind === 'badGateway' || kind === 'gatewayTimeout' ? (err as Error).message : undefined;
}

/**
 * Writes `kind` as the whole HTTP answer on a Node response: its status, `application/json`, its headers
 * plus `headers`. If the head was already sent, ends the response instead (the answer cannot change
 * any more). The shape SDK 1.x servers use: `{"jsonrpc":"2.0","id":null,"error":{…}}`.
 */
export function writeErrorAnswer(
  res: ServerResponse,
  kind: ErrorKind,
  options: { id?: JsonRpcId | null; detail?: string | undefined; headers?: OutgoingHttpHeaders; data?: unknown } = {},
): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const a: ErrorAnswer = ERROR_ANSWERS[kind];
  const body = errorBody(kind, options.id ?? null, options.detail);
  if (options.data !== undefined) body.error.data = options.data;
  const text = JSON.stringify(body);
  res.writeHead(a.status, { ...a.headers, ...options.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * {@link writeErrorAnswer} for a server's own HTTP routes, which browsers open (a URL-mode elicitation's
 * page, the form it posts): the same status, message and headers, as a short HTML page when the
 * request's `Accept` names `text/html`, else as the JSON-RPC JSON.
 */
export function writeErrorPage(req: IncomingMessage, res: ServerResponse, kind: ErrorKind, detail?: string, headers?: OutgoingHttpHeaders): void {
  if (!String(req.headers.accept ?? '').includes('text/html') || res.headersSent) {
    writeErrorAnswer(res, kind, { detail, ...(headers ? { headers } : {}) });
    return;
  }
  const a: ErrorAnswer = ERROR_ANSWERS[kind];
  const text = `<!DOCTYPE html>\n<html><head><title>${a.status} ${escapeHtml(a.message)}</title></head><body><h1>${escapeHtml(a.message)}</h1>${detail ? `<p>${escapeHtml(detail)}</p>` : ''}</body></html>\n`;
  res.writeHead(a.status, { ...a.headers, ...headers, 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Web-standard variant of {@link writeErrorAnswer}: the answer as a `Response`. */
export function errorAnswerResponse(kind: ErrorKind, id: JsonRpcId | null = null, detail?: string): Response {
  const a: ErrorAnswer = ERROR_ANSWERS[kind];
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(a.headers ?? {})) headers[k] = String(v);
  return new Response(JSON.stringify(errorBody(kind, id, detail)), { status: a.status, headers });
}
