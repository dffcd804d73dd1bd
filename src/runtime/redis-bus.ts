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
  /** `SUBSCRIBE`s sent and not yet confirmed, by channel: a second listener waits for the first's. */
  readonly #pending = new Map<string, Promise<unknown>>();
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
      let resubscribed: Promise<unknown> = Promise.resolve();
      if (channels.length > 0) {
        const p = this.#sub.subscribe(...channels);
        for (const c of channels) this.#track(c, p);
        resubscribed = p.catch((err: Error) => this.#onError(err));
      }
      // A second 'ready' means the subscriber reconnected: messages may have been lost meanwhile.
      // Told once the channels are subscribed again, so a listener that reads what it missed misses nothing after.
      if (this.#wasReady) {
        void resubscribed.then(() => {
          for (const l of this.#gapListeners) l();
        });
      }
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
   * the next `ready`; so by default this resolves without waiting for Redis (a store that is down at
   * start-up must not block a replica). When the connection is ready, it resolves once Redis has
   * confirmed the subscription, also for a second listener of a channel whose `SUBSCRIBE` is still in
   * flight. With `confirmed`, it waits up to `timeoutMs` (default 2,000) for the connection and
   * the confirmation, and rejects if either does not come: then nothing published afterwards is missed.
   */
  async subscribe(
    channel: string,
    listener: (message: string) => void,
    options: { confirmed?: boolean; timeoutMs?: number } = {},
  ): Promise<() => Promise<void>> {
    if (options.confirmed && this.#sub.status !== 'ready') await this.#waitReady(options.timeoutMs ?? 2_000);
    let set = this.#listeners.get(channel);
    let pending: Promise<unknown> | undefined;
    if (!set) {
      this.#listeners.set(channel, (set = new Set()));
      if (this.#sub.status === 'ready') pending = this.#track(channel, this.#sub.subscribe(channel));
    } else {
      pending = this.#pending.get(channel);
    }
    set.add(listener);
    const s = set;
    const off = async () => {
      s.delete(listener);
      if (s.size === 0 && this.#listeners.get(channel) === s) {
        this.#listeners.delete(channel);
        if (this.#sub.status === 'ready') await this.#sub.unsubscribe(channel).catch(() => undefined);
      }
    };
    if (pending) {
      try {
        await pending;
      } catch (err) {
        this.#onError(err as Error);
        if (options.confirmed) {
          await off();
          throw err;
        }
      }
    }
    return off;
  }

  /** Remembers an in-flight `SUBSCRIBE` of `channel` until Redis answers it. */
  #track(channel: string, p: Promise<unknown>): Promise<unknown> {
    this.#pending.set(channel, p);
    const clear = () => {
      if (this.#pending.get(channel) === p) this.#pending.delete(channel);
    };
    p.then(clear, clear);
    return p;
  }

  #waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#sub.off('ready', onReady);
        reject(new Error(`Redis subscriber connection not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#sub.once('ready', onReady);
    });
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
