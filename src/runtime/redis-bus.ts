import type { Cluster, Redis } from 'ioredis';
import type { MessageBus } from './message-bus.js';

/**
 * {@link MessageBus} on Redis pub/sub. Publishing uses the shared command connection; subscribing
 * uses a dedicated connection (`client.duplicate()`), as Redis requires. Delivery is at-most-once:
 * messages published while a replica is disconnected are lost, so nothing may depend on them for
 * correctness (session termination is also detected by the per-request `touch`), and
 * {@link onGap} listeners are told after every reconnect.
 *
 * `SUBSCRIBE` is only ever sent on a *ready* connection, and every channel is subscribed again on
 * each `ready` (ioredis' own auto-resubscribe is off): a `SUBSCRIBE` written while ioredis still runs
 * its connect-time commands (`CLIENT SETINFO`, the `INFO` ready check) would put the connection in
 * subscriber mode too early and make the ready check fail.
 */
export class RedisMessageBus implements MessageBus {
  readonly #pub: Redis | Cluster;
  readonly #sub: Redis | Cluster;
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  readonly #gapListeners = new Set<() => void>();
  readonly #onError: (err: Error) => void;
  #wasReady = false;

  /** `client` is used for `PUBLISH`; a duplicate is created for `SUBSCRIBE` and closed by {@link close}. */
  constructor(client: Redis | Cluster, options: { onError?: (err: Error) => void } = {}) {
    this.#pub = client;
    this.#onError = options.onError ?? (() => undefined);
    const overrides = { enableOfflineQueue: false, autoResubscribe: false, commandTimeout: undefined, maxRetriesPerRequest: null };
    this.#sub = (client as { isCluster?: boolean }).isCluster
      ? (client as Cluster).duplicate(undefined, { redisOptions: overrides })
      : (client as Redis).duplicate(overrides);
    this.#sub.on('error', (err: Error) => this.#onError(err));
    this.#sub.on('ready', () => {
      const channels = [...this.#listeners.keys()];
      if (channels.length > 0) this.#sub.subscribe(...channels).catch((err: Error) => this.#onError(err));
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

  /**
   * Registers `listener` at once. The `SUBSCRIBE` is sent now if the connection is ready, else on
   * the next `ready`; so this resolves without waiting for Redis (a store that is down at start-up
   * must not block a replica).
   */
  async subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    let set = this.#listeners.get(channel);
    if (!set) {
      this.#listeners.set(channel, (set = new Set()));
      if (this.#sub.status === 'ready') await this.#sub.subscribe(channel).catch((err: Error) => this.#onError(err));
    }
    set.add(listener);
    return async () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(channel) === set) {
        this.#listeners.delete(channel);
        if (this.#sub.status === 'ready') await this.#sub.unsubscribe(channel).catch(() => undefined);
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
