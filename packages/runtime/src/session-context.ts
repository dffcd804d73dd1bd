import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The session whose transport is working on this async path: `SessionTransportRegistry` runs each
 * registered transport's `handleRequest` and `send` in it, so what the transport calls meanwhile (its
 * event store's `storeEvent`, for one) knows the session without the server's code passing it.
 */
const current = new AsyncLocalStorage<string>();

export function runInSession<T>(sessionId: string, fn: () => T): T {
  return current.run(sessionId, fn);
}

/** The session id of the transport work in progress, if any. */
export function currentSession(): string | undefined {
  return current.getStore();
}
