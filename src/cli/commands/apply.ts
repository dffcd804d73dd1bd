/**
 * `mcp-migrate apply [paths..] --store redis|memory`: rewrite what the analyzer found to use the
 * externalized session store (`transforms/`, `docs/apply.md`).
 *
 * Refuses a git tree with uncommitted changes unless `--force` (outside git it proceeds and says so);
 * `--dry-run` writes nothing (`--diff` prints a unified diff); otherwise writes the files, adds
 * `@mcp-migrate/runtime` to the server's package.json when rewritten code imports it, and prints a
 * summary: what changed, and what still breaks behind a round-robin load balancer (file:line in the
 * migrated text, and why), from an analysis of the rewritten text.
 *
 * Exit codes: 0 when nothing that breaks round-robin remains (ready for any number of replicas);
 * 1 when something remains (0 with `--allow-partial`); 2 for a usage error or a refused dirty tree.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createTwoFilesPatch } from 'diff';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../analyzer/types.js';
import { notShownStateless } from '../../analyzer/verdict.js';
import type { ApplyResult, StoreKind } from '../../apply/engine.js';
import { ExitCode } from '../exit-codes.js';

export interface ApplyArgs {
  paths: string[];
  store: StoreKind;
  'dry-run': boolean;
  diff: boolean;
  transforms?: string[];
  list: boolean;
  force: boolean;
  'allow-partial': boolean;
  json: boolean;
}

export const applyCommand: CommandModule<object, ApplyArgs> = {
  command: 'apply [paths..]',
  describe: 'Rewrite in-process session state to use a shared store (codemods; see docs/apply.md)',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('paths', { describe: 'Files or directories of the server to rewrite', type: 'string', array: true, default: ['.'] })
      .option('store', { describe: 'Store the rewritten code runs on (picked at start-up from MCP_MIGRATE_STORE)', choices: ['redis', 'memory'] as const, default: 'redis' as StoreKind })
      .option('dry-run', { describe: 'Write nothing; print the summary (and the diff with --diff)', type: 'boolean', default: false })
      .option('diff', { describe: 'Print a unified diff of every change', type: 'boolean', default: false })
      .option('transforms', { describe: 'Only these transforms (comma-separated ids; see --list)', type: 'string', array: true, coerce: (v: string[]) => v.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean) })
      .option('list', { describe: 'List the transforms, in the order they run, and exit', type: 'boolean', default: false })
      .option('force', { describe: 'Run even when the git tree has uncommitted changes', type: 'boolean', default: false })
      .option('allow-partial', { describe: 'Exit 0 even when findings that break round-robin remain after rewriting', type: 'boolean', default: false })
      .option('json', { describe: 'Print the outcome as JSON (changes, remaining, owner affinity) instead of the summary', type: 'boolean', default: false }) as unknown as Argv<ApplyArgs>,
  handler: async (argv) => {
    const out = (s: string): boolean => process.stdout.write(s);
    const err = (s: string): boolean => process.stderr.write(s);
    // Loaded on demand: the codemods pull in the TypeScript compiler, which `proxy` never needs.
    const [{ resolveRoot }, { planApply, writeApply }, { transforms }] = await Promise.all([
      import('../../analyzer/project.js'),
      import('../../apply/engine.js'),
      import('../../../transforms/index.js'),
    ]);
    if (argv.list) {
      for (const t of transforms) out(`${t.id.padEnd(20)} ${t.title}  [${t.fixes.join(', ')}]\n`);
      return;
    }
    try {
      const { root } = resolveRoot(argv.paths, process.cwd());
      if (!argv['dry-run']) {
        const git = await gitState(root);
        if (git === 'not-a-repo') err(`mcp-migrate apply: ${root} is not a git repository; proceeding without a clean-tree check (keep a copy to compare)\n`);
        else if (git.length > 0 && !argv.force) {
          err(`mcp-migrate apply: the git tree has uncommitted changes; commit or stash them first, or pass --force:\n${git.slice(0, 20).map((l) => `  ${l}\n`).join('')}`);
          process.exitCode = ExitCode.Usage;
          return;
        }
      }
      const result = await planApply({ paths: argv.paths, cwd: process.cwd(), store: argv.store, transforms: argv.transforms });
      if (argv.diff) out(renderDiff(result));
      if (!argv['dry-run']) await writeApply(result);
      out(argv.json ? renderJson(result, argv['dry-run']) : renderSummary(result, argv.store, argv['dry-run']));
      if ((result.remaining.length > 0 || notShown(result)) && !argv['allow-partial']) process.exitCode = ExitCode.Findings;
    } catch (e) {
      if (e instanceof UsageError) {
        err(`mcp-migrate apply: ${e.message}\n`);
        process.exitCode = ExitCode.Usage;
        return;
      }
      throw e;
    }
  },
};

async function gitState(root: string): Promise<'not-a-repo' | string[]> {
  try {
    const { stdout } = await promisify(execFile)('git', ['-C', root, 'status', '--porcelain', '--', '.']);
    return stdout.split('\n').filter(Boolean);
  } catch {
    return 'not-a-repo';
  }
}

export function renderDiff(result: ApplyResult): string {
  return [...result.changes, ...(result.packageJson ? [result.packageJson] : [])]
    .map((c) => createTwoFilesPatch(`a/${c.file}`, `b/${c.file}`, c.before, c.after, undefined, undefined, { context: 3 }))
    .join('');
}

/** Nothing remains, yet the analysis did not show the server stateless ({@link notShownStateless}): exit 1. */
function notShown(result: ApplyResult): boolean {
  return result.remaining.length === 0 && notShownStateless(result.analysis.verdict);
}

