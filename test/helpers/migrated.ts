/**
 * server-everything's shipped JavaScript migrated by `mcp-migrate apply --store redis` (the built CLI, as
 * a user runs it), in a temporary directory, and replicas of it. The copy is not a git repository: apply
 * says so and goes on (`--force`). Its `node_modules` links every dependency of this repository (the
 * `@mcp-migrate` scope among them, a link to `packages/runtime`), so the generated
 * `import … from '@mcp-migrate/runtime'` resolves to the build under test.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './everything.js';
import { getFreePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { CLI_ENTRY } from './proxy.js';

const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything');

export interface MigratedEverything {
  /** The temporary directory holding the migrated copy (`dist/`, `package.json`, `node_modules/`). */
  dir: string;
  /** What `apply` printed (stdout, then stderr). */
  applyOutput: string;
  /** Deletes the directory. */
  remove(): void;
}

/** Copies server-everything into a new temporary directory named after `prefix` and runs `apply --store redis` on it. */
export async function migrateEverything(prefix: string): Promise<MigratedEverything> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mcp-migrate-${prefix}-`));
  fs.cpSync(path.join(EVERYTHING, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(EVERYTHING, 'package.json'), path.join(dir, 'package.json'));
  const run = await promisify(execFile)(process.execPath, [CLI_ENTRY, 'apply', '.', '--store', 'redis', '--force'], { cwd: dir });
  const nm = path.join(dir, 'node_modules');
  fs.mkdirSync(nm);
  for (const entry of fs.readdirSync(path.join(REPO_ROOT, 'node_modules'))) {
    if (entry.startsWith('.')) continue;
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules', entry), path.join(nm, entry));
  }
  return { dir, applyOutput: run.stdout + run.stderr, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
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
