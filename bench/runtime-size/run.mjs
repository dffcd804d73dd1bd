#!/usr/bin/env node
/**
 * What a migrated server adds to its production install: `npm install --omit=dev` of a server that
 * depends on `@modelcontextprotocol/sdk` (as the SDK example servers do), with and without what
 * `mcp-migrate apply` adds to its package.json, and the size of `node_modules` in each.
 *
 *   npm run build && node bench/runtime-size/run.mjs [--sdk 1.32.2 | --server <name>@<version>] [--keep]
 *
 * `--server` takes a published server instead of the SDK alone (`--server supergateway@4.0.0`, a server
 * apply migrates): its production dependencies are the unmigrated install, and apply's migrated copy
 * keeps them and adds `@mcp-migrate/runtime`.
 *
 * 1. `npm pack` of `packages/runtime` (`@mcp-migrate/runtime`) and of the repository root
 *    (`mcp-migrate`, the CLI, which apply added to package.json before the runtime was its own package).
 * 2. In fresh temporary directories, `npm install --omit=dev --ignore-scripts` of:
 *      server          { "@modelcontextprotocol/sdk" }                                  (unmigrated)
 *      ioredis         { "ioredis" } alone                                              (the store client)
 *      migrated        server + the @mcp-migrate/runtime tarball                        (what apply adds now)
 *      migrated, old   server + the mcp-migrate tarball + ioredis                        (what apply added before)
 *    npm registry access is needed (the SDK, ioredis and their dependencies are downloaded).
 * 3. Prints a Markdown table: `du -sk node_modules` (KiB, as MB = KiB/1024), packages installed
 *    (`node_modules/**\/package.json` with a name, top-level and nested), and what each adds to the
 *    unmigrated server; then the runtime's own share: migrated − server − ioredis.
 *
 * Exit status 1 when the runtime adds more than 5 MB beyond ioredis (issue 13's budget).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: opts } = parseArgs({ options: { sdk: { type: 'string', default: '1.32.2' }, server: { type: 'string' }, keep: { type: 'boolean', default: false } } });
const BUDGET_KIB = 5 * 1024;

const work = mkdtempSync(join(tmpdir(), 'mcp-migrate-size-'));
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function pack(dir) {
  const out = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], dir));
  return join(work, out[0].filename);
}

function install(name, dependencies, overrides) {
  const dir = join(work, name);
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `size-${name}`, version: '1.0.0', private: true, type: 'module', dependencies, ...(overrides ? { overrides } : {}) }, null, 2));
  npm(['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  const nm = join(dir, 'node_modules');
  const kib = Number(execFileSync('du', ['-sk', nm], { encoding: 'utf8' }).split('\t')[0]);
  return { name, kib, packages: countPackages(nm) };
}

function countPackages(nm) {
  let n = 0;
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      const full = join(dir, e.name);
      if (e.name.startsWith('@')) walk(full);
      else if (existsSync(join(full, 'package.json'))) {
        n += 1;
        walk(join(full, 'node_modules'));
      }
    }
  };
  walk(nm);
  return n;
}

try {
  const runtimeTgz = pack(join(REPO, 'packages/runtime'));
  const cliTgz = pack(REPO);
  const ioredisRange = JSON.parse(readFileSync(join(REPO, 'packages/runtime/package.json'), 'utf8')).dependencies.ioredis;
  const at = opts.server?.lastIndexOf('@') ?? -1;
  if (opts.server && at <= 0) throw new Error(`--server wants <name>@<version>, got ${opts.server}`);
  const serverSpec = opts.server ? `${opts.server.slice(0, at)}@${opts.server.slice(at + 1)}` : `@modelcontextprotocol/sdk@${opts.sdk}`;
  const sdk = opts.server ? { [opts.server.slice(0, at)]: opts.server.slice(at + 1) } : { '@modelcontextprotocol/sdk': opts.sdk };
  const rows = [
    install('server', sdk),
    install('ioredis', { ioredis: ioredisRange }),
    install('migrated', { ...sdk, '@mcp-migrate/runtime': `file:${runtimeTgz}` }),
    // The CLI depends on the (unpublished) runtime package: the local tarball stands in for it.
    install('migrated-old', { ...sdk, 'mcp-migrate': `file:${cliTgz}`, ioredis: ioredisRange }, { '@mcp-migrate/runtime': `file:${runtimeTgz}` }),
  ];
  const [server, ioredis, migrated, old] = rows;
  const mb = (kib) => (kib / 1024).toFixed(1);
  const labels = {
    server: `unmigrated server (\`${serverSpec}\`)`,
    ioredis: '`ioredis` alone',
    migrated: 'migrated now: server + `@mcp-migrate/runtime`',
    'migrated-old': 'migrated before: server + `mcp-migrate` + `ioredis`',
  };
  console.log('| install (`npm install --omit=dev`) | node_modules MB | packages | added to the server, MB |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) console.log(`| ${labels[r.name]} | ${mb(r.kib)} | ${r.packages} | ${r.name === 'server' || r.name === 'ioredis' ? '' : mb(r.kib - server.kib)} |`);
  const own = migrated.kib - server.kib - ioredis.kib;
  console.log(`\nThe runtime's own share beyond ioredis: ${mb(own)} MB (${own} KiB); before: ${mb(old.kib - server.kib - ioredis.kib)} MB.`);
  if (own > BUDGET_KIB) {
    console.error(`over budget: the runtime adds ${mb(own)} MB beyond ioredis (budget 5 MB)`);
    process.exitCode = 1;
  }
} finally {
  if (opts.keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
