/**
 * `mcp-migrate analyze [paths..]`: find in-process MCP session state and say how to migrate it.
 *
 * Output contract (as ESLint's CLI): the report goes to stdout, or only to `--output FILE` when given
 * (then stdout stays empty); warnings, progress and errors go to stderr. Exit codes: 0 when no finding
 * reaches `--fail-on`, 1 when one does, 2 for usage errors (missing path, no source files, bad option,
 * unwritable output) and internal errors.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { Baseline } from '../../gate/index.js';
import type { UnusedSuppressions } from '../../gate/config.js';
import { SEVERITIES, UsageError, type AnalysisResult, type Severity } from '../../analyzer/types.js';
import { REPORTER_DESCRIPTIONS, REPORTER_NAMES, reporters, type ReporterName } from '../../reporters/index.js';
import type { RuleMeta } from '../../analyzer/types.js';
import { notShownStateless } from '../../analyzer/verdict.js';
import { VERSION } from '../../version.js';
import { ExitCode } from '../exit-codes.js';

/** `--fail-on` values: a severity threshold, or `none` to never fail on findings. */
export const FAIL_ON = [...SEVERITIES, 'none'] as const;
export type FailOn = (typeof FAIL_ON)[number];
/** `--report-unused-suppressions` values. */
export const UNUSED_SUPPRESSIONS = ['error', 'warning', 'off'] as const;

export interface AnalyzeArgs {
  paths: string[];
  format: ReporterName;
  output?: string;
  /** Undefined when not given: then the configuration's `failOn`, else `error`. */
  'fail-on'?: FailOn;
  /** A configuration file; default: found from the analyzed root upward. */
  config?: string;
  /** Report only findings this baseline file does not record. */
  baseline?: string;
  /** Record the current findings in this baseline file (then report as with `--baseline` of it). */
  'write-baseline'?: string;
  /** Undefined when not given: then the configuration's `reportUnusedSuppressions`, else `warning`. */
  'report-unused-suppressions'?: UnusedSuppressions;
  /** Undefined when neither `--color` nor `--no-color` was given: then auto-detected. */
  color?: boolean;
}

/** Trees with at least this many source files get a progress line (and only on a TTY stderr). */
const PROGRESS_MIN_FILES = 200;
/** Minimum time between two progress repaints, in milliseconds. */
const PROGRESS_INTERVAL_MS = 100;

export const analyzeCommand: CommandModule<object, AnalyzeArgs> = {
  command: 'analyze [paths..]',
  describe:
    'Find in-process MCP session state (session maps, stateful transports, server-initiated requests) ' +
    'and report how the server can run behind a round-robin load balancer',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('paths', {
        describe: 'Files or directories to analyze; the report is relative to their common directory',
        type: 'string',
        array: true,
        default: ['.'],
        defaultDescription: '. (the current directory)',
      })
      .option('format', {
        alias: 'f',
        describe: `Report format: ${REPORTER_NAMES.map((n) => `${n} (${REPORTER_DESCRIPTIONS[n]})`).join('; ')}`,
        choices: REPORTER_NAMES,
        default: 'stylish' as ReporterName,
      })
      .option('output', {
        alias: 'o',
        describe: 'Write the report to this file (directories are created) instead of stdout; stdout then stays empty',
        type: 'string',
        normalize: true,
        requiresArg: true,
      })
      .option('fail-on', {
        describe:
          'Exit with code 1 when a finding has this severity or a more severe one ' +
          '(error > warning > note); none: exit 0 whatever is found',
        choices: FAIL_ON,
        defaultDescription: 'config failOn, else "error"',
      })
      .option('config', {
        alias: 'c',
        describe:
          'Configuration file (mcp-migrate.config.json, or a package.json with an "mcp-migrate" key). Default: the ' +
          'nearest one from the analyzed root up to the git root',
        type: 'string',
        normalize: true,
        requiresArg: true,
      })
      .option('baseline', {
        describe: 'Report only findings this baseline file does not record (matched by rule, file and symbol, not line)',
        type: 'string',
        normalize: true,
        requiresArg: true,
      })
      .option('write-baseline', {
        describe: 'Record the current findings in this baseline file, then report as if it were given to --baseline',
        type: 'string',
        normalize: true,
        requiresArg: true,
      })
      .option('report-unused-suppressions', {
        describe:
          'How mcp-migrate-ignore-next-line comments that suppress nothing are reported: error fails the run, ' +
          'warning reports them, off ignores them',
        choices: UNUSED_SUPPRESSIONS,
        defaultDescription: 'config reportUnusedSuppressions, else "warning"',
      })
      .option('color', {
        describe:
          'Colour the stylish report; --no-color disables it. Default: on when stdout is a terminal, ' +
          'NO_COLOR is unset and there is no --output',
        type: 'boolean',
        defaultDescription: 'auto',
      })
      .example('$0 analyze', 'Analyze the current directory; exit 1 if an error-severity finding is found')
      .example('$0 analyze src --fail-on warning', 'Analyze src/; fail on warnings and errors')
      .example('$0 analyze --format json > report.json', 'Machine-readable report on stdout')
      .example('$0 analyze --format sarif --output results.sarif', 'SARIF file for GitHub code scanning (upload-sarif)')
      .example('$0 analyze --fail-on none --no-color', 'Report only, never fail; plain text')
      .example('$0 analyze --write-baseline .mcp-migrate-baseline.json', 'Record today\'s findings; later runs with --baseline report only new ones')
      .example('$0 analyze --baseline .mcp-migrate-baseline.json --format github', 'CI gate: annotate and fail on new findings only')
      .epilog(
        'Exit codes: 0 no finding at or above --fail-on; 1 at least one; 2 usage error (missing path, no ' +
          'source files, bad option, invalid configuration or baseline, unwritable --output) or internal error. ' +
          'With --report-unused-suppressions error, an unused suppression also exits 1.\n' +
          'Suppress one finding with a comment on the line before it: ' +
          '// mcp-migrate-ignore-next-line <rule-id>[, <rule-id>] -- <reason>\n' +
          'Files that do not parse are skipped with a warning on stderr; the rest is still analyzed.',
      ) as unknown as Argv<AnalyzeArgs>,
  handler: async (argv) => {
    process.exitCode = await runAnalyze(argv);
  },
};

