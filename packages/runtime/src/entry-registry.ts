import type http from 'node:http';
import { SessionTransportRegistry, type RegistryTransport, type SessionOpener, type SessionTransportRegistryOptions } from './transport-registry.js';
import type { SessionLocator } from './owner-route.js';

/**
 * A drop-in for a sessionful server's `Map<sessionId, entry>` whose values are the server's own
 * per-session records holding the transport (`{ transport, open, lastActive }` in the SDK 1.32
 * examples), not transports. It keeps the entries for the server's code (`get`, `set`, `delete`,
 * iteration, `size`: this replica's sessions, as before) and hands each entry's transport, picked by
 * `transportOf`, to a {@link SessionTransportRegistry}, which records the handshake and restores the
 * session on any replica (the server's own `set` in `onsessioninitialized` runs again during the
 * replayed `initialize`, so a restored session gets a fresh entry of the server's making).
 *
 * An entry whose transport the registry has closed and forgotten (the session was deleted on another
 * replica, or has expired) is dropped when next looked at. An entry whose transport is not a Streamable
 * HTTP one (no `handleRequest`: a legacy `SSEServerTransport` kept in the same map) stays on this
 * replica only, as before: such a session cannot be restored by replay.
 */
export class SessionEntryRegistry<V, T extends RegistryTransport = RegistryTransport> implements Iterable<[string, V]> {
  /** The registry of the entries' transports (what `prepareNode`/`prepareRequest` consult). */
  readonly transports: SessionTransportRegistry<T>;
  readonly #entries = new Map<string, V>();
  /** Entries whose transport is not a Streamable HTTP one: this replica's only. */
  readonly #localOnly = new Set<string>();
  readonly #transportOf: (entry: V) => T;

  /** @param transportOf picks the transport out of an entry (`(entry) => entry.transport`). */
  constructor(transportOf: (entry: V) => T, options?: SessionTransportRegistryOptions) {
    this.#transportOf = transportOf;
    this.transports = new SessionTransportRegistry<T>(options);
  }

  get size(): number {
    return [...this.keys()].length;
  }

  has(sessionId: string): boolean {
    return this.get(sessionId) !== undefined;
  }

  get(sessionId: string): V | undefined {
    const entry = this.#entries.get(sessionId);
    if (entry === undefined) return undefined;
    if (!this.#localOnly.has(sessionId) && this.transports.get(sessionId) !== this.#transportOf(entry)) {
      this.#entries.delete(sessionId);
      return undefined;
    }
    return entry;
  }

  /** Adds this replica's entry; its transport is registered (handshake recorded as it arrives). */
  set(sessionId: string, entry: V): this {
    this.#entries.set(sessionId, entry);
    const transport = this.#transportOf(entry);
    if (typeof (transport as Partial<RegistryTransport> | undefined)?.handleRequest === 'function') {
      this.#localOnly.delete(sessionId);
      this.transports.set(sessionId, transport);
    } else this.#localOnly.add(sessionId);
    return this;
  }

  /** Forgets this replica's entry and transport (the session stays in the store: only a client's DELETE ends it everywhere). */
  delete(sessionId: string): boolean {
    this.#localOnly.delete(sessionId);
    this.transports.delete(sessionId);
    return this.#entries.delete(sessionId);
  }

  clear(): void {
    this.#entries.clear();
    this.#localOnly.clear();
    this.transports.clear();
  }

  *keys(): IterableIterator<string> {
    for (const [id] of this.entries()) yield id;
  }

  *values(): IterableIterator<V> {
    for (const [, entry] of this.entries()) yield entry;
  }

  *entries(): IterableIterator<[string, V]> {
    for (const id of [...this.#entries.keys()]) {
      const entry = this.get(id);
      if (entry !== undefined) yield [id, entry];
    }
  }

  forEach(fn: (entry: V, sessionId: string, registry: this) => void): void {
    for (const [id, entry] of this.entries()) fn(entry, id, this);
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }

  /** See {@link SessionTransportRegistry.sessionIdGenerator}. */
  sessionIdGenerator(generate: () => string): () => string;
  sessionIdGenerator(generate: (() => string) | undefined): (() => string) | undefined;
  sessionIdGenerator(generate: (() => string) | undefined): (() => string) | undefined {
    return this.transports.sessionIdGenerator(generate);
  }

  /** See {@link SessionTransportRegistry.opener}: the opener resolves to the new transport. */
  opener(open: SessionOpener<T>): this {
    this.transports.opener(open);
    return this;
  }

  /** See {@link SessionTransportRegistry.prepareNode}. */
  prepareNode(req: http.IncomingMessage, res: http.ServerResponse, ...rest: unknown[]): Promise<boolean> {
    return this.transports.prepareNode(req, res, ...rest);
  }

  /** See {@link SessionTransportRegistry.prepareRequest}. */
  prepareRequest(request: Request, ...rest: unknown[]): Promise<Response | undefined> {
    return this.transports.prepareRequest(request, ...rest);
  }

  /** See {@link SessionTransportRegistry.ownerRoute}. */
  ownerRoute(locate: SessionLocator): ReturnType<SessionTransportRegistry['ownerRoute']> {
    return this.transports.ownerRoute(locate);
  }

  /** See {@link SessionTransportRegistry.routeNode}. */
  routeNode(req: http.IncomingMessage, res: http.ServerResponse, locate: SessionLocator): Promise<boolean> {
    return this.transports.routeNode(req, res, locate);
  }

  /** See {@link SessionTransportRegistry.drain} (graceful shutdown: in-flight requests finish, owned sessions are handed over). */
  drain(options: { timeoutMs?: number } = {}): Promise<void> {
    return this.transports.drain(options);
  }

  /** See {@link SessionTransportRegistry.close}: {@link drain}. */
  close(): Promise<void> {
    return this.transports.close();
  }

  /** Makes `sessionId` local if the store knows it; resolves to the server's entry for it. */
  async restore(sessionId: string, ...openArgs: unknown[]): Promise<V | undefined> {
    return (await this.transports.restore(sessionId, ...openArgs)) ? this.get(sessionId) : undefined;
  }
}
