/**
 * A real Redis Cluster on loopback for integration tests, and one factory for both store kinds.
 *
 * `startRedisCluster()` starts N (default 3) `redis-server` masters, each a `startRedis()` instance
 * (own temp dir, `--bind 127.0.0.1`, no persistence) with `--cluster-enabled yes`, its own
 * `nodes.conf` in that dir, and a cluster bus on a second free port (`--cluster-port`, so the bus
 * port is not `port + 10000`, which may be taken or out of range). Then
 * `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes` assigns the 16,384 slots, and
 * the cluster is ready when every node reports `cluster_state:ok`, all slots assigned and all N
 * nodes known (bounded wait). The nodes announce 127.0.0.1, so no NAT mapping is needed. `stop()`
 * stops every node and removes their dirs; a failed start stops what it started.
 *
 * Like `redis.ts`, the helpers speak RESP over fresh sockets, so they add no traffic except their own
 * `INFO`/`CLUSTER INFO`. `command()` follows `MOVED` redirections the way a cluster client does.
 *
 * `startRedisStore('single' | 'cluster')` returns either behind one interface ({@link RedisStoreInstance}):
 * the store URL to hand to `--store` / `MCP_MIGRATE_STORE` and the inspection calls tests need,
 * summed or merged over the nodes. Tests that must hold on both use
 * `describe.each(REDIS_STORE_KINDS)`.
 */
import { getFreePort } from './ports.js';
import { spawnManaged } from './processes.js';
import { redisCommand, startRedis, type CommandStat, type RedisInstance, type RedisReply } from './redis.js';

export interface StartRedisClusterOptions {
  /** Number of masters. Default 3 (the fewest `redis-cli --cluster create` accepts). */
  masters?: number;
  /** Process label prefix. Default `redis-cluster`; nodes are `<name>-0`, `<name>-1`, … */
  name?: string;
  /** Milliseconds a node may be unreachable before it is marked failing (`cluster-node-timeout`). Default 5,000. */
  nodeTimeoutMs?: number;
  /** Longest wait for `cluster_state:ok` on every node after creating it, ms. Default 30,000. */
  readyTimeoutMs?: number;
  /** Extra `redis-server` arguments for every node. */
  extraArgs?: string[];
}

/** What tests inspect on a store, whether one server or a cluster (summed or merged over nodes). */
export interface RedisStoreInstance {
  readonly kind: RedisStoreKind;
  /** The store URL: `redis://127.0.0.1:<port>` or `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,…`. */
  readonly url: string;
  /** Every server (one, or each master). */
  readonly nodes: readonly RedisInstance[];
  /** One command; on a cluster it goes to a node and follows `MOVED` to the one owning the key. */
  command(...args: (string | number)[]): Promise<RedisReply>;
  /** `INFO commandstats`, summed over the nodes. */
  commandStats(): Promise<Map<string, CommandStat>>;
  resetStats(): Promise<void>;
  /** Keys in db 0, summed over the nodes. */
  dbsize(): Promise<number>;
  /** Keys matching `pattern` on every node, sorted. */
  keys(pattern?: string): Promise<string[]>;
  /** `PUBSUB NUMSUB channel`, summed over the nodes (a cluster node counts only its own subscribers). */
  subscribers(channel: string): Promise<number>;
  stop(): Promise<void>;
}

export interface RedisClusterInstance extends RedisStoreInstance {
  readonly kind: 'cluster';
  /** `CLUSTER INFO` of every node, parsed (`cluster_state`, `cluster_slots_assigned`, …). */
  clusterInfo(): Promise<Record<string, string>[]>;
  /** Resolves once every node reports `cluster_state:ok` (e.g. after restarting a node); rejects after `timeoutMs`. */
  waitForOk(timeoutMs?: number): Promise<void>;
  /** The node serving `key`'s slot (asks `CLUSTER KEYSLOT` and `CLUSTER SLOTS`). */
  nodeFor(key: string): Promise<RedisInstance>;
}

export const REDIS_STORE_KINDS = ['single', 'cluster'] as const;
export type RedisStoreKind = (typeof REDIS_STORE_KINDS)[number];

/** One `redis-server` (`startRedis`) or a 3-master cluster (`startRedisCluster`), behind {@link RedisStoreInstance}. */
export async function startRedisStore(kind: RedisStoreKind, opts: { name?: string } = {}): Promise<RedisStoreInstance> {
  if (kind === 'cluster') return await startRedisCluster(opts.name ? { name: opts.name } : {});
  const redis = await startRedis(opts.name ? { name: opts.name } : {});
  return {
    kind: 'single',
    get url() {
      return redis.url;
    },
    nodes: [redis],
    command: (...args) => redis.command(...args),
    commandStats: () => redis.commandStats(),
    resetStats: () => redis.resetStats(),
    dbsize: () => redis.dbsize(),
    keys: (pattern) => redis.keys(pattern),
    subscribers: async (channel) => numsub(redis, channel),
    stop: () => redis.stop(),
  };
}

