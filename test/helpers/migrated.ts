/**
 * Real servers migrated by `mcp-migrate apply --store redis` (the built CLI, as a user runs it), in a
 * temporary directory, and replicas of them.
 *
 * - {@link copyServer} copies a server's files into a new temporary directory whose `node_modules` links
 *   every dependency of this repository (the `@mcp-migrate` scope among them, a link to
 *   `packages/runtime`), so the generated `import … from '@mcp-migrate/runtime'` resolves to the build
 *   under test. The copy is not a git repository: apply says so and goes on.
 * - {@link migrateServer} copies, then runs `apply` on the given paths of the copy and records its
 *   output and exit code (1 when findings that break round-robin remain).
 * - {@link startServerReplicas} starts replicas of a server (original or migrated) on free loopback
 *   ports. Servers that hard-code their port (the SDK examples listen on 3000) get the free port through
 *   `listen-port.mjs`, preloaded with `--import`, which maps the ports their code asks for.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { REPO_ROOT } from './everything.js';
import { getFreePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { CLI_ENTRY } from './proxy.js';

const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything');
const LISTEN_PORT_PRELOAD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'listen-port.mjs');

export interface CopiedServer {
  /** The temporary directory holding the copy and its `node_modules/`. */
  dir: string;
  /** Deletes the directory. */
  remove(): void;
}

export interface MigratedServer extends CopiedServer {
  /** What `apply` printed (stdout, then stderr). */
  applyOutput: string;
  /** `apply`'s exit code: 0 ready for round-robin, 1 findings remain. */
  applyExitCode: number;
}

/** Copies `[source, target relative to the copy]` pairs (files or directories) into a new temporary directory named after `prefix`. */
export function copyServer(prefix: string, copies: ReadonlyArray<readonly [string, string]>): CopiedServer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mcp-migrate-${prefix}-`));
  for (const [from, to] of copies) {
    fs.mkdirSync(path.dirname(path.join(dir, to)), { recursive: true });
    fs.cpSync(from, path.join(dir, to), { recursive: true });
  }
  const nm = path.join(dir, 'node_modules');
  fs.mkdirSync(nm);
  for (const entry of fs.readdirSync(path.join(REPO_ROOT, 'node_modules'))) {
    if (entry.startsWith('.')) continue;
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules', entry), path.join(nm, entry));
  }
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `mcp-migrate apply --store redis --force` (plus `args`) on `paths` of a copy. */
export async function applyTo(dir: string, paths: readonly string[] = ['.'], args: readonly string[] = []): Promise<{ output: string; exitCode: number }> {
  try {
    const run = await promisify(execFile)(process.execPath, [CLI_ENTRY, 'apply', ...paths, '--store', 'redis', '--force', ...args], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
    return { output: run.stdout + run.stderr, exitCode: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    if (typeof e.code !== 'number') throw err;
    return { output: (e.stdout ?? '') + (e.stderr ?? ''), exitCode: e.code };
  }
}

/** Copies a server (see {@link copyServer}) and migrates the copy with `apply` on `paths`. */
export async function migrateServer(prefix: string, copies: ReadonlyArray<readonly [string, string]>, paths: readonly string[] = ['.']): Promise<MigratedServer> {
  const copy = copyServer(prefix, copies);
  const { output, exitCode } = await applyTo(copy.dir, paths);
  return { ...copy, applyOutput: output, applyExitCode: exitCode };
}

/** Copies server-everything (`dist/`, `package.json`) into a new temporary directory named after `prefix` and migrates it. */
export async function migrateEverything(prefix: string): Promise<MigratedServer> {
  return await migrateServer(prefix, [
    [path.join(EVERYTHING, 'dist'), 'dist'],
    [path.join(EVERYTHING, 'package.json'), 'package.json'],
  ]);
}

export interface ReplicaOptions {
  /** The server's entry file, relative to `dir`, and its arguments. */
  entry: string;
  args?: string[];
  /** `MCP_MIGRATE_STORE` (omit for an unmigrated server). */
  storeUrl?: string;
  /** Environment for a replica listening on `port` (`{ PORT: String(port) }` by default). */
  env?: (port: number) => Record<string, string>;
  /** Ports the server's code listens on whatever its environment says: each is replaced by the replica's free port. */
  fixedPorts?: number[];
  /** Output that says the server is up, in addition to its port accepting connections. */
  ready?: RegExp;
}

export interface Replica {
  process: ManagedProcess;
  port: number;
  /** `127.0.0.1:<port>` (for nginx upstream lists). */
  hostPort: string;
}

/**
 * Starts `count` replicas of the server in `dir`, each on a free loopback port; resolves once each
 * one's port accepts connections (and its output matched `ready`), bounded by 20 s per replica.
 */
export async function startServerReplicas(dir: string, count: number, name: string, options: ReplicaOptions): Promise<Replica[]> {
  return await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const port = await getFreePort();
      const env: Record<string, string> = { ...(options.env ?? ((p: number) => ({ PORT: String(p) })))(port) };
      if (options.storeUrl) env.MCP_MIGRATE_STORE = options.storeUrl;
      const preload: string[] = [];
      if (options.fixedPorts?.length) {
        env.TEST_LISTEN_PORTS = options.fixedPorts.map((p) => `${p}=${port}`).join(',');
        preload.push('--import', LISTEN_PORT_PRELOAD);
      }
      const proc = spawnManaged(process.execPath, [...preload, options.entry, ...(options.args ?? [])], { name: `${name}-${i}`, cwd: dir, env, maxOutputBytes: 256 * 1024 });
      if (options.ready) await proc.waitForOutput(options.ready, 15_000);
      await proc.waitForPort(port, 15_000);
      return { process: proc, port, hostPort: `127.0.0.1:${port}` };
    }),
  );
}

/**
 * Starts `count` replicas of a migrated server-everything in streamableHttp mode with
 * `MCP_MIGRATE_STORE=storeUrl`; resolves once each has logged that it listens and its port accepts connections.
 */
export async function startMigratedReplicas(dir: string, storeUrl: string, count: number, name: string): Promise<Replica[]> {
  return await startServerReplicas(dir, count, name, { entry: 'dist/index.js', args: ['streamableHttp'], storeUrl, ready: /listening on port \d+/ });
}

