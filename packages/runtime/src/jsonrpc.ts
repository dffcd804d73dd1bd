/**
 * JSON-RPC 2.0 message shapes as MCP uses them (`basic/index.mdx` of every legacy revision), plus the
 * few error codes the runtime and the proxy emit. No schema validation beyond what routing needs:
 * the upstream MCP server validates params.
 */

/** A request id. MCP forbids `null` ids on requests. */
export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcResultResponse {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result: Record<string, unknown>;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcErrorResponse {
  jsonrpc: '2.0';
  /** `null` only when the request id could not be read (parse error, invalid request). */
  id: JsonRpcId | null;
  error: JsonRpcErrorObject;
}

export type JsonRpcResponse = JsonRpcResultResponse | JsonRpcErrorResponse;
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** Error codes. The -327xx/-326xx ones are JSON-RPC 2.0; -32000/-32001 follow the TS SDK's Streamable HTTP transport. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Generic transport-level error ("Bad Request: …", "Service Unavailable: …"), as SDK 1.x uses it. */
  ServerError: -32000,
  /** `Mcp-Session-Id` unknown or terminated (SDK 1.x "Session not found"), sent with HTTP 404. */
  SessionNotFound: -32001,
} as const;

export type MessageKind = 'request' | 'notification' | 'response';

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/**
 * Classifies one parsed JSON value as a JSON-RPC message, or returns `undefined` when it is not a
 * valid JSON-RPC 2.0 message (→ -32600 Invalid Request).
 */
export function classifyMessage(value: unknown): MessageKind | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return undefined;
  if (typeof m.method === 'string') {
    if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null)) return undefined;
    if (!('id' in m)) return 'notification';
    return isId(m.id) ? 'request' : undefined;
  }
  if ('result' in m || 'error' in m) {
    if ('error' in m) {
      const e = m.error as Record<string, unknown> | null;
      if (typeof e !== 'object' || e === null || typeof e.code !== 'number') return undefined;
      return isId(m.id) || m.id === null ? 'response' : undefined;
    }
    return isId(m.id) ? 'response' : undefined;
  }
  return undefined;
}

export function isRequest(m: JsonRpcMessage): m is JsonRpcRequest {
  return 'method' in m && 'id' in m;
}

export function isNotification(m: JsonRpcMessage): m is JsonRpcNotification {
  return 'method' in m && !('id' in m);
}

export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !('method' in m);
}

/** Builds an error response. */
export function errorResponse(
  id: JsonRpcId | null,
  code: number,
  message: string,
  data?: unknown,
): JsonRpcErrorResponse {
  const error: JsonRpcErrorObject = data === undefined ? { code, message } : { code, message, data };
  return { jsonrpc: '2.0', id, error };
}

/** A stable map key for a request id: `1` and `"1"` are different ids. */
export function idKey(id: JsonRpcId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}
