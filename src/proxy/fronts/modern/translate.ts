import { ErrorCode, type JsonRpcErrorObject, type JsonRpcNotification, type JsonRpcRequest } from '@mcp-migrate/runtime';
import type { ModernEnvelope } from './classify.js';
import { CACHEABLE_METHODS, INPUT_REQUEST_CAPABILITY, LIST_CHANGED_FILTER, LOG_LEVELS, META, MODERN_PROTOCOL_VERSIONS, RESOURCE_UPDATED } from './protocol.js';
import type { InputRequest } from './request-state.js';

/**
 * Translation between what a legacy (2025-11-25) upstream session says and what a 2026-07-28 client
 * expects. Pure functions; no I/O.
 */

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What the front knows of the upstream, from the `InitializeResult` of a pooled session. */
export interface UpstreamInfo {
  capabilities: Record<string, unknown>;
  serverInfo?: Record<string, unknown>;
  instructions?: string;
}

/** Reads an `InitializeResult`. */
export function upstreamInfo(initializeResult: Record<string, unknown>): UpstreamInfo {
  const caps = isObject(initializeResult.capabilities) ? initializeResult.capabilities : {};
  return {
    capabilities: caps,
    ...(isObject(initializeResult.serverInfo) ? { serverInfo: initializeResult.serverInfo } : {}),
    ...(typeof initializeResult.instructions === 'string' ? { instructions: initializeResult.instructions } : {}),
  };
}

/**
 * Server capabilities as a modern server advertises them: the upstream's, without the 2025-11-25
 * experimental `tasks` capability (2026-07-28 moved tasks to the `io.modelcontextprotocol/tasks`
 * extension with another wire shape, which the front does not translate).
 */
export function modernServerCapabilities(caps: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(caps)) if (k !== 'tasks') out[k] = v;
  return out;
}

/** Caching hints the front puts on cacheable results (spec `server/utilities/caching.mdx`). */
export interface CacheHints {
  /** Freshness hint, ms (≥ 0). */
  ttlMs: number;
  /** `private`: results may differ by principal (the proxy pools upstream sessions per principal). */
  cacheScope: 'public' | 'private';
}

export const DEFAULT_CACHE_HINTS: CacheHints = { ttlMs: 0, cacheScope: 'private' };

/**
 * The `server/discover` result (spec `server/discover.mdx`), synthesized from the upstream's
 * `InitializeResult`: supported modern versions, the upstream's capabilities ({@link modernServerCapabilities}),
 * its instructions, `serverInfo` in `_meta`, caching hints.
 */
export function discoverResult(info: UpstreamInfo, hints: CacheHints = DEFAULT_CACHE_HINTS): Record<string, unknown> {
  return {
    resultType: 'complete',
    supportedVersions: [...MODERN_PROTOCOL_VERSIONS],
    capabilities: modernServerCapabilities(info.capabilities),
    ...(info.instructions !== undefined ? { instructions: info.instructions } : {}),
    ttlMs: hints.ttlMs,
    cacheScope: hints.cacheScope,
    ...(info.serverInfo ? { _meta: { [META.serverInfo]: info.serverInfo } } : {}),
  };
}

/**
 * A legacy result as a 2026-07-28 result: `resultType: "complete"` (required on every result,
 * `basic/index.mdx` §ResultType), caching hints on cacheable methods unless the upstream set them, and
 * `serverInfo` in `_meta` (SHOULD). The input is not modified.
 */
export function modernResult(
  method: string,
  result: Record<string, unknown>,
  info: UpstreamInfo | undefined,
  hints: CacheHints = DEFAULT_CACHE_HINTS,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...result };
  if (typeof out.resultType !== 'string') out.resultType = 'complete';
  if (CACHEABLE_METHODS.has(method) && out.resultType === 'complete') {
    if (typeof out.ttlMs !== 'number') out.ttlMs = hints.ttlMs;
    if (out.cacheScope !== 'public' && out.cacheScope !== 'private') out.cacheScope = hints.cacheScope;
  }
  if (info?.serverInfo) {
    const meta = isObject(out._meta) ? { ...out._meta } : {};
    if (meta[META.serverInfo] === undefined) meta[META.serverInfo] = info.serverInfo;
    out._meta = meta;
  }
  return out;
}

/**
 * A legacy error as a 2026-07-28 error: `resources/read`'s "resource not found" `-32002` becomes `-32602`
 * with `data.uri` (2026-07-28 forbids emitting -32002; `server/resources.mdx` §Error Handling).
 */
export function modernError(method: string, params: Record<string, unknown> | undefined, error: JsonRpcErrorObject): JsonRpcErrorObject {
  if (method === 'resources/read' && (error.code === -32002 || error.code === ErrorCode.InvalidParams)) {
    const uri = params?.uri;
    const data = isObject(error.data) ? { ...error.data } : {};
    if (typeof uri === 'string' && data.uri === undefined) data.uri = uri;
    return { code: ErrorCode.InvalidParams, message: error.message, data };
  }
  return error;
}

/**
 * Whether a server notification that arrived during a request goes on that request's response stream,
 * and in what form. `notifications/progress` passes (with the progress token the client sent, which may
 * differ from the one forwarded upstream); `notifications/message` passes only if the request set
 * `io.modelcontextprotocol/logLevel` and the message is at least that severe (2026-07-28 changelog 5:
 * "servers MUST NOT emit notifications/message for requests that did not include this field"). Everything
 * else (list changes, resource updates) belongs on `subscriptions/listen` streams: `undefined`.
 */
