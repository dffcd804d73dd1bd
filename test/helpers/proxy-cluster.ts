/**
 * A deployment under test: N `mcp-migrate proxy` replicas sharing one store, behind a round-robin nginx,
 * in front of server-everything (the setup most integration tests share).
 *
 * The Redis (or Redis Cluster) store is started by the caller, which also owns its lifetime; the replicas
 * and their sidecars are managed processes (`stopAllProcesses()`), and `stop()` stops nginx.
 */
import { EVERYTHING_STDIO_COMMAND, startEverythingHttp } from './everything.js';
import { startNginx, type NginxInstance } from './nginx.js';
import { startProxyReplica, type ProxyReplica } from './proxy.js';

/**
 * What each replica proxies to:
 * - `stdio`: server-everything as a stdio child per session, with a handshake timeout of 30 s (each replay
 *   spawns a Node process, which takes seconds on a loaded 2-core machine; the tests check correctness,
 *   bench/proxy measures speed);
 * - `http`: a server-everything of its own over Streamable HTTP (a sidecar per replica);
 * - `{ url }`: one HTTP upstream every replica shares.
 */
/** The replicas' `--handshake-timeout` for a stdio upstream, in seconds. */
const STDIO_HANDSHAKE_TIMEOUT_S = 30;

export type EverythingUpstream = 'stdio' | 'http' | { url: string };

export interface ProxyClusterOptions {
  /** The store URL every replica uses (`redis://…`, `redis+cluster://…`). */
  store: string;
  upstream: EverythingUpstream;
  /** Prefix of the process names (`<name>-<i>`, sidecars `<name>-sidecar-<i>`). */
  name: string;
  /** Default 3. */
  replicas?: number;
  /** Extra proxy flags for every replica (e.g. `['--affinity', 'replay']`). */
  extraArgs?: readonly string[];
  /** What nginx balances: default `/mcp`; `/` also balances the legacy HTTP+SSE paths. */
  path?: string;
}

export interface ProxyCluster {
  readonly replicas: readonly ProxyReplica[];
  readonly nginx: NginxInstance;
  /** The balanced MCP endpoint: `http://127.0.0.1:<nginx port>/mcp`. */
  readonly url: string;
  /**
   * A client request timeout (ms) that outlasts what the replicas may take to open a session: for a stdio
   * upstream the handshake timeout plus 10 s (an `initialize` may wait for a child start under load), else 15 s.
   */
  readonly requestTimeoutMs: number;
  /** The last `lines` log lines of each replica at level warn or above, for failure messages. */
  warnings(lines?: number): string;
  /** Stops nginx (the replicas stop with `stopAllProcesses()`). */
  stop(): Promise<void>;
}

/** Starts the replicas (in parallel) and nginx in front of them. */
export async function startProxyCluster(o: ProxyClusterOptions): Promise<ProxyCluster> {
  const upstream = o.upstream;
  const extraArgs = [...(o.extraArgs ?? [])];
  const replicas = await Promise.all(
    Array.from({ length: o.replicas ?? 3 }, async (_, i) => {
      const name = `${o.name}-${i}`;
      if (upstream === 'stdio') return startProxyReplica({ store: o.store, command: EVERYTHING_STDIO_COMMAND, name, extraArgs: ['--handshake-timeout', String(STDIO_HANDSHAKE_TIMEOUT_S), ...extraArgs] });
      const url = upstream === 'http' ? (await startEverythingHttp({ name: `${o.name}-sidecar-${i}` })).url : upstream.url;
      return startProxyReplica({ store: o.store, upstream: url, name, extraArgs });
    }),
  );
  const nginx = await startNginx({ upstreams: replicas.map((p) => p.hostPort), path: o.path ?? '/mcp' });
  return {
    replicas,
    nginx,
    url: `http://127.0.0.1:${nginx.port}/mcp`,
    requestTimeoutMs: upstream === 'stdio' ? STDIO_HANDSHAKE_TIMEOUT_S * 1000 + 10_000 : 15_000,
    warnings: (lines = 20) => replicaWarnings(replicas, lines),
    stop: () => nginx.stop(),
  };
}

/** The last `lines` log lines at level warn (40) or above of each replica, under its name. */
export function replicaWarnings(replicas: readonly ProxyReplica[], lines = 20): string {
  return replicas
    .map((p) => `--- ${p.process.name} ---\n${p.process.output().split('\n').filter((l) => /"level":[4-6]0/.test(l)).slice(-lines).join('\n')}`)
    .join('\n');
}
