/**
 * A small stateful MCP server with **per-process** state, for tests of what replays cannot rebuild:
 * `servers/process-state.mjs`, the official SDK's Streamable HTTP transport with sessions in an
 * in-process Map, and one process-wide variable (a working directory) that the tool `cd {path}` sets
 * and `pwd` returns. Every session of one process shares it; another process has its own, so a
 * session whose `pwd` lands on another replica reads another value.
 *
 *   const server = await startProcessStateServer();
 *   // server.url = http://127.0.0.1:<port>/mcp; tools PROCESS_STATE_TOOLS.write ('cd'), .read ('pwd')
 *   await server.stop();
 *
 * It listens on 127.0.0.1 only and answers 404 to session ids it does not know.
 */
import path from 'node:path';
import { REPO_ROOT, type EverythingHttp } from './everything.js';
import { getFreePort } from './ports.js';
import { spawnManaged } from './processes.js';

/** The server program (plain ESM, run by `node`). */
export const PROCESS_STATE_ENTRY = path.join(REPO_ROOT, 'test', 'helpers', 'servers', 'process-state.mjs');

/** Its tools: `write` sets the process-wide value (`{ path: string }`, echoed back), `read` returns it. */
export const PROCESS_STATE_TOOLS = { write: 'cd', read: 'pwd' } as const;

/** The value a process holds before any `cd`. */
export const PROCESS_STATE_INITIAL = '/';

/** A running process-state server: the same handle as server-everything's (`url`, `port`, `hostPort`, `process`, `stop()`). */
export type ProcessStateServer = EverythingHttp;

/** Starts one process-state server on a free loopback port; resolves once it listens. */
export async function startProcessStateServer(opts: { name?: string; port?: number } = {}): Promise<ProcessStateServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (opts.port === undefined ? 3 : 1); attempt += 1) {
    const port = opts.port ?? (await getFreePort());
    const proc = spawnManaged(process.execPath, [PROCESS_STATE_ENTRY], { name: opts.name ?? `process-state-${port}`, cwd: REPO_ROOT, env: { PORT: String(port) } });
    try {
      const url = `http://127.0.0.1:${port}/mcp`;
      await proc.waitForOutput(new RegExp(`listening on ${url.replace(/[.:/]/g, '\\$&')}`), 15_000);
      await proc.waitForPort(port, 5_000);
      return { url, port, hostPort: `127.0.0.1:${port}`, process: proc, stop: async () => void (await proc.stop()) };
    } catch (err) {
      lastError = err;
      await proc.stop({ timeoutMs: 2_000 });
    }
  }
  throw new Error(`could not start the process-state server: ${String(lastError)}`);
}
