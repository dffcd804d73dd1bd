/**
 * `@modelcontextprotocol/server-everything` (a devDependency) as the stateful MCP server under test.
 *
 * - `streamableHttp` mode keeps every session in an in-process Map; a request carrying an id this
 *   process never issued gets 400 "Bad Request: No valid session ID provided". That is the problem.
 * - `stdio` mode is one session per process; the proxy spawns it as `EVERYTHING_STDIO_COMMAND`.
 *
 * server-everything has no host option: it listens on all interfaces. Tests only send it loopback traffic.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFreePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';

/** Repository root (this file is `test/helpers/everything.ts`). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of server-everything's entry point. */
export const EVERYTHING_ENTRY = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');

/** The stdio server as `[command, ...args]` (what goes after `--` on the proxy's command line). */
export const EVERYTHING_STDIO_COMMAND: readonly string[] = [process.execPath, EVERYTHING_ENTRY, 'stdio'];

export interface EverythingHttp {
  /** `http://127.0.0.1:<port>/mcp` */
  readonly url: string;
  readonly port: number;
  /** `127.0.0.1:<port>` (for nginx upstream lists) */
  readonly hostPort: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/** Start one server-everything in `streamableHttp` mode on a free port; resolves once it listens. */
export async function startEverythingHttp(opts: { name?: string; port?: number } = {}): Promise<EverythingHttp> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (opts.port === undefined ? 3 : 1); attempt += 1) {
    const port = opts.port ?? (await getFreePort());
    const proc = spawnManaged(process.execPath, [EVERYTHING_ENTRY, 'streamableHttp'], {
      name: opts.name ?? `everything-${port}`,
      cwd: REPO_ROOT,
      // It logs one line per request to stdout; keep only a modest tail.
      env: { PORT: String(port) },
      maxOutputBytes: 256 * 1024,
    });
    try {
      await proc.waitForOutput(/listening on port \d+/, 15_000);
      await proc.waitForPort(port, 5_000);
      return {
        url: `http://127.0.0.1:${port}/mcp`,
        port,
        hostPort: `127.0.0.1:${port}`,
        process: proc,
        stop: async () => {
          await proc.stop();
        },
      };
    } catch (err) {
      lastError = err;
      await proc.stop({ timeoutMs: 2_000 });
    }
  }
  throw new Error(`could not start server-everything streamableHttp: ${String(lastError)}`);
}
