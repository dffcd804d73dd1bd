/**
 * Protocol constants of the legacy (sessionful) MCP era that the runtime and the proxy rely on.
 * Versions follow `SUPPORTED_PROTOCOL_VERSIONS` of `@modelcontextprotocol/sdk` 1.32.2.
 */

/** Protocol versions accepted in `MCP-Protocol-Version` (spec 2025-06-18+ §Protocol Version Header). */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly string[] = [
  '2025-11-25',
  '2025-06-18',
  '2025-03-26',
  '2024-11-05',
  '2024-10-07',
];

/**
 * The version a server assumes when a client sends no `MCP-Protocol-Version` header and nothing else
 * identifies it (spec 2025-06-18 §Protocol Version Header).
 */
export const DEFAULT_NEGOTIATED_PROTOCOL_VERSION = '2025-03-26';

/**
 * The protocol version a session negotiated (spec §Lifecycle, version negotiation): the server's
 * `InitializeResult.protocolVersion`; else the version the client asked for; else
 * {@link DEFAULT_NEGOTIATED_PROTOCOL_VERSION}.
 */
export function negotiatedProtocolVersion(result: Record<string, unknown>, initializeParams: Record<string, unknown> | undefined): string {
  if (typeof result.protocolVersion === 'string') return result.protocolVersion;
  return typeof initializeParams?.protocolVersion === 'string' ? initializeParams.protocolVersion : DEFAULT_NEGOTIATED_PROTOCOL_VERSION;
}

/**
 * Whether JSON-RPC batches (a POST body that is an array) are allowed for a negotiated version.
 * Batching exists in 2025-03-26 and earlier and was removed in 2025-06-18.
 */
export function allowsBatches(protocolVersion: string): boolean {
  // ISO dates compare lexically.
  return protocolVersion <= '2025-03-26';
}

/** Session id header, lower-case as Node exposes it (spec: `Mcp-Session-Id`; 2025-11-25 writes `MCP-Session-Id`). */
export const SESSION_ID_HEADER = 'mcp-session-id';
/** Protocol version header (spec 2025-06-18+). */
export const PROTOCOL_VERSION_HEADER = 'mcp-protocol-version';
/** SSE resumption header (spec §Resumability and Redelivery). */
export const LAST_EVENT_ID_HEADER = 'last-event-id';

/**
 * Prefix of every JSON-RPC id the runtime itself sends to an upstream (handshake replay, state sync).
 * Client requests using ids with this prefix are refused, so the two can never collide.
 */
export const RUNTIME_ID_PREFIX = 'mcp-migrate:';

/** Methods whose effect lives in the upstream session and which the runtime records for replay. */
export const HANDSHAKE_METHODS = {
  initialize: 'initialize',
  initialized: 'notifications/initialized',
  setLevel: 'logging/setLevel',
  subscribe: 'resources/subscribe',
  unsubscribe: 'resources/unsubscribe',
} as const;
