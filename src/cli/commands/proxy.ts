/**
 * `mcp-migrate proxy`: run a stateful MCP server behind any round-robin load balancer. See docs/proxy.md
 * for the full contract. Every flag also reads `MCP_MIGRATE_<FLAG>` (e.g. `MCP_MIGRATE_STORE`).
 * Logs are JSON lines on stderr; stdout stays empty. Exit codes: 0 after SIGTERM/SIGINT (graceful drain), 2 for usage
 * and configuration errors, including a port that cannot be bound.
 */
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_MAX_STARTING, LOG_LEVELS, ProxyConfigError, startProxy, type LogLevel, type ProxyConfig } from '../../proxy/index.js';
import { parseStoreUrl } from '@mcp-migrate/runtime';
import { ExitCode } from '../exit-codes.js';

export interface ProxyArgs {
  listen: string;
  path: string;
  store: string;
  upstream?: string;
  'session-secret'?: string;
  'previous-session-secret'?: string[];
  'principal-header': string;
  'allowed-origins'?: string[];
  'max-body-bytes': number;
  'max-sessions'?: number;
  'idle-timeout'?: number;
  'session-ttl': number;
  'handshake-timeout': number;
  'max-starting'?: number;
  'shutdown-timeout'?: number;
  'request-timeout'?: number;
  'store-prefix': string;
  affinity?: 'owner' | 'replay' | 'none';
  'on-owner-loss'?: 'end' | 'replay';
  'advertise-url'?: string;
  'heartbeat-interval'?: number;
  modern?: boolean;
  'modern-state-ttl'?: number;
  'log-level': LogLevel;
  /** Serve the legacy HTTP+SSE transport too (default true; `--no-legacy-sse` turns it off). */
  'legacy-sse'?: boolean;
  'sse-path'?: string;
  'message-path'?: string;
  '--'?: (string | number)[];
  _: (string | number)[];
}

/** Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new ProxyConfigError(`--listen must be HOST:PORT, got "${value}"`);
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port };
}

function splitList(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter((v) => v.length > 0);
}

/** Turns parsed arguments into a {@link ProxyConfig}. @throws ProxyConfigError */
export function proxyConfigFromArgs(argv: ProxyArgs): ProxyConfig {
  const command = (argv['--'] ?? []).map(String);
  if (argv.upstream !== undefined && command.length > 0) {
    throw new ProxyConfigError('give either --upstream URL or -- COMMAND [ARGS…], not both');
  }
  if (argv.upstream === undefined && command.length === 0) {
    throw new ProxyConfigError('name the MCP server: --upstream http://HOST:PORT/mcp, or -- COMMAND [ARGS…] for a stdio server');
  }
  const { host, port } = parseListen(argv.listen);
  if (!argv.path.startsWith('/')) throw new ProxyConfigError(`--path must start with "/", got "${argv.path}"`);
  const positive = (name: string, v: number) => {
    if (!Number.isFinite(v) || v <= 0) throw new ProxyConfigError(`--${name} must be a positive number, got ${v}`);
    return v;
  };
  const stdio = argv.upstream === undefined;
  const positiveInteger = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new ProxyConfigError(`--${name} must be a positive integer, got ${v}`);
    return v;
  };
  if (!stdio && argv['max-starting'] !== undefined) throw new ProxyConfigError('--max-starting bounds stdio child processes; it does not apply to --upstream URL');
  // Repeating --store (yargs gives an array) is a mistake: a cluster's seed nodes go in one URL.
  if (Array.isArray(argv.store)) throw new ProxyConfigError('give --store once; list a cluster\'s seed nodes in one URL: redis+cluster://HOST:PORT,HOST:PORT,…');
  try {
    parseStoreUrl(argv.store);
  } catch (err) {
    throw new ProxyConfigError(`--store: ${(err as Error).message}`);
  }
  const affinity = argv.affinity ?? 'owner';
  const owner = affinity === 'owner';
  if (!owner && argv['on-owner-loss'] !== undefined) {
    throw new ProxyConfigError(`--on-owner-loss applies to owner routing only; --affinity ${affinity} has no owners (every replica replays the handshake)`);
  }
  const legacy = argv['legacy-sse'] ?? true;
  const ssePath = argv['sse-path'] ?? '/sse';
  const messagePath = argv['message-path'] ?? '/message';
  if (legacy) {
    for (const [flag, p] of [['--sse-path', ssePath], ['--message-path', messagePath]] as const) {
      if (!p.startsWith('/') || p.includes('?') || p.includes('#')) throw new ProxyConfigError(`${flag} must be a path starting with "/", got "${p}"`);
      if ([argv.path, '/healthz', '/readyz', '/metrics'].includes(p)) throw new ProxyConfigError(`${flag} "${p}" is already used by the proxy`);
    }
    if (ssePath === messagePath) throw new ProxyConfigError('--sse-path and --message-path must differ');
  }
  return {
    host,
    port,
    path: argv.path,
    store: argv.store,
    storePrefix: argv['store-prefix'],
    sessionTtlMs: positive('session-ttl', argv['session-ttl']) * 1000,
    sessionSecrets: [argv['session-secret'] ?? '', ...splitList(argv['previous-session-secret'])].filter((s) => s.length > 0),
    upstream: stdio ? { command: command[0]!, args: command.slice(1) } : { url: argv.upstream! },
    principalHeader: argv['principal-header'].toLowerCase(),
    allowedOrigins: splitList(argv['allowed-origins']),
    maxBodyBytes: Math.floor(positive('max-body-bytes', argv['max-body-bytes'])),
    maxSessions: Math.floor(positive('max-sessions', argv['max-sessions'] ?? (stdio ? 100 : 1000))),
    // With owner routing the owner's upstream session holds the session's state: by default keep it as
    // long as the session itself lives.
    idleTimeoutMs: positive('idle-timeout', argv['idle-timeout'] ?? (owner ? argv['session-ttl'] : 300)) * 1000,
    handshakeTimeoutMs: positive('handshake-timeout', argv['handshake-timeout']) * 1000,
    ...(argv['max-starting'] !== undefined ? { maxStarting: positiveInteger('max-starting', argv['max-starting']) } : {}),
    shutdownTimeoutMs: positive('shutdown-timeout', argv['shutdown-timeout'] ?? 10) * 1000,
    requestTimeoutMs: positive('request-timeout', argv['request-timeout'] ?? 45) * 1000,
    affinity,
    ...(owner ? { onOwnerLoss: argv['on-owner-loss'] ?? 'end' } : {}),
    ...(argv['advertise-url'] !== undefined ? { advertiseUrl: argv['advertise-url'] } : {}),
    heartbeatIntervalMs: positive('heartbeat-interval', argv['heartbeat-interval'] ?? 1) * 1000,
    modern: argv.modern ?? true,
    modernStateTtlMs: positive('modern-state-ttl', argv['modern-state-ttl'] ?? 600) * 1000,
    logLevel: argv['log-level'],
    ...(legacy ? { legacySse: { ssePath, messagePath } } : {}),
  };
}

