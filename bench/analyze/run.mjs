#!/usr/bin/env node
/**
 * Analyze benchmark: how `mcp-migrate analyze` compares with `tsc --noEmit` on the same tree.
 *
 *   npm run build && npm run bench:analyze [-- --runs 3 --domains 50 --keep]
 *
 * 1. Generates a realistic 2,000-file TypeScript MCP server (see ./generate.mjs) in a temporary
 *    directory and checks it compiles (`tsc --noEmit` exit 0).
 * 2. Runs, `--runs` times, alternately:
 *      node dist/src/cli/index.js analyze <tree> --format json
 *      node node_modules/typescript/bin/tsc --noEmit -p <tree>
 *    measuring each process's wall time (monotonic clock around spawn → exit, milliseconds) and
 *    peak resident set size (GNU `/usr/bin/time -v` "Maximum resident set size"; without it, the
 *    highest `VmHWM` read from `/proc/<pid>/status` while polling every 10 ms; else not measured).
 * 3. Prints a Markdown table (per run and median, ratio analyze/tsc) and the findings.
 *
 * Exit status: 0 on success; 1 if the tree does not compile, analyze fails (exit 2) or analyze does
 * not report what was planted.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateTree } from './generate.mjs';
import { mb, measurer, median, ratio, sec } from './measure.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(REPO, 'dist/src/cli/index.js');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    domains: { type: 'string', default: '50' },
    keep: { type: 'boolean', default: false },
  },
});
const RUNS = Number(opts.runs);
const DOMAINS = Number(opts.domains);

if (!existsSync(CLI)) {
  console.error(`bench: ${CLI} not found; run \`npm run build\` first.`);
  process.exit(1);
}

async function main() {
  const { useGnuTime, measure } = await measurer(REPO);
  const tree = mkdtempSync(join(tmpdir(), 'mcp-migrate-bench-'));
  let failed = false;
  try {
    const { files, planted } = generateTree(tree, { domains: DOMAINS, nodeModules: join(REPO, 'node_modules') });
    const tscVersion = JSON.parse(readFileSync(join(REPO, 'node_modules/typescript/package.json'), 'utf8')).version;
    console.log(`Tree: ${files} TypeScript files (${DOMAINS} domains), generated in a temporary directory.`);
    console.log(
      `Machine: ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; ` +
        `Node ${process.version}; TypeScript ${tscVersion}; peak RSS from ${useGnuTime ? 'GNU time -v' : '/proc VmHWM polling'}.`,
    );

    const analyzeArgs = [CLI, 'analyze', tree, '--format', 'json'];
    const tscArgs = [TSC, '--noEmit', '-p', tree];
    const rows = [];
    let report;
    for (let i = 1; i <= RUNS; i++) {
      const a = await measure(process.execPath, analyzeArgs);
      // Exit 1 only means findings reached --fail-on (default error); 2 is a failure.
      if (a.code !== 0 && a.code !== 1) throw new Error(`analyze exited ${a.code}:\n${a.stderr}`);
      report = JSON.parse(a.stdout);
      const t = await measure(process.execPath, tscArgs);
      if (t.code !== 0) throw new Error(`the generated tree does not compile (tsc exit ${t.code}):\n${t.stdout.slice(0, 4000)}`);
      rows.push({ run: i, a, t });
      console.error(`run ${i}/${RUNS}: analyze ${sec(a.wallMs)} s, tsc ${sec(t.wallMs)} s`);
    }

    const med = {
      aWall: median(rows.map((r) => r.a.wallMs)),
      tWall: median(rows.map((r) => r.t.wallMs)),
      aCpu: rows.every((r) => r.a.cpuMs !== null) ? median(rows.map((r) => r.a.cpuMs)) : null,
      tCpu: rows.every((r) => r.t.cpuMs !== null) ? median(rows.map((r) => r.t.cpuMs)) : null,
      aRss: rows.every((r) => r.a.rss !== null) ? median(rows.map((r) => r.a.rss)) : null,
      tRss: rows.every((r) => r.t.rss !== null) ? median(rows.map((r) => r.t.rss)) : null,
    };
    console.log('');
    console.log(
      '| Run | analyze wall (s) | analyze CPU (s) | analyze peak RSS (MiB) | tsc --noEmit wall (s) | tsc CPU (s) | ' +
        'tsc peak RSS (MiB) | wall analyze/tsc | RSS analyze/tsc |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    const cpu = (ms) => (ms === null ? 'n/a' : sec(ms));
    for (const { run, a, t } of rows) {
      console.log(
        `| ${run} | ${sec(a.wallMs)} | ${cpu(a.cpuMs)} | ${mb(a.rss)} | ${sec(t.wallMs)} | ${cpu(t.cpuMs)} | ${mb(t.rss)} | ` +
          `${ratio(a.wallMs, t.wallMs)} | ${ratio(a.rss, t.rss)} |`,
      );
    }
    console.log(
      `| **median** | **${sec(med.aWall)}** | **${cpu(med.aCpu)}** | **${mb(med.aRss)}** | **${sec(med.tWall)}** | ` +
        `**${cpu(med.tCpu)}** | **${mb(med.tRss)}** | **${ratio(med.aWall, med.tWall)}** | **${ratio(med.aRss, med.tRss)}** |`,
    );
    console.log('(median row: median of each column; ratios there are ratios of the medians)');

    const s = report.summary;
    console.log('');
    console.log(
      `Findings: ${s.findings} (${s.bySeverity.error} error, ${s.bySeverity.warning} warning, ${s.bySeverity.note} note) ` +
        `in ${s.files} files analyzed (engine-reported analysis time of the last run: ${sec(s.durationMs)} s); ` +
        `verdict: ${report.verdict.kind}.`,
    );
    const byRule = {};
    for (const f of report.findings) byRule[f.ruleId] = (byRule[f.ruleId] ?? 0) + 1;
    console.log('');
    console.log('| Rule | found | planted |');
    console.log('|---|---:|---:|');
    for (const id of [...new Set([...Object.keys(planted), ...Object.keys(byRule)])].sort()) {
      console.log(`| ${id} | ${byRule[id] ?? 0} | ${planted[id] ?? 0} |`);
      if ((byRule[id] ?? 0) !== (planted[id] ?? 0)) failed = true;
    }
    if (s.files !== files) {
      console.log(`\nanalyze saw ${s.files} files, ${files} were generated.`);
      failed = true;
    }
    if (failed) console.error('bench: analyze did not report exactly the planted state (see the table above).');
  } finally {
    if (opts.keep) console.error(`bench: tree kept in ${tree}`);
    else rmSync(tree, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
