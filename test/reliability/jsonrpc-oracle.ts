/**
 * An independent oracle for "is this parsed JSON value a valid JSON-RPC 2.0 message as MCP uses it",
 * written from the JSON-RPC 2.0 specification (https://www.jsonrpc.org/specification §4, §5) plus
 * MCP's one restriction (request ids are strings or numbers, never null), not from the proxy's code.
 *
 * - Request: `jsonrpc: "2.0"`, `method` a string, `params` absent or a structured value (object or
 *   array), `id` a string or a finite number.
 * - Notification: the same without `id`.
 * - Response: no `method`; `id` a string or a finite number (or null for an error response); exactly
 *   one of `result` and `error`; `error` an object with an integer `code` and a string `message`.
 *
 * `strictKind` follows the specification. `proxyKind` is the documented, slightly looser rule of
 * `mcp-migrate proxy` (docs/proxy.md "Valid JSON that is not JSON-RPC 2.0 → -32600"): it checks
 * `error.code` is a number but does not insist on an integer code, a string `message`, or on
 * `result` and `error` not both being present. Those differences only matter for responses, which
 * never create a session; the fuzz test counts them.
 */
export type Kind = 'request' | 'notification' | 'response';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): boolean => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

export function strictKind(v: unknown): Kind | undefined {
  if (!isObject(v) || v.jsonrpc !== '2.0') return undefined;
  if ('method' in v) {
    if (typeof v.method !== 'string') return undefined;
    if ('params' in v && v.params !== undefined && typeof v.params !== 'object') return undefined;
    if ('params' in v && v.params === null) return undefined;
    if (!('id' in v)) return 'notification';
    return isId(v.id) ? 'request' : undefined;
  }
  const hasResult = 'result' in v;
  const hasError = 'error' in v;
  if (hasResult === hasError) return undefined;
  if (hasError) {
    const e = v.error;
    if (!isObject(e) || !Number.isInteger(e.code) || typeof e.message !== 'string') return undefined;
    return isId(v.id) || v.id === null ? 'response' : undefined;
  }
  return isId(v.id) ? 'response' : undefined;
}

export function proxyKind(v: unknown): Kind | undefined {
  if (!isObject(v) || v.jsonrpc !== '2.0') return undefined;
  if (typeof v.method === 'string') {
    if (v.params !== undefined && (typeof v.params !== 'object' || v.params === null)) return undefined;
    if (!('id' in v)) return 'notification';
    return isId(v.id) ? 'request' : undefined;
  }
  if ('error' in v) {
    const e = v.error;
    if (!isObject(e) || typeof e.code !== 'number') return undefined;
    return isId(v.id) || v.id === null ? 'response' : undefined;
  }
  if ('result' in v) return isId(v.id) ? 'response' : undefined;
  return undefined;
}

/** A body (already parsed) is acceptable iff it is one message or a non-empty array of messages. */
export function bodyValid(v: unknown, kind: (m: unknown) => Kind | undefined): boolean {
  if (Array.isArray(v)) return v.length > 0 && v.every((m) => kind(m) !== undefined);
  return kind(v) !== undefined;
}
