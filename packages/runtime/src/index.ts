/**
 * `mcp-migrate/runtime`: the session runtime shared by `mcp-migrate proxy` and by the code that
 * `mcp-migrate apply` generates. It keeps MCP session state (the handshake and what must be replayed)
 * in a shared store so any replica behind a round-robin load balancer can serve any session.
 *
 * See `docs/runtime.md`.
 */
export type { SessionRecord, NewSessionRecord, SessionChange } from './session-record.js';
export { applyChange, sessionChangeOf } from './session-record.js';
export type { OwnerClaim, SessionStore } from './session-store.js';
export { SessionStoreUnavailableError } from './session-store.js';
export { MemorySessionStore, type MemorySessionStoreOptions } from './memory-store.js';
export {
  RedisSessionStore,
  createRedisClient,
  createRedisClusterClient,
  createRedisStoreClient,
  waitForRedis,
  sessionKey,
  type RedisSessionStoreOptions,
  type RedisClusterClientOptions,
} from './redis-store.js';
export { parseStoreUrl, redact, REDIS_DEFAULT_PORT, type StoreSpec, type RedisNodeAddress } from './redis-url.js';
export {
  SessionIdCodec,
  SESSION_ID_LENGTH,
  MIN_SESSION_SECRET_BYTES,
  sessionFingerprint,
  type VerifiedSessionId,
} from './session-id.js';
export {
  MemoryMessageBus,
  SESSION_EVENTS_CHANNEL,
  parseSessionEvent,
  type MessageBus,
  type SessionEvent,
} from './message-bus.js';
export { RedisMessageBus } from './redis-bus.js';
export {
  STANDALONE_STREAM,
  STREAM_ID_PATTERN,
  MemorySessionStreams,
  SessionStreamGoneError,
  newStreamId,
  type SessionStreams,
  type StreamEvent,
  type StreamFollow,
  type FollowOptions,
  type FollowClosedReason,
  type MemorySessionStreamsOptions,
} from './session-streams.js';
export { RedisSessionStreams, compareEntryIds, type RedisSessionStreamsOptions } from './redis-streams.js';
export {
  serveSessionStream,
  sessionStreamResponse,
  sseMessage,
  ssePriming,
  SSE_HEADERS,
  SSE_KEEPALIVE,
  PRIMING_SINCE,
  type SessionStreamRequest,
} from './standalone-stream.js';
export {
  BusServerRequestRouter,
  newReplicaId,
  isRewrittenId,
  replicaOfRewrittenId,
  rewriteCancellation,
  REPLICA_ID_PATTERN,
  type ServerRequestRouter,
  type BusServerRequestRouterOptions,
} from './server-requests.js';
export {
  MemoryReplicaDirectory,
  MemoryReplicaRegistry,
  RedisReplicaRegistry,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  type ReplicaRegistry,
  type ReplicaInfo,
  type ReplicaRegistryOptions,
} from './replica-registry.js';
export type { SessionEventStore } from './event-store.js';
export { initializedStep, INITIALIZED_NOTIFICATION } from './client-messages.js';
export { toClientMessage, appendStandalone } from './server-messages.js';
export {
  ERROR_ANSWERS,
  errorKindOf,
  errorBody,
  errorBodyOf,
  detailOf,
  unsupportedVersionDetail,
  writeErrorAnswer,
  writeErrorPage,
  errorAnswerResponse,
  type ErrorAnswer,
  type ErrorKind,
  type AnsweredError,
} from './error-answers.js';
export { handshakeReplay, stateSync, runtimeRequestId, isRuntimeId } from './handshake.js';
export * from './jsonrpc.js';
export * from './protocol.js';
// Used by the code `mcp-migrate apply` generates (docs/apply.md).
export { storesFromEnv, storesFromUrl, defaultStores, setDefaultStores, STORE_ENV, type RuntimeStores, type StoresFromUrlOptions } from './from-env.js';
export { MemoryKeyValueStore, RedisKeyValueStore, type KeyValueStore } from './kv-store.js';
export { SessionMap, SessionSet, createSessionMap, createSessionSet } from './session-map.js';
export { SharedMap, createSharedMap, type SharedMapOptions } from './shared-map.js';
export { UnstorableValueError, encodeValue, decodeValue } from './value-codec.js';
export { StoreEventStore } from './store-event-store.js';
export { SessionStreamsEventStore, createEventStore, postStreamName } from './session-event-store.js';
export { runInSession, currentSession } from './session-context.js';
export {
  SessionTransportRegistry,
  type RegistryTransport,
  type SessionOpener,
  type SessionTransportRegistryOptions,
} from './transport-registry.js';
export { SessionEntryRegistry } from './entry-registry.js';
export {
  isTerminal,
  TASK_PAGE_SIZE,
  type Task,
  type TaskStatus,
  type TaskStore,
  type TaskMessageQueue,
  type QueuedMessage,
  type CreateTaskOptions,
  type TaskRequest,
  type TaskResult,
} from './tasks.js';
export { RedisTaskStore, RedisTaskMessageQueue, type RedisTaskStoreOptions } from './redis-tasks.js';
export { MemoryTaskStore, MemoryTaskMessageQueue } from './memory-tasks.js';
export {
  StoreTaskStore,
  StoreTaskMessageQueue,
  createTaskStore,
  createTaskMessageQueue,
  type TaskStoreOptions,
} from './task-stores.js';
export { setSessionInbox, sessionInbox } from './session-inbox.js';
export { replayInitializeRequest, replaySessionRequest, type WebEntry } from './web-entry.js';
export { ForwardingMac, FORWARDED_HEADER, MISDIRECTED_HEADER } from './forwarding-mac.js';
export {
  ownerStep,
  ownerVerdict,
  lossStep,
  forwardedBy,
  parseOwnerLossPolicy,
  checkAdvertiseUrl,
  OWNER_LOST_DETAIL,
  MAX_OWNER_ROUNDS,
  HOP_BY_HOP_HEADERS,
  FORWARD_DROP_HEADERS,
  type OwnerLossPolicy,
  type OwnerVerdict,
} from './owner-policy.js';
export { forwardToOwner, type NodeForward, type NodeForwardResult } from './node-forward.js';
export { OwnerAffinity, ownerAffinityFromEnv, forwardSecrets, type OwnerAffinityOptions, type AffinityMode } from './owner-affinity.js';
export { handOverAll, handOffCandidates, endSseStream, HANDOVER_POLL_MS, HAND_OFF_TRIES, SHUTDOWN_RETRY_MS, type HandoverLoop } from './handover.js';
export { RequestTracker, KEEP_ALIVE_DRAIN_MS } from './request-tracker.js';
export { shutdownFromEnv, drainOnSignals, DEFAULT_SHUTDOWN_TIMEOUT_S, type ShutdownSettings } from './shutdown.js';
export { routeToOwner, locateSession, readAndGiveBack, MAX_ROUTE_BODY_BYTES, BodyTooLargeError, type SessionLocator, type OwnerRouteHost } from './owner-route.js';
