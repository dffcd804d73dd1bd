/**
 * `markdown`: a summary fit for a pull-request comment or `$GITHUB_STEP_SUMMARY`: a headline with the
 * verdict, the counts (and what the gate suppressed or found in the baseline), a table of findings
 * (severity, rule linked to its doc, location, symbol, message, fix) and the warnings. The table stops
 * at {@link MAX_ROWS} rows so the comment stays under GitHub's size limit.
 */
import { SEVERITIES, type Finding, type Severity } from '../analyzer/types.js';
import { compareFindings, coverNote, dependencyNote, describeFix, plural, VERDICT_LABELS } from './describe.js';
import type { Reporter } from './types.js';

/** Findings listed in the table; the rest are counted below it. */
export const MAX_ROWS = 200;

const ICON: Record<Severity, string> = { error: '🔴', warning: '🟠', note: '🔵' };

/**
 * Makes text safe inside a table cell: one line, `|` escaped, and `<`, `>`, `&` outside code spans
 * written as entities so no HTML is interpreted (inside code spans they are shown as they are).
 */
export function cell(text: string): string {
  return text
    .replace(/\s*\r?\n\s*/g, ' ')
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')))
    .join('')
    .replace(/\|/g, '\\|');
}

/** Inline code that survives backticks inside the text. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text.replace(/\|/g, '\\|')}${pad}${fence}`;
}

export const markdown: Reporter = (result, ctx) => {
  const findings = [...result.findings].sort(compareFindings);
  const docs = new Map(ctx.rules.map((r) => [r.id, r.docsUrl]));
  const { summary, gate } = result;
  const lines: string[] = [];

  const worst = SEVERITIES.find((s) => summary.bySeverity[s] > 0);
  const mark = worst === undefined ? '✅' : worst === 'error' ? '❌' : worst === 'warning' ? '⚠️' : 'ℹ️';
  lines.push(`## ${mark} mcp-migrate: ${VERDICT_LABELS[result.verdict.kind]}`, '');

  const severities = SEVERITIES.filter((s) => summary.bySeverity[s] > 0).map((s) => plural(summary.bySeverity[s], s));
  const facts = [
    findings.length === 0
      ? '**No new in-process session state**'
      : `**${plural(findings.length, 'finding')}** (${severities.join(', ')}) in ${plural(new Set(findings.map((f) => f.file)).size, 'file')}`,
    `${plural(summary.files, 'file')} analyzed`,
  ];
  if (gate?.suppressed) facts.push(`${gate.suppressed} suppressed inline`);
  if (gate?.baselined) facts.push(`${gate.baselined} known from the baseline`);
  lines.push(facts.join(' · '), '');
  if (gate?.staleBaselineEntries) {
    const n = gate.staleBaselineEntries;
    lines.push(`> ${n === 1 ? '1 baseline entry no longer occurs' : `${n} baseline entries no longer occur`}; rewrite the baseline.`, '');
  }

  if (findings.length > 0) {
    lines.push('| Severity | Rule | Location | Symbol | Message | Fix |', '|---|---|---|---|---|---|');
    for (const f of findings.slice(0, MAX_ROWS)) lines.push(row(f, docs.get(f.ruleId)));
    if (findings.length > MAX_ROWS) lines.push('', `…and ${findings.length - MAX_ROWS} more; see the full report.`);
    lines.push('');
  }

  lines.push(`**Verdict:** ${cell(result.verdict.summary)}`);

  if (result.warnings.length > 0) {
    lines.push('', `<details><summary>${plural(result.warnings.length, 'warning')}</summary>`, '');
    for (const w of result.warnings) {
      const where = w.file === undefined ? '' : `${code(w.line === undefined ? w.file : `${w.file}:${w.line}`)}: `;
      lines.push(`- ${where}${cell(w.message)}`);
    }
    lines.push('', '</details>');
  }
  return lines.join('\n');
};

function row(f: Finding, docsUrl: string | undefined): string {
  const rule = docsUrl ? `[${code(f.ruleId)}](${docsUrl})` : code(f.ruleId);
  const message = [f.message, f.dependency && dependencyNote(f.dependency), f.coveredBy && coverNote(f.coveredBy)].filter(Boolean).join(' ');
  return `| ${ICON[f.severity]} ${f.severity} | ${rule} | ${code(`${f.file}:${f.line}:${f.column}`)} | ${code(f.symbol)} | ${cell(message)} | ${cell(describeFix(f.fix))} |`;
}
