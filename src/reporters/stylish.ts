/**
 * `stylish`: the default, human-readable terminal report. Findings are grouped by file, one line each
 * (`line:col  severity  message  ruleId`) followed by the finding that covers it (if any) and how to fix it; then a summary and, last, the
 * whole-server verdict, which is the line a reader acts on.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import { describeCover } from '../analyzer/cover.js';
import { CATEGORIES, SEVERITIES, type Finding, type Severity } from '../analyzer/types.js';
import { compareFindings, describeDependency, describeFix, plural, VERDICT_LABELS } from './describe.js';
import type { Reporter } from './types.js';

/**
 * Renders the result for a terminal. Colour comes only from `ctx.color` (chalk level 1, the 16 basic
 * ANSI colours, or level 0: no escape codes at all). No trailing newline.
 */
export const stylish: Reporter = (result, ctx) => {
  const c = new Chalk({ level: ctx.color ? 1 : 0 });
  const findings = [...result.findings].sort(compareFindings);
  const lines: string[] = [];

  const byFile = new Map<string, Finding[]>();
  for (const f of findings) {
    const group = byFile.get(f.file);
    if (group) group.push(f);
    else byFile.set(f.file, [f]);
  }
  // One column width for the whole report, so every file block lines up the same way.
  const posWidth = Math.max(0, ...findings.map((f) => position(f).length));
  const sevWidth = Math.max(0, ...findings.map((f) => f.severity.length));
  const indent = ' '.repeat(2 + posWidth + 2 + sevWidth + 2);

  for (const [file, group] of byFile) {
    lines.push(c.underline(file));
    for (const f of group) {
      lines.push(
        `  ${c.dim(position(f).padEnd(posWidth))}  ${paintSeverity(c, f.severity, f.severity.padEnd(sevWidth))}  ` +
          `${oneLine(f.message)}  ${c.dim(f.ruleId)}`,
      );
      if (f.dependency) lines.push(`${indent}${c.dim('dependency:')} ${c.magenta(describeDependency(f.dependency))} ${c.dim('(bundled third-party code; apply leaves it unchanged)')}`);
      if (f.coveredBy) lines.push(`${indent}${c.dim('covered by:')} ${describeCover(f.coveredBy)} ${c.dim('(the same state, fixed with it)')}`);
      lines.push(`${indent}${c.dim('fix:')} ${c.cyan(describeFix(f.fix))}`);
    }
    lines.push('');
  }

  lines.push(...summaryLines(c, result, findings));
  lines.push('');
  const verdict = result.verdict;
  const label = VERDICT_LABELS[verdict.kind];
  const paint = verdict.kind === 'stateless' ? c.green : verdict.kind === 'owner-routing' ? c.red : c.yellow;
  lines.push(`${c.bold('Verdict:')} ${paint.bold(label)}`);
  if (verdict.summary) lines.push(`  ${verdict.summary}`);
  return lines.join('\n');
};

function summaryLines(c: ChalkInstance, result: Parameters<Reporter>[0], findings: Finding[]): string[] {
  const { summary } = result;
  const analyzed = `${plural(summary.files, 'file')} analyzed`;
  const gate = result.gate;
  const leftOut = [
    gate?.baselined ? `${gate.baselined} known from the baseline` : '',
    gate?.suppressed ? `${gate.suppressed} suppressed inline` : '',
  ].filter(Boolean);
  const stale = gate?.staleBaselineEntries
    ? [c.yellow(`  ${gate.staleBaselineEntries === 1 ? '1 baseline entry no longer occurs' : `${gate.staleBaselineEntries} baseline entries no longer occur`}; rewrite the baseline.`)]
    : [];
  if (findings.length === 0) {
    // A clean gate run is not a clean server: say what the baseline and suppressions hid.
    const head = leftOut.length > 0 ? `✔ No new in-process session state (${[...leftOut, analyzed].join(', ')}).` : `✔ No in-process session state found (${analyzed}).`;
    return [c.green(head), ...stale];
  }
  const files = new Set(findings.map((f) => f.file)).size;
  const bySeverity = SEVERITIES.filter((s) => summary.bySeverity[s] > 0).map((s) =>
    paintSeverity(c, s, plural(summary.bySeverity[s], s)),
  );
  const byCategory = CATEGORIES.filter((k) => summary.byCategory[k] > 0).map((k) => `${k} ${summary.byCategory[k]}`);
  const worst = SEVERITIES.find((s) => summary.bySeverity[s] > 0) ?? 'note';
  const mark = worst === 'error' ? c.red.bold('✖') : worst === 'warning' ? c.yellow.bold('⚠') : c.blue.bold('ℹ');
  return [
    `${mark} ${c.bold(`${plural(summary.findings, 'finding')} in ${plural(files, 'file')}`)} ` +
      `(${bySeverity.join(', ')}); ${analyzed}`,
    `  ${c.dim('by category:')} ${byCategory.join(', ')}`,
    ...(leftOut.length > 0 ? [`  ${c.dim('not reported:')} ${leftOut.join(', ')}`] : []),
    ...stale,
  ];
}

function position(f: Finding): string {
  return `${f.line}:${f.column}`;
}

function paintSeverity(c: ChalkInstance, severity: Severity, text: string): string {
  switch (severity) {
    case 'error':
      return c.red(text);
    case 'warning':
      return c.yellow(text);
    case 'note':
      return c.blue(text);
  }
}

/** Messages are single sentences, but a rule may wrap one; keep one finding on one line. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