export const proxyCommand: CommandModule<object, ProxyArgs> = {
  command: 'proxy',
  describe: 'Serve a stateful MCP server over Streamable HTTP so any replica behind a round-robin load balancer can serve any session',
  builder: (yargs: Argv<object>) =>
    yargs
      .parserConfiguration({ 'populate--': true })
      .env('MCP_MIGRATE')
      .usage(
        '$0 proxy [options] --store memory|redis://…|redis+cluster://… (--upstream http://HOST:PORT/mcp | -- COMMAND [ARGS…])\n\n' +
          'Every option can also be set as MCP_MIGRATE_<OPTION> (e.g. MCP_MIGRATE_STORE, MCP_MIGRATE_SESSION_SECRET).',
      )
      .option('listen', { describe: 'Address to listen on, HOST:PORT (":PORT" = all interfaces)', type: 'string', default: '127.0.0.1:8080', requiresArg: true })
      .option('path', { describe: 'MCP endpoint path', type: 'string', default: '/mcp', requiresArg: true })
      .option('store', {
        describe:
          'Session store: "memory" (one replica), or Redis shared by all replicas: redis://[user:pass@]HOST:PORT[/DB] (rediss:// for TLS), ' +
          'or a Redis Cluster by its seed nodes: redis+cluster://[user:pass@]HOST:PORT,HOST:PORT,… (rediss+cluster:// for TLS)',
        type: 'string',
        default: 'memory',
        requiresArg: true,
      })
      .option('upstream', { describe: 'Streamable HTTP MCP server to proxy, e.g. http://127.0.0.1:3001/mcp (or give a stdio command after --)', type: 'string', requiresArg: true })
      .option('session-secret', {
        describe: 'Secret (≥ 16 bytes) that signs session ids; every replica must share it. Required with Redis; random with memory',
        type: 'string',
        requiresArg: true,
      })
      .option('previous-session-secret', {
        describe: 'Older secret(s) still accepted for existing session ids during a rotation (repeat or comma-separate)',
        type: 'string',
        array: true,
        requiresArg: true,
      })
      .option('principal-header', {
        describe: 'Request header whose value identifies the principal a session is bound to',
        type: 'string',
        default: 'authorization',
        requiresArg: true,
      })
      .option('allowed-origins', {
        describe: 'Allowed Origin values (repeat or comma-separate); a request with another Origin gets 403. Default: loopback origins when listening on loopback (DNS-rebinding protection), any otherwise',
        type: 'string',
        array: true,
        requiresArg: true,
      })
      .option('max-body-bytes', { describe: 'Largest POST body accepted, bytes (larger: 413)', type: 'number', default: 4 * 1024 * 1024, requiresArg: true })
      .option('max-sessions', {
        describe: 'Most upstream sessions (stdio child processes, HTTP upstream sessions) this replica keeps open',
        type: 'number',
        defaultDescription: '100 for stdio, 1000 for HTTP',
        requiresArg: true,
      })
      .option('idle-timeout', {
        describe: 'Close a local upstream session unused for this many seconds (the session itself lives on)',
        type: 'number',
        defaultDescription: 'the --session-ttl; 300 with --affinity replay',
        requiresArg: true,
      })
      .option('session-ttl', { describe: 'Seconds without any request after which a session expires (sliding)', type: 'number', default: 3600, requiresArg: true })
      .option('handshake-timeout', {
        describe: 'Seconds to wait for each upstream handshake reply (a stdio server must start within it)',
        type: 'number',
        default: 30,
        requiresArg: true,
      })
      .option('max-starting', {
        describe:
          'stdio upstream: most MCP server processes this replica starts at once (spawn until initialize answered); more wait their turn, first come first served, within --handshake-timeout',
        type: 'number',
        defaultDescription: String(DEFAULT_MAX_STARTING),
        requiresArg: true,
      })
      .option('request-timeout', {
        describe:
          'Seconds the proxy may spend on a client request before its messages reach the MCP server (session lookup, handshake replay, state re-sync, a new session\'s initialize), ' +
          'however many waits that chains; then 504. Keep it under the client\'s own request timeout (60 s in the SDK). The server\'s own time on a tool call is not limited',
        type: 'number',
        default: 45,
        requiresArg: true,
      })
      .option('shutdown-timeout', {
        describe: 'On SIGTERM/SIGINT, seconds to serve owned sessions until idle and hand them over, and to let in-flight requests finish',
        type: 'number',
        default: 10,
        requiresArg: true,
      })
      .option('affinity', {
        describe:
          'owner: the replica that created a session serves it, the others forward to it (keeps state the server holds per session in memory); ' +
          'replay: any replica serves any session by handshake replay, only for servers whose per-session state the handshake rebuilds ' +
          '(analyze verdict stateless or proxy-replay); none: deprecated name of replay',
        choices: ['owner', 'replay', 'none'] as const,
        default: 'owner' as const,
      })
      .option('on-owner-loss', {
        describe:
          'Owner routing: when a session\'s owner dies (or loses its upstream session), end: the session ends and the client\'s next request gets 404 (it initializes again); ' +
          'replay: another replica takes it over by handshake replay, without what tool calls wrote (declare the server replay-safe)',
        choices: ['end', 'replay'] as const,
        defaultDescription: 'end',
      })
      .option('advertise-url', {
        describe: 'Owner routing: http://HOST:PORT other replicas reach this one at. Default: from --listen; on all interfaces, the host\'s one external address',
        type: 'string',
        requiresArg: true,
      })
      .option('heartbeat-interval', {
        describe: 'Owner routing: seconds between replica registry heartbeats; a replica silent for 3 intervals counts as gone',
        type: 'number',
        default: 1,
        requiresArg: true,
      })
      .option('store-prefix', { describe: 'Prefix of every Redis key and channel', type: 'string', default: 'mcpm:', requiresArg: true })
      .option('legacy-sse', {
        describe: 'Also serve the legacy HTTP+SSE transport (2024-11-05) on --sse-path and --message-path (--no-legacy-sse: off)',
        type: 'boolean',
        default: true,
      })
      .option('sse-path', { describe: 'Legacy HTTP+SSE: path of the SSE endpoint (GET)', type: 'string', default: '/sse', requiresArg: true })
      .option('message-path', {
        describe: 'Legacy HTTP+SSE: path of the message endpoint (POST) announced in the endpoint event',
        type: 'string',
        default: '/message',
        requiresArg: true,
      })
      .option('modern', {
        describe: 'Also serve 2026-07-28 (stateless) clients on the same endpoint (--no-modern: legacy revisions only)',
        type: 'boolean',
        default: true,
      })
      .option('modern-state-ttl', {
        describe: 'Seconds a 2026-07-28 input_required requestState stays valid (and the interrupted upstream call waits for the retry)',
        type: 'number',
        default: 600,
        requiresArg: true,
      })
      .option('log-level', { describe: 'Log level of the JSON logs on stderr', choices: LOG_LEVELS, default: 'info' as LogLevel })
      .example('$0 proxy --listen :8080 -- npx -y @modelcontextprotocol/server-everything', 'One replica in front of a stdio server')
      .example(
        'MCP_MIGRATE_SESSION_SECRET=… $0 proxy --store redis://redis:6379 --upstream http://127.0.0.1:3001/mcp',
        'One of several replicas sharing a Redis store, in front of an HTTP server',
      )
      .example(
        'MCP_MIGRATE_SESSION_SECRET=… $0 proxy --store redis+cluster://redis-1:6379,redis-2:6379,redis-3:6379 --upstream http://127.0.0.1:3001/mcp',
        'The same on a Redis Cluster (any reachable seed node is enough; the rest are discovered)',
      ) as unknown as Argv<ProxyArgs>,
  handler: async (argv) => {
    let config: ProxyConfig;
    try {
      config = proxyConfigFromArgs(argv);
    } catch (err) {
      process.stderr.write(`mcp-migrate: ${(err as Error).message}\nRun with --help for usage.\n`);
      process.exit(ExitCode.Usage);
    }
    let running;
    try {
      running = await startProxy(config);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const message = err instanceof ProxyConfigError ? e.message : `cannot start the proxy: ${e.message}`;
      process.stderr.write(`mcp-migrate: ${message}\n`);
      process.exit(ExitCode.Usage);
    }
    const stop = (signal: NodeJS.Signals) => {
      running.proxy.options.logger?.info({ signal }, 'shutting down');
      // Drain (bounded by --shutdown-timeout), then close; a last resort if closing itself hangs.
      const force = setTimeout(() => process.exit(ExitCode.Ok), (config.shutdownTimeoutMs ?? 10_000) + 10_000);
      force.unref();
      running.shutdown().then(
        () => process.exit(ExitCode.Ok),
        () => process.exit(ExitCode.Ok),
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  },
};
