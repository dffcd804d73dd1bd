import type { JsonRpcMessage } from './jsonrpc.js';
import { HANDSHAKE_METHODS } from './protocol.js';

/**
 * What every front does with client messages before a server (an upstream session of the proxy, or a
 * transport restored by `SessionTransportRegistry`) gets them. The replayable state change a message
 * makes is `sessionChangeOf` (session-record.ts); this file holds the other shared step.
 */

/**
 * What to do about `notifications/initialized` (spec §Lifecycle: the client sends it once, after the
 * `initialize` result) for client `messages` that reach a server on this replica:
 * - `drop`: the messages are only the client's `notifications/initialized`, and this server already had
 *   one (a handshake replay sent it): a second would run the server's `oninitialized` work twice;
 * - `send-first`: this server has not had it (the client sent it to another replica) and the messages
 *   carry something other than `ping` and responses (which the spec allows before it): send one first;
 * - `forward`: neither.
 * `had` is whether the server already had it; the result's `had` is its value once the step is done.
 */
export function initializedStep(had: boolean, messages: readonly JsonRpcMessage[]): { step: 'forward' | 'drop' | 'send-first'; had: boolean } {
  let initialized = false;
  let other = false;
  for (const m of messages) {
    if (!('method' in m)) continue;
    if (m.method === HANDSHAKE_METHODS.initialized) initialized = true;
    else if (m.method !== 'ping') other = true;
  }
  if (initialized) return { step: had && messages.length === 1 ? 'drop' : 'forward', had: true };
  if (!had && other) return { step: 'send-first', had: true };
  return { step: 'forward', had };
}

/** The `notifications/initialized` a front sends for the client when {@link initializedStep} says `send-first`. */
export const INITIALIZED_NOTIFICATION = { jsonrpc: '2.0', method: HANDSHAKE_METHODS.initialized } as const;
