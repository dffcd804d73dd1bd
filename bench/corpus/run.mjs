#!/usr/bin/env node
/**
 * Corpus benchmark: recall and precision of `mcp-migrate analyze` on labelled real MCP servers.
 *
 *   npm run build
 *   MIRROR_DIR=<mirrors> npm run bench:corpus [-- --json] [--set shared|own] [--shared DIR] [--timeout S]
 *   npm run bench:corpus -- --mirrors <mirrors>
 *
 * Two sets of labels, no third-party source in this repository (see bench/corpus/README.md):
 * - `shared`: `../shared/corpus/labels.json` (relative to the repository root; `--shared DIR` or
 *   `MCP_CORPUS_SHARED` point elsewhere), materialized by that folder's `materialize.sh`;
 * - `own`: `bench/corpus/labels/*.json`, materialized by ./materialize.mjs.
 * Both need git mirrors laid out as `<mirrors>/<owner>+<name>/repo` holding the pinned commits. Trees are
 * written to `<os.tmpdir()>/mcp-corpus` and reused by later runs. Every labelled line is checked against its
 * hash before scoring; a missing mirror or a changed line is an error (exit 1).
 *
 * Scoring is `../shared/corpus/score.py --labels <labels> --json` run from the repository root, which runs
 * `node dist/src/cli/index.js analyze <tree> --format json --fail-on none` once per tree. This script builds
 * nothing: it exits 1 when `dist/` is missing. Output: one table (set x recall, typed recall, precision,
 * recall per kind S1..S4, analyzer seconds) followed by every miss and false positive; `--json` prints the
 * score.py results of each set plus the totals instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadLabels, materialize } from './materialize.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(REPO, 'dist/src/cli/index.js');
const OWN_LABELS = join(REPO, 'bench/corpus/labels');
const KINDS = ['S1', 'S2', 'S3', 'S4'];

const { values: opts } = parseArgs({
  options: {
    mirrors: { type: 'string' },
    shared: { type: 'string' },
    set: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '300' },
  },
});

/** Resolves the inputs, failing with a message that says what to do. */
function setup() {
  if (!existsSync(CLI)) throw new Error(`${CLI} not found; run \`npm run build\` first (this benchmark builds nothing).`);
  const mirrors = opts.mirrors ?? process.env.MIRROR_DIR;
  if (!mirrors) throw new Error('no mirrors: pass --mirrors DIR or set MIRROR_DIR (a folder of <owner>+<name>/repo git mirrors).');
  if (!existsSync(mirrors)) throw new Error(`mirror folder ${mirrors} does not exist.`);
  const shared = resolve(REPO, opts.shared ?? process.env.MCP_CORPUS_SHARED ?? '../shared/corpus');
  for (const f of ['score.py', 'materialize.sh', 'labels.json']) {
    if (!existsSync(join(shared, f))) throw new Error(`${join(shared, f)} not found; pass --shared DIR (the shared corpus folder).`);
  }
  const sets = opts.set ?? ['shared', 'own'];
  const unknown = sets.filter((s) => s !== 'shared' && s !== 'own');
  if (unknown.length) throw new Error(`unknown --set ${unknown.join(', ')} (expected shared or own).`);
  return { mirrors: resolve(mirrors), shared, sets, dest: join(tmpdir(), 'mcp-corpus') };
}