/**
 * Runs one `analyze` invocation and returns its exit code. Writes the report to stdout or `--output`,
 * warnings, progress and errors to stderr. Never throws: internal errors are printed and give exit 2.
 */
export async function runAnalyze(args: AnalyzeArgs): Promise<ExitCode> {
  const cwd = process.cwd();
  const progress = createProgress(process.stderr);
  let result: AnalysisResult;
  let failedOnSuppressions = false;
  let failOn: FailOn;
  let notShown = false;
  let metas: readonly RuleMeta[] = [];
  try {
    // Loaded on demand: the analyzer pulls in the TypeScript compiler, which `proxy` never needs.
    const [{ analyze }, { resolveRoot }, gate, { ruleMetas, rules }] = await Promise.all([
      import('../../analyzer/index.js'),
      import('../../analyzer/project.js'),
      import('../../gate/index.js'),
      import('../../rules/index.js'),
    ]);
    const { applyGate, configuredMetas, createBaseline, enabledRules, fileFilter, loadConfig, serializeBaseline } = gate;
    metas = ruleMetas;
    const { root } = resolveRoot(args.paths, cwd);
    const loaded = loadConfig(root, { cwd, ...(args.config === undefined ? {} : { explicit: args.config }) });
    const { config } = loaded;
    failOn = args['fail-on'] ?? config.failOn ?? 'error';
    metas = configuredMetas(ruleMetas, config);
    let baseline: Baseline | undefined;
    if (args.baseline !== undefined && args['write-baseline'] === undefined) baseline = await readBaseline(args.baseline, cwd);
    const filter = fileFilter(loaded);
    const analyzed = await analyze({
      paths: args.paths,
      cwd,
      rules: enabledRules(rules, config),
      onProgress: progress.update,
      ...(filter ? { fileFilter: filter } : {}),
    });
    progress.clear();
    // Judged before baseline and suppressions, which renumber the verdict's deciding findings.
    notShown = failOn !== 'none' && notShownStateless(analyzed.verdict);
    const gateOptions = {
      config,
      knownRules: ruleMetas.map((m) => m.id),
      reportUnusedSuppressions: args['report-unused-suppressions'] ?? config.reportUnusedSuppressions ?? 'warning',
    };
    if (args['write-baseline'] !== undefined) {
      const { unbaselined } = applyGate(analyzed, gateOptions);
      baseline = createBaseline(unbaselined);
      const file = resolve(cwd, args['write-baseline']);
      try {
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, serializeBaseline(baseline), 'utf8');
      } catch (err) {
        process.stderr.write(`mcp-migrate: cannot write the baseline to ${args['write-baseline']}: ${(err as Error).message}\n`);
        return ExitCode.Usage;
      }
      const n = baseline.findings.length;
      process.stderr.write(`mcp-migrate: wrote ${n} ${n === 1 ? 'finding' : 'findings'} to the baseline ${args['write-baseline']}\n`);
    }
    const outcome = applyGate(analyzed, { ...gateOptions, ...(baseline ? { baseline } : {}) });
    result = outcome.result;
    failedOnSuppressions = outcome.failed;
  } catch (err) {
    progress.clear();
    return reportError(err);
  }

  for (const w of result.warnings) {
    const where = w.file ? `${w.file}${w.line === undefined ? '' : `:${w.line}`}: ` : '';
    process.stderr.write(`mcp-migrate: warning: ${where}${w.message}\n`);
  }
  const gate = result.gate;
  if (gate?.baselined) {
    process.stderr.write(`mcp-migrate: ${gate.baselined} ${gate.baselined === 1 ? 'finding' : 'findings'} recorded in the baseline ${gate.baselined === 1 ? 'is' : 'are'} not reported\n`);
  }
  if (failedOnSuppressions) {
    process.stderr.write('mcp-migrate: error: unused suppression comments fail the run (--report-unused-suppressions error)\n');
  }

  try {
    const color = args.color ?? (args.output === undefined && autoColor());
    const text = reporters[args.format](result, { color, rules: metas, version: VERSION });
    const out = text.endsWith('\n') ? text : `${text}\n`;
    if (args.output !== undefined) {
      const file = resolve(process.cwd(), args.output);
      try {
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, out, 'utf8');
      } catch (err) {
        process.stderr.write(`mcp-migrate: cannot write the report to ${args.output}: ${(err as Error).message}\n`);
        return ExitCode.Usage;
      }
    } else {
      await writeStdout(out);
    }
  } catch (err) {
    return reportError(err);
  }

  return reachesThreshold(result, failOn) || failedOnSuppressions || notShown ? ExitCode.Findings : ExitCode.Ok;
}

