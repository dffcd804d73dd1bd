/**
 * `mcp-migrate proxy` replicas, run from the build (`dist/src/cli/index.js`, made by `npm run build`;
 * `npm test` builds first).
 *
 * A replica is `node dist/src/cli/index.js proxy --listen 127.0.0.1:<port> --path /mcp
 * --store redis://… --session-secret … (--upstream <url> | -- <command> <args…>)`.
 * It is ready when it has logged `{"msg":"listening","url":"http://127.0.0.1:<port>/mcp",…}` (see
 * docs/proxy.md) and its port accepts connections: the log line proves the port is the proxy's and
 * not another process's that happened to take it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './everything.js';
import { getFreePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';

/** The built CLI. */
export const CLI_ENTRY = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'index.js');

/** A fixed test secret (≥ 16 bytes). Replicas of one deployment share it. */
export const TEST_SESSION_SECRET = 'test-secret-0123456789abcdef-not-for-production';

export interface ProxyReplicaOptions {
  /** `redis://127.0.0.1:<port>` */
  store: string;
  /** HTTP upstream MCP endpoint, e.g. `http://127.0.0.1:4100/mcp`. Exclusive with `command`. */
  upstream?: string;
  /** stdio server command line (goes after `--`). Exclusive with `upstream`. */
  command?: readonly string[];
  sessionSecret?: string;
  path?: string;
  port?: number;
  name?: string;
  /** Extra proxy flags, before `--`. */
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

export interface ProxyReplica {
  /** `http://127.0.0.1:<port>/mcp` */
  readonly url: string;
  readonly port: number;
  /** `127.0.0.1:<port>` (for nginx upstream lists) */
  readonly hostPort: string;
  readonly process: ManagedProcess;
  /** The full argv used (for error messages). */
  readonly argv: readonly string[];
  stop(): Promise<void>;
}

/** Fail with a clear message when the CLI has not been built yet. */
export function assertCliBuilt(): void {
  if (!fs.existsSync(CLI_ENTRY)) {
    throw new Error(`${path.relative(REPO_ROOT, CLI_ENTRY)} is missing: run \`npm run build\` first (\`npm test\` does).`);
  }
}

/** Start one proxy replica on a free loopback port and wait until it listens. */
export async function startProxyReplica(opts: ProxyReplicaOptions): Promise<ProxyReplica> {
  assertCliBuilt();
  if ((opts.upstream === undefined) === (opts.command === undefined)) {
    throw new Error('startProxyReplica: give exactly one of `upstream` or `command`');
  }
  const mcpPath = opts.path ?? '/mcp';
  let lastError: unknown;
  for (let attempt = 0; attempt < (opts.port === undefined ? 3 : 1); attempt += 1) {
    const port = opts.port ?? (await getFreePort());
    const argv = [
      CLI_ENTRY,
      'proxy',
      '--listen', `127.0.0.1:${port}`,
      '--path', mcpPath,
      '--store', opts.store,
      '--session-secret', opts.sessionSecret ?? TEST_SESSION_SECRET,
      ...(opts.extraArgs ?? []),
      ...(opts.upstream !== undefined ? ['--upstream', opts.upstream] : ['--', ...opts.command!]),
    ];
    const proc = spawnManaged(process.execPath, argv, { name: opts.name ?? `proxy-${port}`, cwd: REPO_ROOT, env: opts.env });
    try {
      const url = `http://127.0.0.1:${port}${mcpPath}`;
      const [line] = await proc.waitForOutput(/^.*"msg":"listening".*$/m, 20_000);
      if (!line.includes(`"url":"${url}"`)) throw new Error(`proxy listens elsewhere than ${url}: ${line}`);
      await proc.waitForPort(port, 5_000);
      return {
        url: `http://127.0.0.1:${port}${mcpPath}`,
        port,
        hostPort: `127.0.0.1:${port}`,
        process: proc,
        argv,
        stop: async () => {
          await proc.stop();
        },
      };
    } catch (err) {
      lastError = err;
      await proc.stop({ timeoutMs: 2_000 });
      // A usage error will not go away by retrying on another port.
      if (proc.exitInfo()?.code !== null && !/EADDRINUSE/.test(proc.output())) break;
    }
  }
  throw new Error(`could not start mcp-migrate proxy: ${String(lastError)}`);
}

