import type { IncomingHttpHeaders } from 'node:http';
import { classifyMessage, ErrorCode, type JsonRpcErrorObject, type JsonRpcId, type JsonRpcNotification, type JsonRpcRequest } from '@mcp-migrate/runtime';
import { PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER } from '@mcp-migrate/runtime';
import { headerValue } from '../../http/util.js';
import {
  isModernVersion,
  LOG_LEVELS,
  MCP_METHOD_HEADER,
  MCP_NAME_HEADER,
  MCP_NAME_SOURCE,
  META,
  MODERN_PROTOCOL_VERSIONS,
  ModernErrorCode,
} from './protocol.js';

/** The per-request protocol fields of a modern request's `params._meta` (spec 2026-07-28 `basic/index.mdx`). */
export interface ModernEnvelope {
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo?: Record<string, unknown>;
  logLevel?: string;
}

/**
 * How the proxy serves one POST on the dual-era endpoint:
 * - `legacy`: the sessionful Streamable HTTP path (2025-03-26 … 2025-11-25), unchanged;
 * - `modern`: a 2026-07-28 request that passed the transport's validation ladder;
 * - `modern-notification`: a 2026-07-28 notification (the revision defines none over HTTP; accepted with 202);
 * - `reject`: a modern request that failed validation, with the exact HTTP status and JSON-RPC error to send.
 */
export type EraDecision =
  | { era: 'legacy' }
  | { era: 'modern'; message: JsonRpcRequest; envelope: ModernEnvelope }
  | { era: 'modern-notification'; message: JsonRpcNotification }
  | { era: 'reject'; status: number; id: JsonRpcId | null; error: JsonRpcErrorObject };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `params._meta` when it is an object. */
function metaOf(params: unknown): Record<string, unknown> | undefined {
  if (!isObject(params)) return undefined;
  const meta = params._meta;
  return isObject(meta) ? meta : undefined;
}

/** Whether a message's `params._meta` claims the per-request envelope (carries the protocol-version key). */
export function hasEnvelopeClaim(params: unknown): boolean {
  const meta = metaOf(params);
  return meta !== undefined && Object.hasOwn(meta, META.protocolVersion);
}

function reject(status: number, id: JsonRpcId | null, code: number, message: string, data?: unknown): EraDecision {
  return { era: 'reject', status, id, error: data === undefined ? { code, message } : { code, message, data } };
}

/**
 * Validates the envelope of a request. Returns the envelope, or the names of missing keys and the
 * problems found (→ -32602 with HTTP 400, spec `basic/index.mdx`: "A request missing any required
 * field is malformed; the server MUST reject it with -32602 … the response status MUST be 400").
 */
export function readEnvelope(params: unknown): { envelope: ModernEnvelope } | { problems: string[] } {
  const meta = metaOf(params);
  if (meta === undefined) {
    return { problems: [isObject(params) && params._meta !== undefined ? '_meta must be an object' : 'missing _meta'] };
  }
  const problems: string[] = [];
  const version = meta[META.protocolVersion];
  if (version === undefined) problems.push(`missing _meta ${META.protocolVersion}`);
  else if (typeof version !== 'string' || version.length === 0) problems.push(`_meta ${META.protocolVersion} must be a non-empty string`);
  const caps = meta[META.clientCapabilities];
  if (caps === undefined) problems.push(`missing _meta ${META.clientCapabilities}`);
  else if (!isObject(caps)) problems.push(`_meta ${META.clientCapabilities} must be an object`);
  const info = meta[META.clientInfo];
  if (info !== undefined && (!isObject(info) || typeof info.name !== 'string' || typeof info.version !== 'string')) {
    problems.push(`_meta ${META.clientInfo} must be an object with string name and version`);
  }
  const level = meta[META.logLevel];
  if (level !== undefined && (typeof level !== 'string' || !LOG_LEVELS.includes(level))) {
    problems.push(`_meta ${META.logLevel} must be one of ${LOG_LEVELS.join(', ')}`);
  }
  if (problems.length > 0) return { problems };
  return {
    envelope: {
      protocolVersion: version as string,
      clientCapabilities: caps as Record<string, unknown>,
      ...(info !== undefined ? { clientInfo: info as Record<string, unknown> } : {}),
      ...(level !== undefined ? { logLevel: level as string } : {}),
    },
  };
}

