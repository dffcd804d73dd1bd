/**
 * The CI gate: what `mcp-migrate analyze` does to the engine's result before reporting it. Analysis and
 * filtering stay apart: the engine runs once (with the rules the configuration leaves on, over the files
 * it includes), then {@link applyGate} sets configured severities, drops findings suppressed inline and
 * findings recorded in a baseline, and recomputes the summary and the verdict over what is left.
 */
import type { AnalysisResult, AnalysisWarning, Finding, RuleMeta, Verdict } from '../analyzer/types.js';
import { CATEGORIES, SEVERITIES, type Category, type Severity } from '../analyzer/types.js';
import { decideVerdict } from '../analyzer/verdict.js';
import type { Rule } from '../rules/create-rule.js';
import { compareFindings } from '../reporters/describe.js';
import { applyBaseline, type Baseline } from './baseline.js';
import type { GateConfig, UnusedSuppressions } from './config.js';
import { applySuppressions, type SuppressionProblem } from './suppressions.js';

export { applyBaseline, createBaseline, parseBaseline, serializeBaseline, BASELINE_VERSION, type Baseline, type BaselineEntry } from './baseline.js';
export { CONFIG_FILE, configSchema, fileFilter, findConfigFile, loadConfig, validate, type GateConfig, type LoadedConfig } from './config.js';
export { applySuppressions, DIRECTIVE, findDirectives, type SuppressionProblem } from './suppressions.js';

/** The rules the configuration leaves on, in registry order. */
export function enabledRules(rules: readonly Rule[], config: GateConfig): Rule[] {
  return rules.filter((r) => config.rules?.[r.meta.id] !== 'off');
}

/** Rule metadata as configured: disabled rules left out, severities overridden (for SARIF `rules[]`). */
export function configuredMetas(metas: readonly RuleMeta[], config: GateConfig): RuleMeta[] {
  return metas.filter((m) => config.rules?.[m.id] !== 'off').map((m) => ({ ...m, severity: severityFor(m.id, m.severity, config) }));
}

function severityFor(ruleId: string, severity: Severity, config: GateConfig): Severity {
  const setting = config.rules?.[ruleId];
  return setting === undefined || setting === 'off' ? severity : setting;
}

export interface GateOptions {
  config: GateConfig;
  /** Every known rule id (suppressions naming others are invalid). */
  knownRules: readonly string[];
  /** Report only findings this baseline does not record. */
  baseline?: Baseline;
  /** How unused suppressions are reported; default `warning`. */
  reportUnusedSuppressions?: UnusedSuppressions;
  readText?: (absolutePath: string) => string | undefined;
}

export interface GateOutcome {
  /** The result to report: gated findings, recomputed summary and verdict, gate problems as warnings. */
  result: AnalysisResult;
  /** Findings after severities and suppressions, before the baseline: what `--write-baseline` records. */
  unbaselined: Finding[];
  /** Problems with suppression comments that are reported (unused ones only when not `off`). */
  problems: SuppressionProblem[];
  /** True when `reportUnusedSuppressions` is `error` and a suppression is unused: the run fails. */
  failed: boolean;
}

export function applyGate(input: AnalysisResult, options: GateOptions): GateOutcome {
  const level = options.reportUnusedSuppressions ?? 'warning';
  const configured = input.findings.map((f) => ({ ...f, severity: severityFor(f.ruleId, f.severity, options.config) }));
  const suppressed = applySuppressions(configured, {
    root: input.root,
    files: input.files,
    knownRules: options.knownRules,
    ...(options.readText ? { readText: options.readText } : {}),
  });
  const problems = suppressed.problems.filter((p) => p.kind === 'invalid' || level !== 'off');
  const base = options.baseline ? applyBaseline(suppressed.findings, options.baseline) : undefined;
  const findings = [...(base?.findings ?? suppressed.findings)].sort(compareFindings);

  const warnings: AnalysisWarning[] = [...input.warnings];
  for (const p of problems) warnings.push({ file: p.file, line: p.line, message: p.message });
  const stale = base?.stale.length ?? 0;
  if (stale > 0) {
    const what = stale === 1 ? '1 baseline entry no longer occurs' : `${stale} baseline entries no longer occur`;
    warnings.push({ message: `${what}; rewrite the baseline (--write-baseline FILE)` });
  }

  const byCategory = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of findings) {
    byCategory[f.category]++;
    bySeverity[f.severity]++;
  }
  const result: AnalysisResult = {
    ...input,
    summary: { ...input.summary, findings: findings.length, byCategory, bySeverity },
    verdict: gatedVerdict(suppressed.findings, findings, input.verdict),
    findings,
    warnings,
    gate: { suppressed: suppressed.suppressed, baselined: base?.baselined ?? 0, staleBaselineEntries: stale },
  };
  return {
    result,
    unbaselined: suppressed.findings,
    problems,
    failed: level === 'error' && problems.some((p) => p.kind === 'unused'),
  };
}

/**
 * The verdict is about the whole server, so it is decided over every finding that is not suppressed,
 * baselined ones included (a baseline hides known findings from the gate; it does not make the server
 * stateless). Its deciding findings are those among the reported ones. With no finding at all it is the
 * engine's (`src/analyzer/verdict.ts`: code that holds no MCP server is not called stateless).
 */
function gatedVerdict(all: readonly Finding[], reported: readonly Finding[], engine: Verdict): Verdict {
  // With no finding left, the engine's verdict stands: it rests on no finding (code that serves no MCP itself is not `stateless`).
  if (all.length === 0 && engine.decidingFindings.length === 0) return engine;
  const sorted = [...all].sort(compareFindings);
  const verdict = decideVerdict(sorted);
  const index = new Map(reported.map((f, i) => [f, i]));
  const deciding = verdict.decidingFindings.map((i) => index.get(sorted[i]!)).filter((i): i is number => i !== undefined);
  return { ...verdict, decidingFindings: deciding };
}
