/**
 * The analyzer's result model. Rules produce {@link Finding}s; reporters (`src/reporters/`) are pure
 * functions from an {@link AnalysisResult} to a string; the CLI owns stdout, `--output` and the exit code.
 */

/** Fixed categories of in-process session state (see README "Categories"). */
export const CATEGORIES = [
  'session-registry',
  'session-keyed-state',
  'stateful-transport',
  'global-connection-state',
  'server-initiated-request',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** Severities, ordered from most to least severe. Mirrors SARIF `level` (`error` | `warning` | `note`). */
export const SEVERITIES = ['error', 'warning', 'note'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * How a finding is fixed:
 * - `transform:<id>`: `mcp-migrate apply` rewrites it with the named codemod (`transforms/<id>.ts`);
 * - `proxy`: `mcp-migrate proxy` makes it safe by handshake replay, without code changes;
 * - `manual`: hidden per-session state neither can carry across replicas; rewrite by hand or run
 *   the proxy with owner routing.
 */
export type Fix = `transform:${string}` | 'proxy' | 'manual';

/** One place that holds per-session state in process. Lines and columns are 1-based; end is exclusive of nothing (inclusive line, 1-based column just past the last character). */
export interface Finding {
  /** Rule id, equal to the rule's file name under `src/rules/` and its doc under `docs/rules/`. */
  ruleId: string;
  category: Category;
  severity: Severity;
  /** Path relative to the analyzed root, POSIX separators. */
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  /** The declared name of the state (variable, field, class, property) or the called API. */
  symbol: string;
  /** What is wrong, why it breaks behind a round-robin load balancer, and what to do. */
  message: string;
  fix: Fix;
  /**
   * Set when the finding is inside a third-party package bundled into the analyzed file (from the bundle's
   * module boundaries or source map; see `src/analyzer/bundle.ts`): `name`, and `version` when the bundle
   * spells it. Such findings are never rewritten nor marked by `mcp-migrate apply`; their fix is at most
   * `proxy` or `manual`.
   */
  dependency?: { name: string; version?: string };
  /**
   * Set when this finding is the same piece of state as another finding of the same analysis, its cover
   * (a `new` of an event-store class reported at its class, the variable keeping the handle of a timer
   * reported where it starts, the holder of the object whose closure keeps a reported registry): fixing
   * the cover fixes this one. Its `fix` is the cover's; `apply` hands it to no transform and it remains
   * exactly while its cover remains; the verdict counts the cover for both.
   */
  coveredBy?: FindingRef;
}

/** Points at one finding of the same analysis: rule id and start position identify it, `symbol` names it. */
export interface FindingRef {
  ruleId: string;
  /** Relative to the analyzed root, POSIX separators. */
  file: string;
  line: number;
  column: number;
  symbol: string;
}

/** The whole-server verdict, from the most to the least migratable. */
export const VERDICTS = ['stateless', 'rewritable', 'proxy-replay', 'owner-routing'] as const;
export type VerdictKind = (typeof VERDICTS)[number];

export interface Verdict {
  kind: VerdictKind;
  /** One sentence a human reads at the end of the report. */
  summary: string;
  /** The findings (by index into `findings`) that decided the verdict. */
  decidingFindings: number[];
}

/** A non-fatal problem met while analyzing (a file that does not parse, an unreadable tsconfig). */
export interface AnalysisWarning {
  file?: string;
  /** 1-based line the warning is about, when it is about one (an unused suppression comment). */
  line?: number;
  message: string;
}

export interface AnalysisSummary {
  /** Source files analyzed (declaration files and skipped files excluded). */
  files: number;
  findings: number;
  byCategory: Record<Category, number>;
  bySeverity: Record<Severity, number>;
  /** Wall time of the analysis, in milliseconds. */
  durationMs: number;
}

export interface AnalysisResult {
  /** Absolute path of the analyzed root; every `Finding.file` is relative to it. */
  root: string;
  summary: AnalysisSummary;
  verdict: Verdict;
  /** Sorted by file, then line, then column, then rule id. */
  findings: Finding[];
  warnings: AnalysisWarning[];
  /** The analyzed source files, relative to `root` (POSIX), sorted. Set by the engine. */
  files?: string[];
  /** What the CI gate (`src/gate/`) filtered out of `findings`; absent when no gate ran. */
  gate?: GateSummary;
}

/** Counts of findings the CI gate took out of the report (suppressed inline or known from a baseline). */
export interface GateSummary {
  /** Findings silenced by an `mcp-migrate-ignore-next-line` comment. */
  suppressed: number;
  /** Findings already recorded in the baseline (not reported). */
  baselined: number;
  /** Baseline entries that no longer occur: fixed since the baseline was written. */
  staleBaselineEntries: number;
}

/** Declarative metadata of a rule: drives docs, SARIF `rules[]`, `--list-rules` and the verdict. */
export interface RuleMeta {
  /** kebab-case; equals the file name of the rule, its fixture folder and its doc. */
  id: string;
  category: Category;
  /** Default severity. */
  severity: Severity;
  /** One line: what the rule finds. Equals the doc's frontmatter `description`. */
  description: string;
  /** Default fix; a finding may narrow it (for example to `manual` when the value cannot be serialized). */
  fix: Fix;
  /** Link to `docs/rules/<id>.md`. */
  docsUrl: string;
}

export interface AnalyzeOptions {
  /** Files or directories to analyze; relative ones resolve against `cwd`. Default `['.']`. */
  paths: string[];
  /** Working directory; the analyzed root is the common directory of `paths` (a file's directory for a file). */
  cwd: string;
  /** Called as files are analyzed: `done` of `total` source files. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Which source files to analyze (absolute path → keep); the others are still loaded when imported, so
   * types and session ids flow through them, but nothing is reported in them. Default: every file.
   */
  fileFilter?: (absolutePath: string) => boolean;
  /**
   * Texts to analyze instead of the files on disk (absolute path → text), for files under the paths.
   * `mcp-migrate apply` analyzes its rewritten text this way before (or without) writing it.
   */
  texts?: ReadonlyMap<string, string>;
}

/** Thrown for usage errors (missing path, no source files): the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
