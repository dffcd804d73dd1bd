#!/usr/bin/env node
/**
 * Bundle benchmark: `mcp-migrate analyze` on a server shipped as one bundle, against
 * `tsc --noEmit --allowJs --checkJs false` on the same file.
 *
 *   npm run build && node bench/analyze/bundle.mjs [-- --runs 3 --keep]
 *
 * 1. Bundles fixtures/bundle/server.ts (a Streamable HTTP server with a transport registry and a
 *    module-level value its tool writes) with esbuild, the MCP SDK, express and zod inside, into one
 *    ESM file in a temporary directory.
 * 2. Runs, `--runs` times, alternately (each in the bundle's directory, so no tsconfig applies):
 *      node dist/src/cli/index.js analyze server.mjs --format json --fail-on none
 *      node node_modules/typescript/bin/tsc --noEmit --allowJs --checkJs false server.mjs
 *    measuring wall time, CPU time and peak RSS (./measure.mjs).
 * 3. Prints a Markdown table (per run and median, ratios analyze/tsc) and where the findings were
 *    attributed: the application's own code, or a bundled package.
 *
 * Exit status: 0 on success; 1 if a command fails or a finding is attributed to the wrong side (an
 * application finding with a dependency, or the SDK's `_loggingLevels` without one).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { mb, measurer, median, ratio, sec } from './measure.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(REPO, 'dist/src/cli/index.js');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } } });
const RUNS = Number(opts.runs);

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-migrate-bench-bundle-'));
  let failed = false;
  try {
    const bundle = join(dir, 'server.mjs');
    await build({ entryPoints: [join(REPO, 'fixtures/bundle/server.ts')], bundle: true, platform: 'node', format: 'esm', outfile: bundle, logLevel: 'silent' });
    const { useGnuTime, measure } = await measurer(dir);
    console.log(`Bundle: fixtures/bundle/server.ts + @modelcontextprotocol/sdk + express + zod, esbuild ESM, ${(statSync(bundle).size / 2 ** 20).toFixed(1)} MiB.`);
    console.log(`Machine: ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; Node ${process.version}; CPU time and peak RSS ${useGnuTime ? 'from GNU time -v' : 'n/a (no GNU time)'}.`);
    const rows = [];
    let report;
    for (let i = 1; i <= RUNS; i++) {
      const a = await measure(process.execPath, [CLI, 'analyze', 'server.mjs', '--format', 'json', '--fail-on', 'none']);
      if (a.code !== 0) throw new Error(`analyze exited ${a.code}:\n${a.stderr}`);
      report = JSON.parse(a.stdout);
      const t = await measure(process.execPath, [TSC, '--noEmit', '--allowJs', '--checkJs', 'false', 'server.mjs']);
      if (t.code !== 0) throw new Error(`tsc exited ${t.code}:\n${t.stdout.slice(0, 2000)}`);
      rows.push({ run: i, a, t });
      console.error(`run ${i}/${RUNS}: analyze ${sec(a.wallMs)} s, tsc ${sec(t.wallMs)} s`);
    }
    const col = (pick) => (rows.every((r) => pick(r) !== null) ? median(rows.map(pick)) : null);
    const cpu = (ms) => (ms === null ? 'n/a' : sec(ms));
    console.log('\n| Run | analyze wall (s) | analyze CPU (s) | analyze peak RSS (MiB) | tsc wall (s) | tsc CPU (s) | tsc peak RSS (MiB) | wall analyze/tsc | CPU analyze/tsc | RSS analyze/tsc |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const line = (label, aw, ac, ar, tw, tc, tr) =>
      console.log(`| ${label} | ${sec(aw)} | ${cpu(ac)} | ${mb(ar)} | ${sec(tw)} | ${cpu(tc)} | ${mb(tr)} | ${ratio(aw, tw)} | ${ratio(ac, tc)} | ${ratio(ar, tr)} |`);
    for (const { run, a, t } of rows) line(run, a.wallMs, a.cpuMs, a.rss, t.wallMs, t.cpuMs, t.rss);
    line('**median**', col((r) => r.a.wallMs), col((r) => r.a.cpuMs), col((r) => r.a.rss), col((r) => r.t.wallMs), col((r) => r.t.cpuMs), col((r) => r.t.rss));

    const state = report.findings.filter((f) => f.category !== 'server-initiated-request');
    console.log('\n| Finding | attributed to | fix |');
    console.log('|---|---|---|');
    for (const f of state) console.log(`| \`${f.symbol}\` (${f.ruleId}) | ${f.dependency ? `\`${f.dependency.name}\`` : 'application'} | ${f.fix} |`);
    const notes = report.findings.length - state.length;
    console.log(`\n${notes} server-initiated-request notes; verdict \`${report.verdict.kind}\`, decided by ${report.verdict.decidingFindings.map((i) => `\`${report.findings[i].symbol}\``).join(', ')}.`);
    const app = state.filter((f) => !f.dependency).map((f) => f.symbol).sort();
    failed = JSON.stringify(app) !== JSON.stringify(['currentProject', 'sessionIdGenerator', 'transports']) ||
      !state.some((f) => f.symbol === '_loggingLevels' && f.dependency?.name === '@modelcontextprotocol/sdk');
    if (failed) console.error('bench: findings were not attributed as expected (see the table above).');
  } finally {
    if (opts.keep) console.error(`bench: bundle kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