async function readBaseline(file: string, cwd: string): Promise<Baseline> {
  let text: string;
  try {
    text = await readFile(resolve(cwd, file), 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UsageError(missing ? `baseline not found: ${file} (create it with --write-baseline ${file})` : `cannot read the baseline ${file}: ${(err as Error).message}`);
  }
  const { parseBaseline } = await import('../../gate/index.js');
  return parseBaseline(text, file);
}

/** True when some finding is at least as severe as `failOn` (never for `none`). */
export function reachesThreshold(result: Pick<AnalysisResult, 'findings'>, failOn: FailOn): boolean {
  if (failOn === 'none') return false;
  const limit = SEVERITIES.indexOf(failOn);
  return result.findings.some((f) => SEVERITIES.indexOf(f.severity as Severity) <= limit);
}

/** Colour by default only for a terminal, and never when `NO_COLOR` is set to a non-empty value (no-color.org). */
function autoColor(): boolean {
  return process.stdout.isTTY === true && !process.env.NO_COLOR;
}

function reportError(err: unknown): ExitCode {
  if (err instanceof UsageError || (err instanceof Error && err.name === 'UsageError')) {
    process.stderr.write(`mcp-migrate: ${err.message}\nRun with --help for usage.\n`);
  } else {
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`mcp-migrate: internal error: ${detail}\n`);
  }
  return ExitCode.Usage;
}

/** Resolves once `text` is handed to the OS, so a large report is not cut off by the exit. */
function writeStdout(text: string): Promise<void> {
  return new Promise((done, fail) => {
    process.stdout.write(text, (err) => (err ? fail(err) : done()));
  });
}

/**
 * A one-line `analyzing N/M files` indicator on a TTY stderr, for trees of at least
 * {@link PROGRESS_MIN_FILES} files, repainted at most every {@link PROGRESS_INTERVAL_MS} ms.
 */
function createProgress(stream: NodeJS.WriteStream): {
  update: (done: number, total: number) => void;
  clear: () => void;
} {
  let last = 0;
  let shown = false;
  return {
    update: (done, total) => {
      if (!stream.isTTY || total < PROGRESS_MIN_FILES) return;
      const now = Date.now();
      if (done < total && now - last < PROGRESS_INTERVAL_MS) return;
      last = now;
      shown = true;
      stream.write(`\r\x1b[Kmcp-migrate: analyzing ${done}/${total} files`);
    },
    clear: () => {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}
