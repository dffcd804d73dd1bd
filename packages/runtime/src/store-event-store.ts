import { randomBytes } from 'node:crypto';
import { defaultStores, type RuntimeStores } from './from-env.js';
import type { JsonRpcMessage } from './jsonrpc.js';
import { sessionKey } from './redis-store.js';

/**
 * An SSE event store with the TS SDK's `EventStore` shape (`storeEvent`, `replayEventsAfter`,
 * `getStreamIdForEventId`), kept in the shared store so a client reconnecting with `Last-Event-ID`
 * to any replica gets the events it missed.
 *
 * Each instance has its own namespace (random, or given): an MCP server creates one event store per
 * session in its session-opening code, so that is one namespace per session. Events are one list at
 * `<prefix>{<namespace>}:events` with the session TTL; an event id is `<namespace>.<index>`, so the
 * store that replays it needs nothing but the id, on whichever replica the reconnect lands.
 */
export class StoreEventStore {
  readonly namespace: string;
  readonly #stores: (() => RuntimeStores) | RuntimeStores;

  constructor(options: { namespace?: string; stores?: RuntimeStores } = {}) {
    this.namespace = options.namespace ?? randomBytes(16).toString('base64url');
    if (this.namespace.includes('.')) throw new RangeError('an event-store namespace must not contain "."');
    this.#stores = options.stores ?? defaultStores;
  }

  async #s(): Promise<RuntimeStores> {
    const s = typeof this.#stores === 'function' ? this.#stores() : this.#stores;
    await s.ready();
    return s;
  }

  async storeEvent(streamId: string, message: JsonRpcMessage | object): Promise<string> {
    const s = await this.#s();
    const index = await s.kv.append(sessionKey(s.keyPrefix, this.namespace, 'events'), JSON.stringify({ streamId, message }), s.ttlMs);
    return `${this.namespace}.${index}`;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const parsed = parseEventId(eventId);
    if (!parsed) return undefined;
    const s = await this.#s();
    const [first] = await s.kv.listFrom(sessionKey(s.keyPrefix, parsed.namespace, 'events'), parsed.index);
    return first === undefined ? undefined : (JSON.parse(first) as { streamId: string }).streamId;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: never) => Promise<void> },
  ): Promise<string> {
    const parsed = parseEventId(lastEventId);
    if (!parsed) return '';
    const s = await this.#s();
    const entries = await s.kv.listFrom(sessionKey(s.keyPrefix, parsed.namespace, 'events'), parsed.index);
    if (entries.length === 0) return '';
    const streamId = (JSON.parse(entries[0]!) as { streamId: string }).streamId;
    for (let i = 1; i < entries.length; i += 1) {
      const event = JSON.parse(entries[i]!) as { streamId: string; message: never };
      if (event.streamId === streamId) await send(`${parsed.namespace}.${parsed.index + i}`, event.message);
    }
    return streamId;
  }
}

function parseEventId(eventId: string): { namespace: string; index: number } | undefined {
  const m = /^([A-Za-z0-9_-]+)\.(\d+)$/.exec(eventId);
  return m ? { namespace: m[1]!, index: Number(m[2]) } : undefined;
}
