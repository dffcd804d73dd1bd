import { Redis, type Cluster } from 'ioredis';
import type { MessageBus } from './message-bus.js';

/** Options of the subscriber connection: see the class comment. */
const SUBSCRIBER_OVERRIDES = { enableOfflineQueue: false, autoResubscribe: false, commandTimeout: undefined, maxRetriesPerRequest: null };

/**
 * {@link MessageBus} on Redis pub/sub. Publishing uses the shared command connection; subscribing
 * uses a dedicated connection, as Redis requires. Delivery is at-most-once: messages published while
 * a replica is disconnected are lost, so nothing may depend on them for correctness (session
 * termination is also detected by the per-request `touch`), and {@link onGap} listeners are told
 * after every reconnect.
 *
 * `SUBSCRIBE` is only ever sent on a *ready* connection, and every channel is subscribed again on
 * each `ready` (ioredis' own auto-resubscribe is off): a `SUBSCRIBE` written while ioredis still runs
 * its connect-time commands (`CLIENT SETINFO`, the `INFO` ready check) would put the connection in
 * subscriber mode too early and make the ready check fail.
 *
 * With one Redis server (`client` an ioredis `Redis`) the subscriber is `client.duplicate()` and
 * reconnects with the client's own backoff. On a Redis Cluster (`client` an ioredis `Cluster`) a
 * plain `PUBLISH` on any node reaches the subscribers of every node, so the subscriber is one plain
 * connection to one node the cluster client knows (same credentials and TLS). When that connection
 * ends it is not retried on the same node: the next node is tried after a backoff (50 ms doubling
 * to 2 s), so losing a node moves the subscription rather than stopping it. Every new connection
 * that becomes ready after the first one tells the {@link onGap} listeners, as a reconnect does.
 * (ioredis' own cluster subscriber would move too, but silently: the gap would go unreported.)
 */
export class RedisMessageBus implements MessageBus {
  readonly #pub: Redis | Cluster;
  /** The current subscriber connection (replaced on a cluster when its node is lost). */
  #sub: Redis | undefined;
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  readonly #gapListeners = new Set<() => void>();
  /** `SUBSCRIBE`s sent and not yet confirmed, by channel: a second listener waits for the first's. */
  readonly #pending = new Map<string, Promise<unknown>>();
  /** Callers of {@link subscribe} with `confirmed` waiting for a ready subscriber connection. */
  readonly #readyWaiters = new Set<() => void>();
  readonly #onError: (err: Error) => void;
  #wasReady = false;
  #closed = false;
  /** Cluster only: which known node to try next, and failed attempts since the last ready connection. */
  #nextNode = 0;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #waitingForCluster: (() => void) | undefined;

  /** `client` is used for `PUBLISH`; a subscriber connection is created from it and closed by {@link close}. */
  constructor(client: Redis | Cluster, options: { onError?: (err: Error) => void } = {}) {
    this.#pub = client;
    this.#onError = options.onError ?? (() => undefined);
    if ((client as { isCluster?: boolean }).isCluster) this.#connectToClusterNode();
    else this.#attach((client as Redis).duplicate(SUBSCRIBER_OVERRIDES));
  }

  #attach(sub: Redis): void {
    this.#sub = sub;
    sub.on('error', (err: Error) => this.#onError(err));
    sub.on('ready', () => {
      if (sub !== this.#sub) return;
      this.#failures = 0;
      const channels = [...this.#listeners.keys()];
      let resubscribed: Promise<unknown> = Promise.resolve();
      if (channels.length > 0) {
        const p = sub.subscribe(...channels);
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
      for (const w of [...this.#readyWaiters]) w();
    });
    sub.on('message', (channel: string, message: string) => {
      if (sub !== this.#sub) return;
      for (const l of this.#listeners.get(channel) ?? []) {
        try {
          l(message);
        } catch {
          /* isolate listeners */
        }
      }
    });
  }

  /** Cluster: connect the subscriber to the next node the cluster client knows (after its first slot map). */
  #connectToClusterNode(): void {
    if (this.#closed) return;
    const cluster = this.#pub as Cluster;
    const nodes = cluster.nodes('all');
    if (nodes.length === 0) {
      // No slot map yet (start-up, or the cluster client is reconnecting): try again once it has one.
      if (!this.#waitingForCluster) {
        this.#waitingForCluster = () => {
          this.#waitingForCluster = undefined;
          this.#connectToClusterNode();
        };
        cluster.once('ready', this.#waitingForCluster);
      }
      return;
    }
    const node = nodes[this.#nextNode++ % nodes.length]!.options;
    const sub = new Redis({
      ...cluster.options.redisOptions,
      host: node.host,
      port: node.port,
      ...SUBSCRIBER_OVERRIDES,
      // Not retried here: the next attempt goes to another node (below).
      retryStrategy: () => null,
      lazyConnect: false,
    });
    this.#attach(sub);
    sub.once('end', () => {
      if (this.#closed || sub !== this.#sub) return;
      const delay = Math.min(50 * 2 ** Math.min(this.#failures++, 6), 2_000);
      this.#retryTimer = setTimeout(() => this.#connectToClusterNode(), delay);
      this.#retryTimer.unref();
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
    if (options.confirmed && this.#sub?.status !== 'ready') await this.#waitReady(options.timeoutMs ?? 2_000);
    let set = this.#listeners.get(channel);
    let pending: Promise<unknown> | undefined;
    if (!set) {
      this.#listeners.set(channel, (set = new Set()));
      const sub = this.#sub;
      if (sub?.status === 'ready') pending = this.#track(channel, sub.subscribe(channel));
    } else {
      pending = this.#pending.get(channel);
    }
    set.add(listener);
    const s = set;
    const off = async () => {
      s.delete(listener);
      if (s.size === 0 && this.#listeners.get(channel) === s) {
        this.#listeners.delete(channel);
        const sub = this.#sub;
        if (sub?.status === 'ready') await sub.unsubscribe(channel).catch(() => undefined);
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

  /** Resolves when a subscriber connection (the current one, or the next on a cluster) is ready. */
  #waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#readyWaiters.delete(onReady);
        reject(new Error(`Redis subscriber connection not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        this.#readyWaiters.delete(onReady);
        resolve();
      };
      this.#readyWaiters.add(onReady);
    });
  }

  onGap(listener: () => void): void {
    this.#gapListeners.add(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    this.#gapListeners.clear();
    clearTimeout(this.#retryTimer);
    if (this.#waitingForCluster) (this.#pub as Cluster).off('ready', this.#waitingForCluster);
    this.#sub?.disconnect();
  }
}
