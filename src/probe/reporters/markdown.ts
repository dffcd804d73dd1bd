/**
 * `markdown`: a summary for a pull-request comment or a job summary: the verdict as the heading, the
 * era and replicas, a table of checks, and each cause with its examples and fix.
 */
import { cell } from '../../reporters/markdown.js';
import { describeEra, describeSpread, plural, tallyChecks, TRANSPORT_LABELS } from './describe.js';
import type { ProbeReporter } from './types.js';

export const probeMarkdown: ProbeReporter = (report) => {
  const { verdict } = report;
  const lines = [`## ${verdict.survives ? '✅' : '❌'} mcp-migrate probe: ${cell(verdict.headline)}`, ''];
  lines.push(`- **Endpoint:** \`${report.url}\``, `- **Era:** ${cell(describeEra(report))}`, `- **Replicas:** ${cell(describeSpread(report.spread))}`, '');
  lines.push('| Transport | Check | Pass | Fail | Skip | Notes |', '|---|---|---:|---:|---:|---|');
  for (const t of tallyChecks(report)) {
    for (const k of t.checks) {
      const notes = [...(k.warn ? [plural(k.warn, 'warning')] : []), ...k.notes].join('; ');
      lines.push(`| ${TRANSPORT_LABELS[t.transport]} (${t.sessions}) | \`${k.id}\` | ${k.pass} | ${k.fail ? `**${k.fail}**` : 0} | ${k.skip} | ${cell(notes)} |`);
    }
  }
  for (const cause of verdict.causes) {
    lines.push('', `### ${cell(cause.title)}${cause.sessions ? ` (${plural(cause.sessions, 'session')})` : ''}`, '', cell(cause.why), '');
    for (const e of cause.evidence) lines.push(`- ${cell(e)}`);
    lines.push('', `**What to do:**`, ...cause.fix.map((f) => `- ${cell(f)}`));
  }
  return lines.join('\n');
};
