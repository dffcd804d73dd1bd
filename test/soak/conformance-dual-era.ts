/**
 * The official MCP conformance suite, both eras, against server-everything directly and through
 * `mcp-migrate proxy` (issue #8's must-show run).
 *
 *   npm run build && npx tsx test/soak/conformance-dual-era.ts [--replicas 3] [--json results.json]
 *
 * Starts a real Redis, one server-everything (Streamable HTTP), N proxy replicas (the built CLI,
 * `--upstream` that server-everything, Redis store) and nginx round-robin over them, then runs
 * `@modelcontextprotocol/conformance` (default 0.2.0-alpha.12; Node 22 from npm via `npx -p node@22`):
 *
 *   1. `--requirements 2025-11-25` against server-everything directly;
 *   2. `--requirements 2025-11-25` through nginx and the replicas;
 *   3. `--requirements 2026-07-28` against server-everything directly (it speaks no 2026-07-28: the baseline);
 *   4. `--requirements 2026-07-28` through nginx and the replicas (the 2026-07-28 front).
 *
 * Prints one Markdown table per revision (scenario × direct/proxy, with passed/failed check counts)
 * and checks the claims (exit code 1 otherwise):
 *   - 2025-11-25: every scenario that passes directly passes through the proxy;
 *   - `server-session-lifecycle` (run, not scored, by `--requirements 2025-11-25`) passes through the
 *     proxy although server-everything fails it alone;
 *   - 2026-07-28: every scenario that passes directly passes through the proxy.
 * Needs the npm registry (the suite and Node 22), `redis-server` and `nginx`. Not part of `npm test`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEverythingHttp, startNginx, startProxyReplica, startRedis, stopAllProcesses } from '../helpers/index.js';

const { values: flags } = parseArgs({
  options: {
    replicas: { type: 'string', default: '3' },
    json: { type: 'string' },
    revisions: { type: 'string', default: '2025-11-25,2026-07-28' },
  },
});
const CONFORMANCE = process.env.CONFORMANCE_PACKAGE ?? '@modelcontextprotocol/conformance@0.2.0-alpha.12';
const TIMEOUT_MS = Number(process.env.CONFORMANCE_TIMEOUT_MS ?? 1_200_000);
const REPLICAS = Number(flags.replicas);

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

interface ScenarioResult {
  scenario: string;
  passed: number;
  failed: number;
  warnings: number;
  /** No FAILURE check (warnings and skips allowed), as the suite's own summary counts a pass. */
  ok: boolean;
  failures: string[];
}