/**
 * The outcome as JSON: `{ root, dryRun, ready, affinity, changed: [{ file }], packageJson, rewritten:
 * [{ file, line, transform, ruleId, symbol, message }], remaining: [RemainingFinding], owned:
 * [OwnedFinding] }` (`ready`: nothing remains; lines as in the summary).
 */
export function renderJson(result: ApplyResult, dryRun: boolean): string {
  const rewritten = result.notes.filter((n) => n.kind === 'changed').map(({ file, line, transform, ruleId, symbol, message }) => ({ file, line, transform, ruleId, symbol, message }));
  return (
    JSON.stringify(
      {
        root: result.root,
        dryRun,
        ready: result.remaining.length === 0 && !notShown(result),
        affinity: result.affinity,
        changed: result.changes.map((c) => ({ file: c.file })),
        packageJson: result.packageJson?.file ?? null,
        rewritten,
        remaining: result.remaining,
        owned: result.owned,
      },
      null,
      2,
    ) + '\n'
  );
}

export function renderSummary(result: ApplyResult, store: StoreKind, dryRun: boolean): string {
  const lines: string[] = [];
  const verb = dryRun ? 'would change' : 'changed';
  lines.push(`mcp-migrate apply --store ${store}: ${verb} ${result.changes.length} file${result.changes.length === 1 ? '' : 's'}${result.packageJson ? ` and ${result.packageJson.file}` : ''}`);
  const changed = result.notes.filter((n) => n.kind === 'changed');
  if (changed.length) {
    lines.push('', 'Rewritten (lines of the original files):');
    for (const n of changed) lines.push(`  ${n.file}:${n.line}  [${n.transform}] ${n.message}`);
  }
  const proxy = result.after.findings.filter((f) => f.ruleId === 'server-initiated-request');
  if (result.owned.length > 0) {
    lines.push('', `Resolved by owner affinity: the registry serves each session on the replica that opened it (\`{ affinity: 'owner' }\`; other replicas forward its requests there), so ${result.owned.length} finding${result.owned.length === 1 ? '' : 's'} of per-session state stay in that process, as on one instance (marked @mcp-migrate-owner):`);
    for (const o of result.owned) lines.push(`  ${o.file}:${o.line}  ${o.ruleId} \`${o.symbol}\`: ${o.stays}`);
    lines.push('  When that replica stops, its sessions end with 404 and their clients re-initialize (MCP_MIGRATE_ON_OWNER_LOSS=replay restores them on another replica by replay instead, without this state).');
  }
  if (result.remaining.length > 0) {
    lines.push('', `Not ready for round-robin: ${result.remaining.length} finding${result.remaining.length === 1 ? '' : 's'} of the migrated code still break${result.remaining.length === 1 ? 's' : ''} behind a round-robin load balancer (marked @mcp-migrate-todo; grep -rn "@mcp-migrate-todo"):`);
    for (const r of result.remaining) lines.push(`  ${r.file}:${r.line}  ${r.ruleId} \`${r.symbol}\`: ${r.why}`);
    lines.push('', 'Fix these by hand and run apply again, or run the server behind `mcp-migrate proxy` (docs/proxy.md).');
  } else if (result.analysis.findings.some((f) => f.category !== 'server-initiated-request')) {
    const how = result.owned.length > 0 ? ' once each session is served by its owner replica' : '';
    lines.push('', `Ready for any number of replicas behind a round-robin load balancer: the analysis of the migrated code finds nothing else that breaks it${how}${proxy.length ? ` (its ${proxy.length} server-initiated request${proxy.length === 1 ? '' : 's'} are routed across replicas by the runtime)` : ''}.`);
  } else if (notShown(result)) {
    lines.push('', `Nothing rewritten, and not ready for round-robin: ${result.analysis.verdict.summary}`);
  } else {
    lines.push('', 'Nothing to rewrite: no per-session state is held in process; any replica can serve any request.');
  }
  if (result.changes.length) {
    lines.push('', `Next: ${result.packageJson ? 'install the new dependency (npm install), ' : ''}format the changed files with your formatter, and start every replica with ${store === 'redis' ? 'MCP_MIGRATE_STORE=redis://<host>:6379' : 'MCP_MIGRATE_STORE=memory (one replica only)'}.`);
  }
  return lines.join('\n') + '\n';
}
