/**
 * `json`: the machine-readable report, one JSON document. Its shape is {@link JsonReport}; it is
 * versioned by {@link JSON_REPORT_VERSION}, bumped on any incompatible change (field removed, renamed
 * or retyped). Adding a field is compatible.
 */
import type { AnalysisSummary, AnalysisWarning, Finding, Verdict } from '../analyzer/types.js';
import { findingRef } from '../analyzer/cover.js';
import { TOOL_NAME } from '../version.js';
import { compareFindings } from './describe.js';
import type { Reporter } from './types.js';

/** Version of the JSON output format (not of the tool). */
export const JSON_REPORT_VERSION = 1;

/** The document the `json` reporter prints. */
export interface JsonReport {
  /** Output format version, {@link JSON_REPORT_VERSION}. */
  version: typeof JSON_REPORT_VERSION;
  tool: {
    /** Always `mcp-migrate`. */
    name: string;
    /** The tool's semver, from its package.json. */
    version: string;
  };
  /** Absolute path of the analyzed root; every `findings[].file` is relative to it (POSIX separators). */
  root: string;
  /** Counts and the analysis wall time (`durationMs`, milliseconds). */
  summary: AnalysisSummary;
  /** The whole-server verdict; `decidingFindings` index into `findings`. */
  verdict: Verdict;
  /** Sorted by file, line, column, rule id; 1-based lines and columns. */
  findings: Finding[];
  /** Non-fatal problems (for example a file that did not parse and was skipped). */
  warnings: AnalysisWarning[];
}

/** Renders {@link JsonReport}, pretty-printed with two spaces, keys in a fixed order. */
export const json: Reporter = (result, ctx) => {
  // The engine already sorts; sorting here too keeps the output deterministic for any producer, and the
  // verdict's indices are remapped so they still point at the same findings.
  const order = result.findings.map((_, i) => i).sort((a, b) => compareFindings(result.findings[a]!, result.findings[b]!));
  const newIndex = new Map(order.map((oldIdx, newIdx) => [oldIdx, newIdx]));
  const report: JsonReport = {
    version: JSON_REPORT_VERSION,
    tool: { name: TOOL_NAME, version: ctx.version },
    root: result.root,
    summary: {
      files: result.summary.files,
      findings: result.summary.findings,
      byCategory: result.summary.byCategory,
      bySeverity: result.summary.bySeverity,
      durationMs: result.summary.durationMs,
    },
    verdict: {
      kind: result.verdict.kind,
      summary: result.verdict.summary,
      decidingFindings: result.verdict.decidingFindings
        .map((i) => newIndex.get(i))
        .filter((i): i is number => i !== undefined)
        .sort((a, b) => a - b),
    },
    findings: order.map((i) => pickFinding(result.findings[i]!)),
    warnings: result.warnings.map((w) => (w.file === undefined ? { message: w.message } : { file: w.file, message: w.message })),
  };
  return JSON.stringify(report, null, 2);
};

/** Copies exactly the documented fields, in the documented order. */
function pickFinding(f: Finding): Finding {
  return {
    ruleId: f.ruleId,
    category: f.category,
    severity: f.severity,
    file: f.file,
    line: f.line,
    column: f.column,
    endLine: f.endLine,
    endColumn: f.endColumn,
    symbol: f.symbol,
    message: f.message,
    fix: f.fix,
    ...(f.dependency ? { dependency: f.dependency.version ? { name: f.dependency.name, version: f.dependency.version } : { name: f.dependency.name } } : {}),
    ...(f.coveredBy ? { coveredBy: findingRef(f.coveredBy) } : {}),
  };
}
