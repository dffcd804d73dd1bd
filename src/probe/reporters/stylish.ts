/**
 * `stylish`: the terminal report. The endpoint, its era and how responses spread over replicas; a
 * table of checks per transport; then the verdict, last, with each likely cause, examples and what
 * to do.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import type { Cause } from '../types.js';
import { describeEra, describeSpread, plural, tallyChecks, TRANSPORT_LABELS, type CheckTally } from './describe.js';
import type { ProbeReporter } from './types.js';

export const probeStylish: ProbeReporter = (report, ctx) => {
  const c = new Chalk({ level: ctx.color ? 1 : 0 });
  const lines: string[] = [c.bold(`mcp-migrate probe ${report.url}`), `  ${c.dim('era:')}      ${describeEra(report)}`, `  ${c.dim('replicas:')} ${describeSpread(report.spread)}`, ''];
  for (const t of tallyChecks(report)) {
    lines.push(c.underline(`${TRANSPORT_LABELS[t.transport]} (${t.sessions})`));
    const width = Math.max(5, ...t.checks.map((k) => k.id.length));
    lines.push(`  ${c.dim(`${'check'.padEnd(width)}  pass  fail  skip`)}`);
    for (const k of t.checks) lines.push(row(c, k, width));
    const notes = t.checks.flatMap((k) => k.notes.map((n) => `  ${c.dim(`${k.id}:`)} ${n}`));
    lines.push(...notes, '');
  }
  const { verdict } = report;
  if (verdict.survives) {
    lines.push(c.green.bold(`✔ ${verdict.headline}`));
    return lines.join('\n');
  }
  lines.push(c.red.bold(`✖ ${verdict.headline}`));
  verdict.causes.forEach((cause, i) => lines.push('', ...causeLines(c, cause, i + 1)));
  return lines.join('\n');
};

function row(c: ChalkInstance, k: CheckTally, width: number): string {
  const fail = k.fail > 0 ? c.red(String(k.fail).padStart(4)) : String(k.fail).padStart(4);
  const warn = k.warn > 0 ? c.yellow(`  ${plural(k.warn, 'warning')}`) : '';
  const mark = k.fail > 0 ? c.red('✖') : k.pass > 0 ? c.green('✔') : c.dim('-');
  return `${mark} ${k.id.padEnd(width)}  ${String(k.pass).padStart(4)}  ${fail}  ${String(k.skip).padStart(4)}${warn}`;
}

function causeLines(c: ChalkInstance, cause: Cause, n: number): string[] {
  const who = cause.sessions > 0 ? ` (${plural(cause.sessions, 'session')})` : '';
  return [
    `  ${c.bold(`${n}. ${cause.title}`)}${who}  ${c.dim(cause.id)}`,
    `     ${cause.why}`,
    ...cause.evidence.map((e) => `     ${c.dim('e.g.')} ${e}`),
    ...cause.fix.map((f, i) => `     ${c.dim(i === 0 ? 'fix:' : '    ')} ${c.cyan(f)}`),
  ];
}