/** Runs the shared materialize.sh; throws unless every repository was found and every label line matched. */
function materializeShared({ shared, mirrors, dest }) {
  const r = spawnSync('bash', [join(shared, 'materialize.sh'), mirrors, dest], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const out = `${r.stdout}${r.stderr}`.trim();
  if (r.status !== 0) throw new Error(`materialize.sh exited ${r.status}:\n${out}`);
  const m = /repos missing from .*?: (.*); label lines not matching: (\d+)/.exec(out);
  if (!m) throw new Error(`unexpected materialize.sh output:\n${out}`);
  if (m[1] !== 'none') throw new Error(`shared set: mirrors missing for ${m[1]}`);
  if (m[2] !== '0') throw new Error(`shared set: ${m[2]} labelled lines do not match their hash`);
  return join(shared, 'labels.json');
}

/** Materializes this repository's set and writes its merged labels to a temporary file (returned). */
async function materializeOwn({ mirrors, dest }) {
  const entries = loadLabels(OWN_LABELS);
  const { missingRepos, mismatches } = await materialize(entries, mirrors, dest);
  if (missingRepos.length) throw new Error(`own set: mirrors missing for ${missingRepos.join(', ')}`);
  if (mismatches.length) throw new Error(`own set: labelled lines not matching their hash:\n  ${mismatches.join('\n  ')}`);
  const merged = join(tmpdir(), `mcp-corpus-own-labels-${process.pid}.json`);
  writeFileSync(merged, JSON.stringify(entries));
  return merged;
}

/** Runs score.py on one labels file and returns its JSON result (recall, precision, misses, false positives...). */
function score({ shared, dest }, labels) {
  const args = [join(shared, 'score.py'), '--labels', labels, '--corpus-dir', dest, '--json', '--timeout', opts.timeout];
  const r = spawnSync('python3', args, { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`score.py exited ${r.status}`);
  return JSON.parse(r.stdout);
}

/** Sums per-set score.py results into one row (counts added, ratios recomputed). */
function total(results) {
  const rs = Object.values(results);
  const sum = (f) => rs.reduce((n, r) => n + f(r), 0);
  const labels = sum((r) => r.labels);
  const tp = sum((r) => r.tp);
  const fp = sum((r) => r.fp);
  const perKind = Object.fromEntries(
    KINDS.map((k) => {
      const [hit, all] = rs.reduce(([h, a], r) => {
        const [x, y] = (r.per_kind[k] ?? '0/0').split('/').map(Number);
        return [h + x, a + y];
      }, [0, 0]);
      return [k, `${hit}/${all}`];
    }),
  );
  return {
    recall: labels ? sum((r) => r.hit) / labels : 0,
    typed_recall: labels ? sum((r) => r.typed_recall * r.labels) / labels : 0,
    precision: tp + fp ? tp / (tp + fp) : 0,
    labels, hit: sum((r) => r.hit), tp, fp,
    per_kind: perKind,
    analyzer_seconds: sum((r) => r.analyzer_seconds),
  };
}

const pct = (x) => x.toFixed(3);

function printTable(results, files, load) {
  console.log(`Load average at start: ${load.map((l) => l.toFixed(2)).join(' ')}; analyzer seconds are wall time.`);
  console.log('');
  console.log(`| Set | files | labels | recall | typed recall | precision (tp/fp) | ${KINDS.join(' | ')} | analyzer s |`);
  console.log(`|---|---:|---:|---:|---:|---:|${KINDS.map(() => '---:').join('|')}|---:|`);
  const rows = { ...results, ...(Object.keys(results).length > 1 ? { total: total(results) } : {}) };
  for (const [name, r] of Object.entries(rows)) {
    const kinds = KINDS.map((k) => r.per_kind[k] ?? '0/0').join(' | ');
    console.log(
      `| ${name} | ${files[name] ?? Object.values(files).reduce((a, b) => a + b, 0)} | ${r.labels} | ${pct(r.recall)} | ` +
        `${pct(r.typed_recall)} | ${pct(r.precision)} (${r.tp}/${r.fp}) | ${kinds} | ${r.analyzer_seconds.toFixed(1)} |`,
    );
  }
  for (const [name, r] of Object.entries(results)) {
    console.log(`\n${name}: ${r.misses.length} misses, ${r.false_positives.length} false positives`);
    for (const m of r.misses) console.log(`  miss ${m}`);
    for (const f of r.false_positives) console.log(`  fp   ${f}`);
    for (const e of r.errors) console.log(`  error ${e}`);
  }
}

async function main() {
  const load = loadavg();
  const cfg = setup();
  const labelFiles = {};
  if (cfg.sets.includes('shared')) labelFiles.shared = materializeShared(cfg);
  if (cfg.sets.includes('own')) labelFiles.own = await materializeOwn(cfg);
  const results = {};
  const files = {};
  try {
    for (const [name, labels] of Object.entries(labelFiles)) {
      console.error(`bench:corpus: scoring the ${name} set (runs the analyzer once per tree; minutes of CPU)...`);
      results[name] = score(cfg, labels);
      files[name] = JSON.parse(readFileSync(labels, 'utf8')).length;
    }
  } finally {
    if (labelFiles.own) rmSync(labelFiles.own, { force: true });
  }
  if (opts.json) console.log(JSON.stringify({ sets: results, total: total(results) }, null, 1));
  else printTable(results, files, load);
  if (Object.values(results).some((r) => r.errors.length)) process.exitCode = 1;
}

main().catch((err) => {
  console.error(`bench:corpus: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