interface Run {
  label: string;
  revision: string;
  exitCode: number | null;
  scenarios: Map<string, ScenarioResult>;
  /** Scenarios the suite reports as run but not scored for the revision. */
  unscored: Set<string>;
  output: string;
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

/** `server-<scenario>-<ISO timestamp with - for : and .>` → scenario. */
function scenarioOf(dir: string): string {
  return path
    .basename(dir)
    .replace(/^server-/, '')
    .replace(/-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/, '');
}

function runConformance(label: string, url: string, revision: string): Promise<Run> {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-conformance-'));
  return new Promise((resolve) => {
    const args = ['-y', '-p', 'node@22', '-p', CONFORMANCE, '--', 'conformance', 'server', '--url', url, '--requirements', revision, '-o', outDir];
    const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
    child.on('exit', (exitCode) => {
      clearTimeout(timer);
      const scenarios = new Map<string, ScenarioResult>();
      for (const file of walk(outDir)) {
        if (path.basename(file) !== 'checks.json') continue;
        const scenario = scenarioOf(path.dirname(file));
        const checks = JSON.parse(fs.readFileSync(file, 'utf8')) as Check[];
        const failed = checks.filter((c) => c.status === 'FAILURE');
        scenarios.set(scenario, {
          scenario,
          passed: checks.filter((c) => c.status === 'SUCCESS').length,
          failed: failed.length,
          warnings: checks.filter((c) => c.status === 'WARNING').length,
          ok: failed.length === 0,
          failures: failed.map((c) => `${c.id}: ${(c.errorMessage ?? '').slice(0, 160)}`),
        });
      }
      const unscored = new Set<string>();
      const tail = output.slice(output.indexOf('Not scored'));
      for (const m of tail.matchAll(/^\s+[✓✗] (\S+) \(/gmu)) unscored.add(m[1]!);
      fs.rmSync(outDir, { recursive: true, force: true });
      resolve({ label, revision, exitCode, scenarios, unscored, output });
    });
  });
}

function cell(r: ScenarioResult | undefined): string {
  if (!r) return 'not run';
  return `${r.ok ? 'PASS' : 'FAIL'} (${r.passed}/${r.passed + r.failed}${r.warnings ? `, ${r.warnings} warn` : ''})`;
}

function table(direct: Run, proxy: Run): string {
  const names = [...new Set([...direct.scenarios.keys(), ...proxy.scenarios.keys()])];
  const lines = [`| Scenario | server-everything directly | through ${REPLICAS} replicas behind nginx |`, '|---|---|---|'];
  for (const n of names) {
    const unscored = direct.unscored.has(n) || proxy.unscored.has(n) ? ' (not scored)' : '';
    lines.push(`| \`${n}\`${unscored} | ${cell(direct.scenarios.get(n))} | ${cell(proxy.scenarios.get(n))} |`);
  }
  const count = (r: Run) => {
    const scored = [...r.scenarios.values()].filter((s) => !r.unscored.has(s.scenario));
    const checks = scored.reduce((a, s) => [a[0]! + s.passed, a[1]! + s.failed], [0, 0]);
    return `${scored.filter((s) => s.ok).length}/${scored.length} scenarios, ${checks[0]}/${checks[0]! + checks[1]!} checks`;
  };
  lines.push(`| **scored total** | ${count(direct)} | ${count(proxy)} |`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  const revisions = flags.revisions.split(',').map((s) => s.trim());
  const redis = await startRedis();
  const claims: { claim: string; ok: boolean }[] = [];
  const results: Record<string, unknown> = { conformance: CONFORMANCE, replicas: REPLICAS, date: new Date().toISOString() };
  try {
    const everything = await startEverythingHttp({ name: 'conformance-everything' });
    const replicas = [];
    for (let i = 0; i < REPLICAS; i++) {
      replicas.push(await startProxyReplica({ store: redis.url, upstream: everything.url, name: `proxy-${i + 1}` }));
    }
    const nginx = await startNginx({ upstreams: replicas.map((r) => r.hostPort), path: '/mcp' });
    console.log(`${CONFORMANCE}; server-everything ${everything.url}; ${REPLICAS} replicas behind nginx ${nginx.url}\n`);
    for (const revision of revisions) {
      const direct = await runConformance('direct', everything.url, revision);
      const proxied = await runConformance('proxy', nginx.url, revision);
      for (const r of [direct, proxied]) {
        if (r.scenarios.size === 0) console.log(`${r.label} ${revision}: no results (exit ${r.exitCode})\n${r.output.slice(-3000)}`);
      }
      console.log(`### --requirements ${revision}\n\n${table(direct, proxied)}\n`);
      for (const r of [direct, proxied]) {
        const failing = [...r.scenarios.values()].filter((s) => !s.ok);
        if (failing.length === 0) continue;
        console.log(`<details><summary>${r.label}: failing checks</summary>\n`);
        for (const s of failing) for (const f of s.failures) console.log(`- \`${s.scenario}\` ${f}`);
        console.log('\n</details>\n');
      }
      const lost = [...direct.scenarios.values()].filter((s) => s.ok && !proxied.scenarios.get(s.scenario)?.ok).map((s) => s.scenario);
      claims.push({ claim: `${revision}: every scenario passing directly passes through the proxy${lost.length ? ` (lost: ${lost.join(', ')})` : ''}`, ok: lost.length === 0 && proxied.scenarios.size > 0 });
      if (revision === '2025-11-25') {
        const d = direct.scenarios.get('server-session-lifecycle');
        const p = proxied.scenarios.get('server-session-lifecycle');
        claims.push({ claim: `server-session-lifecycle: fails directly (${cell(d)}), passes through the proxy (${cell(p)})`, ok: d?.ok === false && p?.ok === true });
      }
      results[revision] = {
        direct: Object.fromEntries(direct.scenarios),
        proxy: Object.fromEntries(proxied.scenarios),
        unscored: [...new Set([...direct.unscored, ...proxied.unscored])],
      };
    }
  } finally {
    await stopAllProcesses();
    await redis.stop();
  }
  for (const c of claims) console.log(`${c.ok ? 'OK  ' : 'FAIL'} ${c.claim}`);
  if (flags.json) fs.writeFileSync(flags.json, JSON.stringify({ ...results, claims }, null, 2));
  return claims.every((c) => c.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error(err);
    await stopAllProcesses();
    process.exit(1);
  },
);
