import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest } from './jsonrpc.js';
import { HANDSHAKE_METHODS, RUNTIME_ID_PREFIX } from './protocol.js';
import type { SessionRecord } from './session-record.js';

let counter = 0;

/**
 * A fresh runtime request id: `mcp-migrate:<pid>:<n>`. Unique within this process and prefixed by
 * {@link RUNTIME_ID_PREFIX}, so it can never collide with a client's request id (clients using the
 * prefix are refused).
 */
export function runtimeRequestId(tag = 'replay'): JsonRpcId {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${RUNTIME_ID_PREFIX}${tag}:${process.pid}:${counter}`;
}

/** Whether an id was minted by {@link runtimeRequestId}. */
export function isRuntimeId(id: unknown): boolean {
  return typeof id === 'string' && id.startsWith(RUNTIME_ID_PREFIX);
}

/**
 * The messages that rebuild a session on a fresh upstream connection, in order (research digest §3.3,
 * "replay the stored initialize body"):
 * 1. `initialize` with the client's original params;
 * 2. `notifications/initialized`;
 * 3. `logging/setLevel` if the client set a level;
 * 4. one `resources/subscribe` per subscribed URI.
 * Requests carry runtime ids; their replies are to be discarded. The `MCP-Protocol-Version` to send
 * with 2. and later is `record.protocolVersion`.
 */
export function handshakeReplay(record: SessionRecord): (JsonRpcRequest | JsonRpcNotification)[] {
  const out: (JsonRpcRequest | JsonRpcNotification)[] = [
    { jsonrpc: '2.0', id: runtimeRequestId(), method: HANDSHAKE_METHODS.initialize, params: record.initializeParams },
    { jsonrpc: '2.0', method: HANDSHAKE_METHODS.initialized },
  ];
  out.push(...stateSync(undefined, record));
  return out;
}

/**
 * The requests that move an upstream session from the replayable state of `from` (or the state right
 * after the handshake, if `from` is undefined) to that of `to`: `logging/setLevel` if the level
 * changed, `resources/subscribe`/`resources/unsubscribe` for the difference in subscriptions.
 */
export function stateSync(
  from: Pick<SessionRecord, 'loggingLevel' | 'subscriptions'> | undefined,
  to: Pick<SessionRecord, 'loggingLevel' | 'subscriptions'>,
): JsonRpcRequest[] {
  const out: JsonRpcRequest[] = [];
  if (to.loggingLevel !== undefined && to.loggingLevel !== from?.loggingLevel) {
    out.push({ jsonrpc: '2.0', id: runtimeRequestId(), method: HANDSHAKE_METHODS.setLevel, params: { level: to.loggingLevel } });
  }
  const before = new Set(from?.subscriptions ?? []);
  const after = new Set(to.subscriptions);
  for (const uri of to.subscriptions) {
    if (!before.has(uri)) out.push({ jsonrpc: '2.0', id: runtimeRequestId(), method: HANDSHAKE_METHODS.subscribe, params: { uri } });
  }
  for (const uri of before) {
    if (!after.has(uri)) out.push({ jsonrpc: '2.0', id: runtimeRequestId(), method: HANDSHAKE_METHODS.unsubscribe, params: { uri } });
  }
  return out;
}
