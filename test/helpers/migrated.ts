/**
 * Real servers migrated by `mcp-migrate apply --store redis` (the built CLI, as a user runs it), in a
 * temporary directory, and replicas of them: server-everything's shipped JavaScript
 * ({@link migrateEverything}), or any server copied with {@link copyServer} and migrated with
 * {@link runApply}. A copy is not a git repository: apply says so and goes on (`--force`). Its
 * `node_modules` links every dependency of this repository (the `@mcp-migrate` scope among them, a link
 * to `packages/runtime`), so the generated `import … from '@mcp-migrate/runtime'` resolves to the build
 * under test. Servers that hard-code their port (the SDK examples listen on 3000) get a free one through
 * `listen-port.mjs`, preloaded with `--import` ({@link startServerReplicas}'s `fixedPorts`).
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

export interface MigratedEverything {
  /** The temporary directory holding the migrated copy (`dist/`, `package.json`, `node_modules/`). */
  dir: string;
  /** What `apply` printed (stdout, then stderr). */
  applyOutput: string;
  /** `apply`'s exit code: 0 ready for round-robin, 1 findings that break it remain. */
  applyExitCode: number;
  /** Deletes the directory. */
  remove(): void;
}

/** Copies server-everything into a new temporary directory named after `prefix` and runs `apply --store redis` on it. */
export async function migrateEverything(prefix: string): Promise<MigratedEverything> {
  const copy = copyServer(prefix, EVERYTHING, ['dist', 'package.json']);
  const run = await runApply(copy.dir, ['.']);
  return { ...copy, applyOutput: run.output, applyExitCode: run.code };
}

/**
 * Starts `count` replicas of a migrated server-everything in streamableHttp mode, each on a free
 * loopback port with `MCP_MIGRATE_STORE=storeUrl`; resolves once each has logged that it listens and
 * its port accepts connections (bounded: 20 s per replica).
 */
export async function startMigratedReplicas(
  dir: string,
  storeUrl: string,
  count: number,
  name: string,
): Promise<{ process: ManagedProcess; hostPort: string }[]> {
  return await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const port = await getFreePort();
      const proc = spawnManaged(process.execPath, ['dist/index.js', 'streamableHttp'], {
        name: `${name}-${i}`,
        cwd: dir,
        env: { PORT: String(port), MCP_MIGRATE_STORE: storeUrl },
        maxOutputBytes: 256 * 1024,
      });
      await proc.waitForOutput(/listening on port \d+/, 15_000);
      await proc.waitForPort(port, 5_000);
      return { process: proc, hostPort: `127.0.0.1:${port}` };
    }),
  );
}

/** Gives `dir` a `node_modules` whose entries link this repository's (so a copied server and the generated `@mcp-migrate/runtime` import resolve). */
export function linkRepoNodeModules(dir: string): void {
  const nm = path.join(dir, 'node_modules');
  fs.mkdirSync(nm);
  for (const entry of fs.readdirSync(path.join(REPO_ROOT, 'node_modules'))) {
    if (entry.startsWith('.')) continue;
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules', entry), path.join(nm, entry));
  }
}

export interface ServerCopy {
  /** The temporary directory holding the copy. */
  dir: string;
  /** Deletes the directory. */
  remove(): void;
}

/**
 * Copies `entries` (files or folders, relative to `sourceDir`: an installed package's `dist`,
 * its `package.json`) into a new temporary directory named after `prefix`, with linked `node_modules`:
 * this repository's, overlaid with the package's own nested `node_modules` (the versions it was
 * installed with, where they differ from the hoisted ones).
 */
export function copyServer(prefix: string, sourceDir: string, entries: readonly string[]): ServerCopy {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mcp-migrate-${prefix}-`));
  for (const e of entries) fs.cpSync(path.join(sourceDir, e), path.join(dir, e), { recursive: true });
  linkRepoNodeModules(dir);
  overlayLinks(path.join(sourceDir, 'node_modules'), path.join(dir, 'node_modules'));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Links each package of `from` into `into`, replacing what is there; a scope folder becomes a real folder of links. */
function overlayLinks(from: string, into: string): void {
  if (!fs.existsSync(from)) return;
  for (const entry of fs.readdirSync(from)) {
    if (entry.startsWith('.')) continue;
    const target = path.join(into, entry);
    if (entry.startsWith('@')) {
      const linked = fs.existsSync(target) && fs.lstatSync(target).isSymbolicLink() ? fs.realpathSync(target) : undefined;
      if (linked) {
        fs.unlinkSync(target);
        fs.mkdirSync(target);
        for (const p of fs.readdirSync(linked)) fs.symlinkSync(path.join(linked, p), path.join(target, p));
      } else fs.mkdirSync(target, { recursive: true });
      overlayLinks(path.join(from, entry), target);
      continue;
    }
    fs.rmSync(target, { force: true, recursive: false });
    fs.symlinkSync(path.join(from, entry), target);
  }
}

/** What `mcp-migrate apply` (the built CLI) did to a copy: its exit code and output (an exit 1 is a result, not an error). */
export interface ApplyRun {
  code: number;
  output: string;
}

/** Runs `mcp-migrate apply <paths> --store redis --force` (the built CLI) in `dir`. */
export async function runApply(dir: string, paths: readonly string[], extra: readonly string[] = []): Promise<ApplyRun> {
  try {
    const run = await promisify(execFile)(process.execPath, [CLI_ENTRY, 'apply', ...paths, '--store', 'redis', '--force', ...extra], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, output: run.stdout + run.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/**
 * Starts `count` replicas of a server: `node <args>` in `dir`, each on a free loopback port given to
 * it by `env(port)` (with `MCP_MIGRATE_STORE=storeUrl` when a store is given); resolves once each
 * port accepts connections (bounded: 20 s per replica).
 */
export async function startServerReplicas(
  dir: string,
  count: number,
  name: string,
  opts: {
    args: readonly string[];
    env: (port: number) => Record<string, string>;
    storeUrl?: string;
    /** Ports the server's code listens on whatever its environment says: each becomes the replica's free port. */
    fixedPorts?: readonly number[];
  },
): Promise<{ process: ManagedProcess; hostPort: string }[]> {
  return await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const port = await getFreePort();
      const env: Record<string, string> = { ...opts.env(port), ...(opts.storeUrl ? { MCP_MIGRATE_STORE: opts.storeUrl } : {}) };
      const preload: string[] = [];
      if (opts.fixedPorts?.length) {
        env.TEST_LISTEN_PORTS = opts.fixedPorts.map((p) => `${p}=${port}`).join(',');
        preload.push('--import', LISTEN_PORT_PRELOAD);
      }
      const proc = spawnManaged(process.execPath, [...preload, ...opts.args], { name: `${name}-${i}`, cwd: dir, env, maxOutputBytes: 256 * 1024 });
      await proc.waitForPort(port, 20_000);
      return { process: proc, hostPort: `127.0.0.1:${port}` };
    }),
  );
}
