/**
 * `github`: GitHub Actions workflow commands, one annotation per finding
 * (`::error file=…,line=…,col=…,endLine=…,endColumn=…,title=…::message`), so findings show on the pull
 * request's changed lines without code scanning. `error` findings become `::error`, `warning` ones
 * `::warning`, `note` ones `::notice`; analysis warnings become `::warning` annotations. A last plain line
 * sums up. Paths are relative to the analyzed root: analyze the repository root for them to resolve.
 *
 * Escaping follows GitHub's workflow-command rules: in the message, `%`, `\r` and `\n` are
 * percent-encoded; in property values, also `:` and `,`.
 */
import type { Finding, Severity } from '../analyzer/types.js';
import { compareFindings, coverNote, dependencyNote, describeFix, plural, VERDICT_LABELS } from './describe.js';
import type { Reporter } from './types.js';

const COMMAND: Record<Severity, string> = { error: 'error', warning: 'warning', note: 'notice' };

/** Escapes an annotation's message (the text after `::`). */
export function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Escapes a property value (`file=`, `title=`, …). */
export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

function command(name: string, properties: Array<[string, string | number | undefined]>, message: string): string {
  const props = properties
    .filter((p): p is [string, string | number] => p[1] !== undefined)
    .map(([k, v]) => `${k}=${escapeProperty(String(v))}`)
    .join(',');
  return `::${name}${props ? ` ${props}` : ''}::${escapeData(message)}`;
}

export const github: Reporter = (result) => {
  const lines: string[] = [];
  for (const f of [...result.findings].sort(compareFindings)) lines.push(annotation(f));
  for (const w of result.warnings) {
    lines.push(command('warning', [['file', w.file], ['line', w.line], ['title', 'mcp-migrate']], w.message));
  }
  const { summary } = result;
  const counts = summary.findings === 0 ? 'no findings' : plural(summary.findings, 'finding');
  const gate = result.gate;
  const extra = gate ? [gate.suppressed ? `${gate.suppressed} suppressed` : '', gate.baselined ? `${gate.baselined} in the baseline` : ''].filter(Boolean) : [];
  lines.push(
    `mcp-migrate: ${counts} in ${plural(summary.files, 'file')}${extra.length ? ` (${extra.join(', ')})` : ''}; verdict: ${VERDICT_LABELS[result.verdict.kind]}`,
  );
  return lines.join('\n');
};

function annotation(f: Finding): string {
  return command(
    COMMAND[f.severity],
    [
      ['file', f.file],
      ['line', f.line],
      ['col', f.column],
      ['endLine', f.endLine],
      ['endColumn', f.endColumn],
      ['title', `mcp-migrate ${f.ruleId}`],
    ],
    `${f.message}${f.dependency ? `\n${dependencyNote(f.dependency)}` : ''}${f.coveredBy ? `\n${coverNote(f.coveredBy)}` : ''}\nFix: ${describeFix(f.fix)}`,
  );
}