const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes an `Mcp-Name` / `Mcp-Param-*` header value: plain values as they are, `=?base64?…?=` sentinel
 * values as the UTF-8 text they encode (spec `streamable-http.mdx` §Value Encoding). `undefined` for a
 * malformed sentinel (bad Base64 or not UTF-8).
 */
export function decodeHeaderValue(value: string): string | undefined {
  if (!value.startsWith('=?base64?')) return value;
  const m = SENTINEL.exec(value);
  if (!m) return undefined;
  const bytes = Buffer.from(m[1]!, 'base64');
  if (bytes.toString('base64') !== m[1]) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Chooses the era of one POST (spec 2026-07-28 `basic/versioning.mdx` §Backward Compatibility: "A request
 * carrying modern per-request `_meta` is served statelessly … An `initialize` request selects legacy
 * semantics, scoped to … the session (HTTP)") and runs the modern validation ladder
 * (`streamable-http.mdx` §Protocol Version Header, §Standard Request Headers, §Server Validation).
 *
 * Legacy: any request carrying `Mcp-Session-Id` (the session fixed its era), JSON-RPC batches without
 * modern elements, posted responses, `initialize` without a modern claim, and requests or notifications
 * with neither a `_meta` protocol-version claim nor a modern `MCP-Protocol-Version` header.
 * Bodies that are not JSON-RPC are left to the legacy path (which answers 400 -32600).
 *
 * Modern rejections, in this order:
 * 1. envelope invalid (claim present but a required field missing or malformed), or a modern
 *    `MCP-Protocol-Version` header without a claim → 400, -32602;
 * 2. `MCP-Protocol-Version` ≠ `_meta` version, or `Mcp-Method` ≠ `method` → 400, -32020;
 * 3. version not served → 400, -32022 with `data: {supported, requested}`;
 * 4. `MCP-Protocol-Version` or `Mcp-Method` header missing, `Mcp-Name` missing, malformed or ≠ body
 *    (`tools/call`, `prompts/get`: `params.name`; `resources/read`: `params.uri`) → 400, -32020.
 * `initialize` sent with a modern header but without a claim → 400, -32020 (a legacy handshake
 * mislabelled as modern). Error responses carry the request id.
 */
export function classifyPost(headers: IncomingHttpHeaders, body: unknown): EraDecision {
  if (headerValue(headers, SESSION_ID_HEADER) !== undefined) return { era: 'legacy' };
  const headerVersion = headerValue(headers, PROTOCOL_VERSION_HEADER);
  const headerModern = headerVersion !== undefined && isModernVersion(headerVersion);
  if (Array.isArray(body)) {
    const modernElement = body.some((m) => isObject(m) && hasEnvelopeClaim(m.params));
    if (modernElement) {
      return reject(400, null, ErrorCode.InvalidRequest, 'Invalid Request: JSON-RPC batches do not exist in protocol revision 2026-07-28');
    }
    return { era: 'legacy' };
  }
  const kind = classifyMessage(body);
  if (kind === undefined || kind === 'response') return { era: 'legacy' };
  const m = body as JsonRpcRequest | JsonRpcNotification;
  const claim = hasEnvelopeClaim(m.params);
  const methodHeader = headerValue(headers, MCP_METHOD_HEADER);

  if (kind === 'notification') {
    if (!claim && !headerModern) return { era: 'legacy' };
    if (claim) {
      const v = metaOf(m.params)![META.protocolVersion];
      if (headerVersion !== undefined && headerVersion !== v) {
        return reject(400, null, ModernErrorCode.HeaderMismatch, `Header mismatch: MCP-Protocol-Version header ${headerVersion} does not match _meta ${META.protocolVersion} ${String(v)}`);
      }
    }
    if (methodHeader !== undefined && methodHeader !== m.method) {
      return reject(400, null, ModernErrorCode.HeaderMismatch, `Header mismatch: Mcp-Method header ${methodHeader} does not match body method ${m.method}`);
    }
    return { era: 'modern-notification', message: m as JsonRpcNotification };
  }

  const request = m as JsonRpcRequest;
  const id = request.id;
  if (!claim) {
    if (!headerModern) return { era: 'legacy' };
    if (request.method === 'initialize') {
      return reject(400, id, ModernErrorCode.HeaderMismatch, `Header mismatch: an initialize request (legacy handshake) was sent with MCP-Protocol-Version ${headerVersion}`);
    }
    const read = readEnvelope(request.params);
    const problems = 'problems' in read ? read.problems : [`missing _meta ${META.protocolVersion}`];
    return reject(400, id, ErrorCode.InvalidParams, `Invalid params: MCP-Protocol-Version ${headerVersion} needs the per-request _meta fields: ${problems.join('; ')}`, { problems });
  }

  const read = readEnvelope(request.params);
  if ('problems' in read) {
    return reject(400, id, ErrorCode.InvalidParams, `Invalid params: ${read.problems.join('; ')}`, { problems: read.problems });
  }
  const envelope = read.envelope;
  if (headerVersion !== undefined && headerVersion !== envelope.protocolVersion) {
    return reject(
      400,
      id,
      ModernErrorCode.HeaderMismatch,
      `Header mismatch: MCP-Protocol-Version header ${headerVersion} does not match _meta ${META.protocolVersion} ${envelope.protocolVersion}`,
    );
  }
  if (methodHeader !== undefined && methodHeader !== request.method) {
    return reject(400, id, ModernErrorCode.HeaderMismatch, `Header mismatch: Mcp-Method header ${methodHeader} does not match body method ${request.method}`);
  }
  if (!MODERN_PROTOCOL_VERSIONS.includes(envelope.protocolVersion)) {
    return reject(400, id, ModernErrorCode.UnsupportedProtocolVersion, 'Unsupported protocol version', {
      supported: [...MODERN_PROTOCOL_VERSIONS],
      requested: envelope.protocolVersion,
    });
  }
  if (headerVersion === undefined) {
    return reject(400, id, ModernErrorCode.HeaderMismatch, 'Header mismatch: the required MCP-Protocol-Version header is missing');
  }
  if (methodHeader === undefined) {
    return reject(400, id, ModernErrorCode.HeaderMismatch, 'Header mismatch: the required Mcp-Method header is missing');
  }
  const source = Object.hasOwn(MCP_NAME_SOURCE, request.method) ? MCP_NAME_SOURCE[request.method] : undefined;
  if (source !== undefined) {
    const bodyValue = request.params?.[source];
    const nameHeader = headerValue(headers, MCP_NAME_HEADER);
    if (nameHeader === undefined) {
      if (typeof bodyValue === 'string') {
        return reject(400, id, ModernErrorCode.HeaderMismatch, `Header mismatch: the required Mcp-Name header is missing (params.${source} is "${bodyValue}")`);
      }
    } else {
      const decoded = decodeHeaderValue(nameHeader);
      if (decoded === undefined) {
        return reject(400, id, ModernErrorCode.HeaderMismatch, 'Header mismatch: the Mcp-Name header carries a malformed Base64 value');
      }
      if (typeof bodyValue === 'string' && decoded !== bodyValue) {
        return reject(
          400,
          id,
          ModernErrorCode.HeaderMismatch,
          `Header mismatch: Mcp-Name header value '${decoded}' does not match body value '${bodyValue}'`,
        );
      }
    }
  }
  return { era: 'modern', message: request, envelope };
}
