import type { JsonRpcResponse } from './jsonrpc.js';

/**
 * Per process: for each session whose transport this replica holds, the function that hands a
 * client's answer to that session's MCP server here (its transport's `onmessage`), so the answer
 * resolves the server's pending request. `SessionTransportRegistry` registers one per transport; the
 * task message queue uses it to route the answers to requests it queues (delivered through
 * `tasks/result`, possibly by another replica) back to the replica whose server is waiting.
 */
const inboxes = new Map<string, (response: JsonRpcResponse) => void>();

/** Registers the inbox of `sessionId` on this replica; returns the function that removes it (if still the same). */
export function setSessionInbox(sessionId: string, deliver: (response: JsonRpcResponse) => void): () => void {
  inboxes.set(sessionId, deliver);
  return () => {
    if (inboxes.get(sessionId) === deliver) inboxes.delete(sessionId);
  };
}

/** The inbox of `sessionId` on this replica, if its transport is here. */
export function sessionInbox(sessionId: string): ((response: JsonRpcResponse) => void) | undefined {
  return inboxes.get(sessionId);
}
