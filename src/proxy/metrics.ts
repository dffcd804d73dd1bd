/**
 * Prometheus metrics of one proxy (prom-client). Each proxy has its own {@link Registry}, so several
 * proxies in one process (tests, embedding) do not collide. See docs/proxy.md §Operations.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NewSessionRecord, SessionChange, SessionRecord } from '@mcp-migrate/runtime';
import type { SessionStore } from '@mcp-migrate/runtime';

/** HTTP methods with their own label value; any other method is counted as `OTHER`. */
const METHODS = ['GET', 'POST', 'DELETE', 'HEAD', 'OTHER'] as const;
/** Status code classes (`status` label). */
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
/** Store operations (`op` label of the store latency histogram). */
const STORE_OPS = ['create', 'load', 'touch', 'update', 'claim', 'release', 'delete', 'ping'] as const;
type StoreOp = (typeof STORE_OPS)[number];
/** Store latencies kept before they are observed without waiting for a scrape (bounds memory when nobody scrapes). */
const PENDING_MAX = 1024;

export interface ProxyMetricsSources {
  /** Upstream sessions open on this replica, read at scrape time. */
  openUpstreams: () => number;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly sessionsCreated: Counter;
  readonly handshakeReplays: Counter;
  /** Client standalone GET SSE streams open on this replica. */
  readonly standaloneStreams: Gauge;
  /** Messages this replica's upstream sessions sent on their standalone streams (appended to the session's). */
  readonly standaloneMessages: Counter;
  readonly #busLag: Histogram;
  readonly #answers = new Map<'local' | 'remote' | 'unknown', { inc(): void }>();
  readonly #requests: Counter<'method' | 'status'>;
  /**
   * Requests counted since the last scrape, indexed by method index * 5 + status class index: the
   * request path adds to a plain array, and the counter takes them at scrape time (`collect`), so a
   * request costs no prom-client label lookup.
   */
  readonly #requestCounts = new Float64Array(METHODS.length * CLASSES.length);
  /** Store call latencies (s) since the last scrape, by op: observed at scrape time, or every {@link PENDING_MAX}. */
  readonly #pendingLatency = new Map<StoreOp, number[]>();
  readonly #storeChildren = new Map<StoreOp, { observe(v: number): void }>();

  constructor(sources: ProxyMetricsSources) {
    const registers = [this.registry];
    new Gauge({
      name: 'mcp_migrate_sessions_open',
      help: 'Upstream sessions (stdio child processes, HTTP upstream sessions) open on this replica',
      registers,
      collect() {
        this.set(sources.openUpstreams());
      },
    });
    this.sessionsCreated = new Counter({
      name: 'mcp_migrate_sessions_created_total',
      help: 'Sessions created (successful initialize) on this replica',
      registers,
    });
    this.handshakeReplays = new Counter({
      name: 'mcp_migrate_handshake_replays_total',
      help: 'Upstream sessions opened by replaying the handshake from the session record',
      registers,
    });
    const counts = this.#requestCounts;
    const requestChildren: { inc(n: number): void }[] = [];
    this.#requests = new Counter({
      name: 'mcp_migrate_requests_total',
      help: 'HTTP requests answered, by method and status code class',
      labelNames: ['method', 'status'],
      registers,
      collect() {
        for (let i = 0; i < counts.length; i++) {
          if (counts[i]! > 0) requestChildren[i]!.inc(counts[i]!);
          counts[i] = 0;
        }
      },
    });
    for (const m of METHODS) for (const c of CLASSES) requestChildren.push(this.#requests.labels(m, c));
    const flushLatency = () => this.#flushLatency();
    const storeLatency = new Histogram({
      name: 'mcp_migrate_store_latency_seconds',
      help: 'Latency of session store calls, by operation (failed calls included)',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
      collect: flushLatency,
    });
    for (const op of STORE_OPS) {
      this.#storeChildren.set(op, storeLatency.labels(op));
      this.#pendingLatency.set(op, []);
    }
    this.standaloneStreams = new Gauge({
      name: 'mcp_migrate_standalone_streams_open',
      help: 'Client standalone GET SSE streams open on this replica',
      registers,
    });
    this.standaloneMessages = new Counter({
      name: 'mcp_migrate_standalone_messages_total',
      help: "Messages this replica's upstream sessions sent on their standalone streams (stored in the session's standalone stream)",
      registers,
    });
    this.#busLag = new Histogram({
      name: 'mcp_migrate_bus_lag_seconds',
      help: 'Time from storing a server-to-client message in a session stream (on any replica) to writing it to a client SSE stream on this replica',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    const answers = new Counter({
      name: 'mcp_migrate_server_request_answers_total',
      help: "Clients' answers to server-initiated requests, by where they were routed: local (this replica), remote (another replica, over the bus), unknown (not a rewritten id: forwarded as is)",
      labelNames: ['outcome'],
      registers,
    });
    for (const o of ['local', 'remote', 'unknown'] as const) this.#answers.set(o, answers.labels(o));
    collectDefaultMetrics({ register: this.registry });
  }

  /** Records the bus lag of a live event stored at `ts` (ms since the epoch) and written now. */
  busLag(ts: number): void {
    this.#busLag.observe(Math.max(0, Date.now() - ts) / 1000);
  }

  /** Counts one client answer to a server-initiated request, by routing outcome. */
  answerRouted(outcome: 'local' | 'remote' | 'unknown'): void {
    this.#answers.get(outcome)!.inc();
  }

  /** Counts one answered HTTP request. */
  request(method: string | undefined, status: number): void {
    const m = method === 'GET' ? 0 : method === 'POST' ? 1 : method === 'DELETE' ? 2 : method === 'HEAD' ? 3 : 4;
    const c = Math.min(4, Math.max(0, Math.floor(status / 100) - 1));
    this.#requestCounts[m * 5 + c]!++;
  }

  #flushLatency(): void {
    for (const [op, values] of this.#pendingLatency) {
      const child = this.#storeChildren.get(op)!;
      for (const v of values) child.observe(v);
      values.length = 0;
    }
  }

  /** A store that records the latency of every call in `mcp_migrate_store_latency_seconds`. */
  instrumentStore(store: SessionStore): SessionStore {
    const pending = this.#pendingLatency;
    const timed = <T>(op: StoreOp, p: Promise<T>): Promise<T> => {
      const started = performance.now();
      const values = pending.get(op)!;
      const done = () => {
        values.push((performance.now() - started) / 1000);
        if (values.length >= PENDING_MAX) this.#flushLatency();
      };
      p.then(done, done);
      return p;
    };
    return {
      get ttlMs() {
        return store.ttlMs;
      },
      create: (record: NewSessionRecord): Promise<SessionRecord> => timed('create', store.create(record)),
      load: (id: string) => timed('load', store.load(id)),
      touch: (id: string) => timed('touch', store.touch(id)),
      touchOwned: (id: string, owner: string, epoch: number) => timed('touch', store.touchOwned(id, owner, epoch)),
      update: (id: string, change: SessionChange) => timed('update', store.update(id, change)),
      claimOwner: (id: string, expected: string | undefined, next: string) => timed('claim', store.claimOwner(id, expected, next)),
      releaseOwner: (id: string, current: string, handover?: string) => timed('release', store.releaseOwner(id, current, handover)),
      deleteIfOwner: (id: string, owner: string) => timed('delete', store.deleteIfOwner(id, owner)),
      delete: (id: string) => timed('delete', store.delete(id)),
      ping: () => timed('ping', store.ping()),
      close: () => store.close(),
    };
  }
}
