/**
 * Restoring a session of a web-standard server (`Request` → `Response`: hono, Cloudflare Workers,
 * Deno, Bun) through the server's own entry point.
 *
 * A web-standard MCP server's request handling is one function from a `Request` to a `Response`. To
 * rebuild a session on a replica that has never seen it, `SessionTransportRegistry` hands that
 * function the stored `initialize` as a new request (same URL and headers as the client's request,
 * so routing and authentication middleware see what they saw; no `Mcp-Session-Id`), while its
 * wrapped `sessionIdGenerator` returns the stored id. The server's own session-opening code then
 * creates the transport, connects its MCP server and registers the transport under the stored id;
 * the registry replays the rest of the handshake through the same entry point with the session's id,
 * so a transport whose `handleRequest` takes a framework's context (@hono/mcp) is served by the
 * server's own route (docs/apply.md).
 */
import { SESSION_ID_HEADER, LAST_EVENT_ID_HEADER } from './protocol.js';
import type { JsonRpcNotification, JsonRpcRequest } from './jsonrpc.js';

/**
 * The server's web-standard entry point: what `app.fetch` (hono), a Worker's `fetch(request, env, ctx)`
 * or `Bun.serve({ fetch })` calls. `rest` are the extra arguments the platform passed with the
 * client's request (a Worker's `env` and `ctx`), handed on unchanged.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WebEntry = (request: Request, ...rest: any[]) => Promise<Response> | Response;

/** Request headers that belong to the client's request only, not to a replayed `initialize`. */
const DROPPED = new Set([SESSION_ID_HEADER, LAST_EVENT_ID_HEADER, 'mcp-protocol-version', 'content-length', 'content-type', 'accept', 'transfer-encoding']);

/**
 * The stored `initialize` as a `POST` to the URL of the client's request, with the client's other
 * headers (an `Authorization` header among them), `Content-Type: application/json` and the
 * Streamable HTTP `Accept` (spec §Sending Messages to the Server).
 */
export function replayInitializeRequest(incoming: Request, initialize: JsonRpcRequest): Request {
  return new Request(incoming.url, { method: 'POST', headers: replayHeaders(incoming), body: JSON.stringify(initialize) });
}

/**
 * A later handshake message (`notifications/initialized`, `logging/setLevel`, a subscription) as a
 * `POST` to the URL of the client's request, with the client's other headers, the session's
 * `Mcp-Session-Id` and its negotiated `MCP-Protocol-Version` (spec §Session Management, §Protocol
 * Version Header).
 */
export function replaySessionRequest(incoming: Request, message: JsonRpcRequest | JsonRpcNotification, sessionId: string, protocolVersion: string): Request {
  const headers = replayHeaders(incoming);
  headers.set(SESSION_ID_HEADER, sessionId);
  headers.set('mcp-protocol-version', protocolVersion);
  return new Request(incoming.url, { method: 'POST', headers, body: JSON.stringify(message) });
}

function replayHeaders(incoming: Request): Headers {
  const headers = new Headers();
  incoming.headers.forEach((value, name) => {
    if (!DROPPED.has(name.toLowerCase())) headers.set(name, value);
  });
  headers.set('content-type', 'application/json');
  headers.set('accept', 'application/json, text/event-stream');
  return headers;
}
