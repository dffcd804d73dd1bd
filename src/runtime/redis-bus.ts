import type { Cluster, Redis } from 'ioredis';
import type { MessageBus } from './message-bus.js';

/**
 * {@link MessageBus} on Redis pub/sub. Publishing uses the shared command connection; subscribing
 * uses a dedicated connection (`client.duplicate()`), as Redis requires. Delivery is at-most-once:
 * messages published while a replica is disconnected are lost, so nothing may depend on them for
 * correctness (session termination is also detected by the per-request `touch`).
 */
export class RedisMessageBus implements MessageBus {
  readonly #pub: Redis | Cluster;
  readonly #sub: Redis | Cluster;
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  readonly #gapListeners = new Set<() => void>();
  #wasReady = false;

  /** `client` is used for `PUBLISH`; a duplicate is created for `SUBSCRIBE` and closed by {@link close}. */
  constructor(client: Redis | Cluster, options: { onError?: (err: Error) => void } = {}) {
    this.#pub = client;
    // The subscriber queues SUBSCRIBE while (re)connecting, whatever the command connection's policy.
    this.#sub = (client as { isCluster?: boolean }).isCluster
      ? (client as Cluster).duplicate(undefined, { enableOfflineQueue: true })
      : (client as Redis).duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.#sub.on('error', (err: Error) => options.onError?.(err));
    this.#sub.on('ready', () => {
      // A second 'ready' means the subscriber reconnected: messages may have been lost meanwhile.
      if (this.#wasReady) for (const l of this.#gapListeners) l();
      this.#wasReady = true;
    });
    this.#sub.on('message', (channel: string, message: string) => {
      for (const l of this.#listeners.get(channel) ?? []) {
        try {
          l(message);
        } catch {
          /* isolate listeners */
        }
      }
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#pub.publish(channel, message);
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    let set = this.#listeners.get(channel);
    if (!set) {
      this.#listeners.set(channel, (set = new Set()));
      // ioredis re-subscribes automatically after a reconnect.
      await this.#sub.subscribe(channel);
    }
    set.add(listener);
    return async () => {
      set.delete(listener);
      if (set.size === 0) {
        this.#listeners.delete(channel);
        await this.#sub.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  onGap(listener: () => void): void {
    this.#gapListeners.add(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    this.#gapListeners.clear();
    this.#sub.disconnect();
  }
}
