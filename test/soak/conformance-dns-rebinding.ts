/**
 * The MCP conformance suite's `dns-rebinding-protection` scenario, run through `mcp-migrate proxy`
 * (Redis store, server-everything over Streamable HTTP upstream).
 *
 *   npx tsx test/soak/conformance-dns-rebinding.ts
 *
 * Needs the npm registry: the suite (@modelcontextprotocol/conformance@0.1.16) requires Node ≥ 22,
 * which `npx -p node@22` fetches without touching the system Node. Not part of `npm test` for that
 * reason (network, and a first run downloads ~100 MB).
 *
 * The scenario POSTs `initialize` twice: with `Host`/`Origin` of evil.example.com (must be 4xx) and
 * with the server's own localhost host (must be 2xx). Two proxy configurations are run:
 *   1. `--allowed-origins http://127.0.0.1:<port>,http://localhost:<port>`: expected to PASS;
 *   2. the default: a proxy listening on loopback accepts only loopback origins, so it is expected
 *      to PASS as well.
 * Exit code 0 when both pass.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getFreePort, startEverythingHttp, startProxyReplica, startRedis, stopAllProcesses } from '../helpers/index.js';

const CONFORMANCE = process.env.CONFORMANCE_PACKAGE ?? '@modelcontextprotocol/conformance@0.1.16';
const TIMEOUT_MS = Number(process.env.CONFORMANCE_TIMEOUT_MS ?? 300_000);

function runConformance(url: string): Promise<{ code: number | null; output: string; checks: { id: string; status: string; detail?: string }[] }> {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-conformance-'));
  return new Promise((resolve) => {
    const child = spawn(
      'npx',
      ['-y', '-p', 'node@22', '-p', CONFORMANCE, '--', 'conformance', 'server', '--url', url, '--scenario', 'dns-rebinding-protection', '-o', outDir],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const checks: { id: string; status: string; detail?: string }[] = [];
      for (const file of walk(outDir)) {
        if (!file.endsWith('checks.json')) continue;
        for (const c of JSON.parse(fs.readFileSync(file, 'utf8')) as { id: string; status: string; errorMessage?: string; details?: { statusCode?: number } }[]) {
          checks.push({ id: c.id, status: c.status, detail: c.errorMessage ?? (c.details?.statusCode !== undefined ? `HTTP ${c.details.statusCode}` : undefined) });
        }
      }
      fs.rmSync(outDir, { recursive: true, force: true });
      resolve({ code, output, checks });
    });
  });
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

async function main(): Promise<number> {
  const redis = await startRedis();
  try {
    const everything = await startEverythingHttp({ name: 'conformance-everything' });
    const port = await getFreePort();
    const guarded = await startProxyReplica({
      store: redis.url,
      upstream: everything.url,
      port,
      name: 'proxy-allowed-origins',
      extraArgs: ['--allowed-origins', `http://127.0.0.1:${port},http://localhost:${port}`],
    });
    const open = await startProxyReplica({ store: redis.url, upstream: everything.url, name: 'proxy-any-origin' });

    const a = await runConformance(guarded.url);
    const b = await runConformance(open.url);
    const show = (title: string, r: typeof a): void => {
      console.log(`\n${title}: conformance exit code ${r.code}`);
      if (r.checks.length === 0) console.log(r.output.slice(-3000));
      for (const c of r.checks) console.log(`  ${c.status.padEnd(8)} ${c.id}${c.detail ? `  (${c.detail})` : ''}`);
    };
    console.log(`${CONFORMANCE} --scenario dns-rebinding-protection through mcp-migrate proxy (Redis, server-everything HTTP upstream)`);
    show(`1. --allowed-origins http://127.0.0.1:${port},http://localhost:${port}`, a);
    show('2. default (no --allowed-origins)', b);
    const passed = a.code === 0 && a.checks.length > 0 && a.checks.every((c) => c.status === 'SUCCESS');
    console.log(`\nresult: configuration 1 ${passed ? 'PASSED' : 'FAILED'}; configuration 2 (default) ${b.code === 0 ? 'PASSED' : 'FAILED'}`);
    return passed && b.code === 0 ? 0 : 1;
  } finally {
    await stopAllProcesses();
    await redis.stop();
  }
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error(err);
    await stopAllProcesses();
    process.exit(1);
  },
);