export function requestNotification(
  n: JsonRpcNotification,
  envelope: Pick<ModernEnvelope, 'logLevel'>,
  clientProgressToken: unknown,
): JsonRpcNotification | undefined {
  if (n.method === 'notifications/progress') {
    if (clientProgressToken === undefined) return undefined;
    return { ...n, params: { ...n.params, progressToken: clientProgressToken } };
  }
  if (n.method === 'notifications/message') {
    if (envelope.logLevel === undefined) return undefined;
    const level = typeof n.params?.level === 'string' ? LOG_LEVELS.indexOf(n.params.level) : -1;
    return level >= LOG_LEVELS.indexOf(envelope.logLevel) ? n : undefined;
  }
  return undefined;
}

/**
 * The capability a server-to-client request needs from the client, as a `ClientCapabilities` object for
 * `MissingRequiredClientCapabilityError.data.requiredCapabilities`, or `undefined` if the request's
 * capabilities cover it. URL-mode elicitation needs `elicitation.url`; form mode needs `elicitation`
 * (an empty object declares form mode).
 */
export function missingCapability(request: Pick<JsonRpcRequest, 'method' | 'params'>, caps: Record<string, unknown>): Record<string, unknown> | undefined {
  const needed = INPUT_REQUEST_CAPABILITY[request.method];
  if (needed === undefined) return undefined;
  const declared = caps[needed];
  if (!isObject(declared)) return { [needed]: {} };
  if (needed === 'elicitation' && request.params?.mode === 'url' && !isObject(declared.url)) return { elicitation: { url: {} } };
  return undefined;
}

/**
 * A server-to-client request as an `inputRequests` entry (`mrtr.mdx` §InputRequests): method and params,
 * without the 2025-11-25 URL-elicitation `elicitationId` (removed in 2026-07-28, changelog minor 11).
 */
export function inputRequestOf(request: Pick<JsonRpcRequest, 'method' | 'params'>): InputRequest {
  if (!request.params) return { method: request.method };
  const params = { ...request.params };
  if (request.method === 'elicitation/create') delete params.elicitationId;
  return { method: request.method, params };
}

/** A `subscriptions/listen` notification filter (`basic/patterns/subscriptions.mdx` §Notification Filter). */
export interface ListenFilter {
  toolsListChanged?: boolean;
  promptsListChanged?: boolean;
  resourcesListChanged?: boolean;
  resourceSubscriptions?: string[];
}

/** Parses the `notifications` param of `subscriptions/listen`; a string describing the problem if invalid. */
export function readListenFilter(params: Record<string, unknown> | undefined): ListenFilter | string {
  const raw = params?.notifications;
  if (raw === undefined) return {};
  if (!isObject(raw)) return 'params.notifications must be an object';
  const out: ListenFilter = {};
  for (const key of Object.keys(LIST_CHANGED_FILTER) as (keyof typeof LIST_CHANGED_FILTER & keyof ListenFilter)[]) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') return `params.notifications.${key} must be a boolean`;
    (out as Record<string, boolean>)[key] = v;
  }
  const subs = raw.resourceSubscriptions;
  if (subs !== undefined) {
    if (!Array.isArray(subs) || subs.some((u) => typeof u !== 'string')) return 'params.notifications.resourceSubscriptions must be an array of strings';
    out.resourceSubscriptions = [...new Set(subs as string[])];
  }
  return out;
}

/**
 * The part of a filter the front honours (the acknowledgement's `notifications`): each list-change type
 * the upstream advertises `listChanged` for, and resource subscriptions if it advertises
 * `resources.subscribe` (at most `maxResources` URIs).
 */
export function acknowledgedFilter(filter: ListenFilter, caps: Record<string, unknown>, maxResources = 256): ListenFilter {
  const out: ListenFilter = {};
  for (const [key, spec] of Object.entries(LIST_CHANGED_FILTER)) {
    const cap = caps[spec.capability];
    if ((filter as Record<string, unknown>)[key] === true && isObject(cap) && cap.listChanged === true) (out as Record<string, boolean>)[key] = true;
  }
  const resources = caps.resources;
  if (filter.resourceSubscriptions && filter.resourceSubscriptions.length > 0 && isObject(resources) && resources.subscribe === true) {
    out.resourceSubscriptions = filter.resourceSubscriptions.slice(0, maxResources);
  }
  return out;
}

/** Whether a server notification matches an acknowledged filter. */
export function matchesFilter(n: JsonRpcNotification, filter: ListenFilter): boolean {
  for (const [key, spec] of Object.entries(LIST_CHANGED_FILTER)) {
    if (n.method === spec.notification) return (filter as Record<string, unknown>)[key] === true;
  }
  if (n.method === RESOURCE_UPDATED) {
    const uri = n.params?.uri;
    return typeof uri === 'string' && (filter.resourceSubscriptions?.includes(uri) ?? false);
  }
  return false;
}

/** Whether the upstream advertises anything a `subscriptions/listen` stream could deliver. */
export function servesSubscriptions(caps: Record<string, unknown>): boolean {
  const has = (name: string, flag: string) => isObject(caps[name]) && (caps[name] as Record<string, unknown>)[flag] === true;
  return has('tools', 'listChanged') || has('prompts', 'listChanged') || has('resources', 'listChanged') || has('resources', 'subscribe');
}

/** A notification as sent on a `subscriptions/listen` stream: tagged with the subscription id in `_meta`. */
export function tagSubscription(n: JsonRpcNotification, subscriptionId: unknown): JsonRpcNotification {
  const params = n.params ? { ...n.params } : {};
  params._meta = { ...(isObject(params._meta) ? params._meta : {}), [META.subscriptionId]: subscriptionId };
  return { jsonrpc: '2.0', method: n.method, params };
}
