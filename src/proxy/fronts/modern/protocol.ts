/**
 * Constants of the modern (stateless) MCP era, protocol revision 2026-07-28, as the proxy's modern front
 * uses them. Sources: spec 2026-07-28 `basic/index.mdx` (§Error Codes, §`_meta` per-request protocol
 * fields), `basic/versioning.mdx`, `basic/transports/streamable-http.mdx` (§Request Metadata,
 * §Server Validation), `server/utilities/caching.mdx`, `basic/patterns/{mrtr,subscriptions}.mdx`.
 */

/** Modern protocol revisions the front serves, newest first (`server/discover` `supportedVersions`). */
export const MODERN_PROTOCOL_VERSIONS: readonly string[] = ['2026-07-28'];

/**
 * Whether a protocol version string names the modern era (2026-07-28 or later). Revision identifiers are
 * ISO dates, so they order lexically; a string that is not a date and sorts after the first modern revision
 * (e.g. `v999.0.0`) is treated as a modern claim too, and answered with `UnsupportedProtocolVersion`.
 */
export function isModernVersion(version: string): boolean {
  return version >= '2026-07-28';
}

/**
 * The legacy revision the proxy speaks to the (sessionful) upstream on behalf of modern clients: the last
 * revision with `initialize` and sessions.
 */
export const UPSTREAM_PROTOCOL_VERSION = '2025-11-25';

/** Reserved `_meta` keys (spec 2026-07-28 `basic/index.mdx` §Reserved keys). */
export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;

/** Error codes the MCP specification reserves (-32020…-32099), spec 2026-07-28 `basic/index.mdx` §Error Codes. */
export const ModernErrorCode = {
  /** The HTTP headers do not match the body, or a required header is missing or malformed. HTTP 400. */
  HeaderMismatch: -32020,
  /** Processing needs a client capability the request did not declare. HTTP 400, `data.requiredCapabilities`. */
  MissingRequiredClientCapability: -32021,
  /** The requested protocol version is not served. HTTP 400, `data.supported`, `data.requested`. */
  UnsupportedProtocolVersion: -32022,
} as const;

/** Request headers of the Streamable HTTP transport in 2026-07-28 (lower-case, as Node exposes them). */
export const MCP_METHOD_HEADER = 'mcp-method';
export const MCP_NAME_HEADER = 'mcp-name';

/** Methods whose `Mcp-Name` header mirrors a body field (§Standard Request Headers). */
export const MCP_NAME_SOURCE: Readonly<Record<string, 'name' | 'uri'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
};

/** `LoggingLevel` values, least to most severe (RFC 5424 severities as MCP names them). */
export const LOG_LEVELS: readonly string[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/**
 * Client requests the modern front serves, with the server capability the upstream must advertise for each
 * (`undefined`: always served). Anything else — including the methods 2026-07-28 removed (`initialize`,
 * `ping`, `logging/setLevel`, `resources/subscribe`, `resources/unsubscribe`) — gets HTTP 404 with -32601.
 */
export const MODERN_METHODS: Readonly<Record<string, 'tools' | 'resources' | 'prompts' | 'completions' | undefined>> = {
  'server/discover': undefined,
  'subscriptions/listen': undefined,
  'tools/list': 'tools',
  'tools/call': 'tools',
  'resources/list': 'resources',
  'resources/read': 'resources',
  'resources/templates/list': 'resources',
  'prompts/list': 'prompts',
  'prompts/get': 'prompts',
  'completion/complete': 'completions',
};

/** Requests that may be answered with an `InputRequiredResult` (spec `mrtr.mdx` §Supported Requests). */
export const MRTR_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/**
 * Results that MUST carry `ttlMs` and `cacheScope` when `resultType` is `complete`
 * (spec `server/utilities/caching.mdx` §Cacheable Results).
 */
export const CACHEABLE_METHODS: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/** Server-to-client requests that become `inputRequests` entries, with the client capability each needs. */
export const INPUT_REQUEST_CAPABILITY: Readonly<Record<string, 'elicitation' | 'sampling' | 'roots'>> = {
  'elicitation/create': 'elicitation',
  'sampling/createMessage': 'sampling',
  'roots/list': 'roots',
};

/** Change notifications a `subscriptions/listen` filter can opt into, keyed by the filter field. */
export const LIST_CHANGED_FILTER: Readonly<Record<string, { notification: string; capability: 'tools' | 'prompts' | 'resources' }>> = {
  toolsListChanged: { notification: 'notifications/tools/list_changed', capability: 'tools' },
  promptsListChanged: { notification: 'notifications/prompts/list_changed', capability: 'prompts' },
  resourcesListChanged: { notification: 'notifications/resources/list_changed', capability: 'resources' },
};

export const SUBSCRIPTION_ACKNOWLEDGED = 'notifications/subscriptions/acknowledged';
export const RESOURCE_UPDATED = 'notifications/resources/updated';
