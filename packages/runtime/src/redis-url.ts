/**
 * The store URLs `mcp-migrate proxy --store` and `MCP_MIGRATE_STORE` accept, parsed once for both.
 *
 * - `memory`: in-process, one replica only.
 * - `redis://[user:pass@]host[:port][/db]`, `rediss://…` (TLS): one Redis server (or a proxy in front
 *   of several). Passed to ioredis unchanged, so every form ioredis accepts works.
 * - `redis+cluster://[user:pass@]host[:port][,host[:port]…]`, `rediss+cluster://…` (TLS): a Redis
 *   Cluster, given by one or more seed nodes. The client learns the other nodes and the slot map
 *   from them (`CLUSTER SLOTS`), so one reachable seed is enough; list several so that start-up does
 *   not depend on one node. The scheme follows the `redis+sentinel://` convention of other Redis
 *   tooling; the comma-separated host list is the one Lettuce and go-redis tools use for cluster
 *   seeds. A cluster has only database 0, so a path other than `/` or `/0` is an error; query
 *   parameters are not read and are an error too (rather than silently ignored).
 */

/** One seed node of a Redis Cluster. */
export interface RedisNodeAddress {
  host: string;
  port: number;
}

export type StoreSpec =
  | { kind: 'memory' }
  | { kind: 'redis'; url: string }
  | {
      kind: 'redis-cluster';
      /** Seed nodes, in the order given. */
      nodes: RedisNodeAddress[];
      tls: boolean;
      username?: string;
      password?: string;
    };

/** Default Redis port, used when a seed has none. */
export const REDIS_DEFAULT_PORT = 6379;

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i;

/**
 * Parses a store URL (see the module comment for the forms). Leading and trailing blanks are ignored;
 * an empty string means `memory`.
 * @throws RangeError naming what is wrong (unknown scheme, no seed, bad port, a path or query on a cluster URL).
 */
export function parseStoreUrl(value: string): StoreSpec {
  const spec = value.trim();
  if (spec === '' || spec === 'memory') return { kind: 'memory' };
  if (/^rediss?:\/\//i.test(spec)) return { kind: 'redis', url: spec };
  const m = CLUSTER_URL.exec(spec);
  if (!m) {
    throw new RangeError(
      `store must be "memory", redis://…, rediss://…, redis+cluster://HOST:PORT[,HOST:PORT…] or rediss+cluster://…, got ${JSON.stringify(redact(spec))}`,
    );
  }
  const [, scheme, userinfo, hostList, pathPart, query] = m;
  if (pathPart !== undefined && pathPart !== '/' && pathPart !== '/0') {
    throw new RangeError(`a Redis Cluster has only database 0: remove "${pathPart}" from the cluster URL`);
  }
  if (query !== undefined && query !== '?') {
    throw new RangeError(`query parameters are not supported on a cluster URL (got "${query}")`);
  }
  const nodes = hostList!.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(parseHostPort);
  if (nodes.length === 0) throw new RangeError('a cluster URL needs at least one seed node: redis+cluster://HOST:PORT[,HOST:PORT…]');
  const out: StoreSpec = { kind: 'redis-cluster', nodes, tls: scheme!.toLowerCase() === 'rediss' };
  if (userinfo !== undefined && userinfo !== '') {
    // Read as ioredis reads redis://: "user:pass" is an ACL user and its password, ":pass" the default user's password.
    const colon = userinfo.indexOf(':');
    const user = decode(colon === -1 ? userinfo : userinfo.slice(0, colon));
    const pass = colon === -1 ? '' : decode(userinfo.slice(colon + 1));
    if (user !== '') out.username = user;
    if (pass !== '') out.password = pass;
  }
  return out;
}

/** Whether `value` names a Redis store (single server or cluster), i.e. not `memory`. @throws RangeError as {@link parseStoreUrl} */
export function isRedisStore(value: string): boolean {
  return parseStoreUrl(value).kind !== 'memory';
}

/** The URL with any password replaced by `***`, for logs and error messages. */
export function redact(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)([^@/?#]*)@/i, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon === -1 ? '***' : `${userinfo.slice(0, colon)}:***`}@`;
  });
}

function parseHostPort(value: string): RedisNodeAddress {
  // [IPv6]:port, [IPv6], host:port, host
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(value);
  const port = m?.[3] === undefined ? REDIS_DEFAULT_PORT : Number(m[3]);
  if (!m || !(port >= 1 && port <= 65535)) throw new RangeError(`bad cluster seed node "${value}": expected HOST[:PORT] or [IPv6][:PORT]`);
  return { host: m[1] ?? m[2]!, port };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RangeError('bad percent-encoding in the user or password of the cluster URL');
  }
}