/** Start a Redis Cluster of `masters` (default 3) nodes on loopback and wait until it serves every slot. */
export async function startRedisCluster(opts: StartRedisClusterOptions = {}): Promise<RedisClusterInstance> {
  const masters = opts.masters ?? 3;
  if (masters < 3) throw new Error('redis-cli --cluster create needs at least 3 masters');
  const name = opts.name ?? 'redis-cluster';
  const nodes: RedisInstance[] = [];
  try {
    const started = await Promise.all(Array.from({ length: masters }, (_, i) => startClusterNode(`${name}-${i}`, opts)));
    nodes.push(...started);
    const create = spawnManaged(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { name: `${name}-create` },
    );
    const exit = await Promise.race([create.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 30_000).unref())]);
    if (!exit) {
      await create.stop();
      throw new Error(`redis-cli --cluster create did not finish within 30 s:\n${create.output().slice(-2000)}`);
    }
    if (exit.code !== 0 || !/All 16384 slots covered/.test(create.output())) {
      throw new Error(`redis-cli --cluster create failed (code ${exit.code}):\n${create.output().slice(-2000)}`);
    }
    const cluster = clusterInstance(nodes);
    await cluster.waitForOk(opts.readyTimeoutMs ?? 30_000);
    return cluster;
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
}

/** One cluster-enabled node; its bus port is a second free port (a taken one makes the node fail to start: try another). */
async function startClusterNode(name: string, opts: StartRedisClusterOptions): Promise<RedisInstance> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const busPort = await getFreePort();
    try {
      return await startRedis({
        name,
        extraArgs: [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', 'nodes.conf',
          '--cluster-port', String(busPort),
          '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 5_000),
          // Without replicas, a failing master must not stop the other masters from serving their slots.
          '--cluster-require-full-coverage', 'no',
          ...(opts.extraArgs ?? []),
        ],
      });
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`could not start cluster node ${name}: ${String(lastError)}`);
}

function clusterInstance(nodes: RedisInstance[]): RedisClusterInstance {
  const byPort = (port: number): RedisInstance | undefined => nodes.find((n) => n.port === port);
  const cluster: RedisClusterInstance = {
    kind: 'cluster',
    get url() {
      return `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
    },
    nodes,
    async command(...args) {
      let port = nodes[0]!.port;
      for (let hop = 0; hop < 5; hop += 1) {
        try {
          return await redisCommand(port, args);
        } catch (err) {
          const moved = /MOVED \d+ [^:\s]+:(\d+)/.exec((err as Error).message);
          if (!moved) throw err;
          port = Number(moved[1]);
        }
      }
      throw new Error(`redis ${String(args[0])}: too many MOVED redirections`);
    },
    async commandStats() {
      const sum = new Map<string, CommandStat>();
      for (const stats of await Promise.all(nodes.map((n) => n.commandStats()))) {
        for (const [cmd, s] of stats) {
          const t = sum.get(cmd) ?? { calls: 0, usec: 0, rejectedCalls: 0, failedCalls: 0 };
          sum.set(cmd, {
            calls: t.calls + s.calls,
            usec: t.usec + s.usec,
            rejectedCalls: t.rejectedCalls + s.rejectedCalls,
            failedCalls: t.failedCalls + s.failedCalls,
          });
        }
      }
      return sum;
    },
    async resetStats() {
      await Promise.all(nodes.map((n) => n.resetStats()));
    },
    async dbsize() {
      return (await Promise.all(nodes.map((n) => n.dbsize()))).reduce((a, b) => a + b, 0);
    },
    async keys(pattern) {
      return (await Promise.all(nodes.map((n) => n.keys(pattern)))).flat().sort();
    },
    async subscribers(channel) {
      return (await Promise.all(nodes.map((n) => numsub(n, channel)))).reduce((a, b) => a + b, 0);
    },
    async clusterInfo() {
      return await Promise.all(nodes.map(async (n) => parseInfo(String(await n.command('CLUSTER', 'INFO')))));
    },
    async waitForOk(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      for (let i = 0; i < 10_000 && Date.now() < deadline; i += 1) {
        try {
          const infos = await cluster.clusterInfo();
          last = infos.map((x) => `${x.cluster_state} slots=${x.cluster_slots_ok}/${x.cluster_slots_assigned} known=${x.cluster_known_nodes}`);
          const ok = infos.every(
            (x) => x.cluster_state === 'ok' && x.cluster_slots_assigned === '16384' && x.cluster_slots_ok === '16384' && x.cluster_known_nodes === String(nodes.length),
          );
          if (ok) return;
        } catch (err) {
          last = err;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`Redis Cluster not ok within ${timeoutMs} ms: ${JSON.stringify(last)}`);
    },
    async nodeFor(key) {
      const slot = Number(await nodes[0]!.command('CLUSTER', 'KEYSLOT', key));
      const ranges = (await nodes[0]!.command('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
      for (const [from, to, [, port]] of ranges) {
        if (slot >= from && slot <= to) {
          const node = byPort(Number(port));
          if (node) return node;
        }
      }
      throw new Error(`no node serves slot ${slot} of ${key}`);
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  return cluster;
}

async function numsub(node: RedisInstance, channel: string): Promise<number> {
  const reply = (await node.command('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}
