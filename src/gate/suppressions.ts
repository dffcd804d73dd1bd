/**
 * Inline suppressions, applied to the findings after analysis (the engine's single walk is untouched):
 *
 *     // mcp-migrate-ignore-next-line no-session-keyed-state -- cache of immutable per-session config
 *     const configs = new Map<string, Config>();
 *
 * Also as a block comment (`/* mcp-migrate-ignore-next-line a, b -- why *\/`), with several rule ids
 * separated by commas. The line after the comment (after its last line, for a block comment) is the
 * one whose findings are suppressed. A reason after ` -- ` is required: a directive without one, with no
 * rule id or with an unknown rule id suppresses nothing and is itself reported. A directive (or one of
 * its rule ids) that suppresses nothing is reported as unused.
 *
 * Only files whose text contains the directive keyword are parsed (with TypeScript's parser, so a
 * keyword inside a string is not a directive).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ts } from 'ts-morph';
import type { Finding } from '../analyzer/types.js';
import { suggestion } from './did-you-mean.js';

export const DIRECTIVE = 'mcp-migrate-ignore-next-line';

export interface Directive {
  /** Path relative to the analyzed root, POSIX. */
  file: string;
  /** 1-based line of the comment's start. */
  line: number;
  /** 1-based line whose findings the directive suppresses. */
  target: number;
  rules: string[];
  reason: string;
  /** Why the directive is invalid (then it suppresses nothing); empty when valid. */
  problems: string[];
}

/** A problem with a suppression comment, reported beside the findings. */
export interface SuppressionProblem {
  kind: 'unused' | 'invalid';
  file: string;
  line: number;
  message: string;
}

export interface SuppressionOutcome {
  /** The findings no valid directive suppresses, in their original order. */
  findings: Finding[];
  suppressed: number;
  problems: SuppressionProblem[];
}

const DIRECTIVE_TEXT = new RegExp(`^\\s*${DIRECTIVE}(?=\\s|$)([\\s\\S]*)$`);

/**
 * Parses one comment's text (without `//` or `/* *\/`) into a directive's parts, or undefined when the
 * comment is not a directive.
 */
export function parseDirectiveText(text: string, knownRules: readonly string[]): Omit<Directive, 'file' | 'line' | 'target'> | undefined {
  // A block comment may span lines, each starting with ` * `: a directive is one logical line.
  const joined = text
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s*\*?/, '').trim())
    .filter(Boolean)
    .join(' ');
  const m = DIRECTIVE_TEXT.exec(joined);
  if (!m) return undefined;
  const body = m[1]!.trim();
  const sep = body.search(/(^|\s)--(\s|$)/);
  const ruleText = sep < 0 ? body : body.slice(0, sep);
  const reason = sep < 0 ? '' : body.slice(sep).replace(/^\s*--/, '').trim();
  const rules = ruleText
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const problems: string[] = [];
  if (rules.length === 0) problems.push(`names no rule: write \`${DIRECTIVE} <rule-id> -- <reason>\``);
  for (const r of rules) {
    if (/\s/.test(r)) problems.push(`"${r}" is not a rule id: separate rule ids with commas and the reason with " -- "`);
    else if (!knownRules.includes(r)) problems.push(`unknown rule id "${r}"${suggestion(r, knownRules)}`);
  }
  if (reason === '') problems.push(`needs a reason: \`${DIRECTIVE} ${rules.join(', ') || '<rule-id>'} -- <reason>\``);
  return { rules, reason, problems };
}

/** The directives in one file's text. */
export function findDirectives(file: string, text: string, knownRules: readonly string[]): Directive[] {
  if (!text.includes(DIRECTIVE)) return [];
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, scriptKind(file));
  const ranges = new Map<number, ts.CommentRange>();
  const collect = (list: ts.CommentRange[] | undefined): void => {
    for (const r of list ?? []) ranges.set(r.pos, r);
  };
  const visit = (node: ts.Node): void => {
    collect(ts.getLeadingCommentRanges(text, node.pos));
    collect(ts.getTrailingCommentRanges(text, node.end));
    ts.forEachChild(node, visit);
  };
  visit(sf);
  const out: Directive[] = [];
  for (const r of [...ranges.values()].sort((a, b) => a.pos - b.pos)) {
    const raw = text.slice(r.pos, r.end);
    const inner = r.kind === ts.SyntaxKind.SingleLineCommentTrivia ? raw.slice(2) : raw.slice(2, -2);
    const parsed = parseDirectiveText(inner, knownRules);
    if (!parsed) continue;
    const line = sf.getLineAndCharacterOfPosition(r.pos).line + 1;
    const endLine = sf.getLineAndCharacterOfPosition(r.end).line + 1;
    out.push({ file, line, target: endLine + 1, ...parsed });
  }
  return out;
}

/**
 * Applies the directives of `files` (relative to `root`; the files of the findings are always
 * included) to `findings`.
 * @param knownRules every rule id (directives naming other ids are invalid).
 * @param readText reads a file by absolute path; default `readFileSync(…, 'utf8')`, undefined if unreadable.
 */
export function applySuppressions(
  findings: readonly Finding[],
  options: {
    root: string;
    files?: readonly string[];
    knownRules: readonly string[];
    readText?: (absolutePath: string) => string | undefined;
  },
): SuppressionOutcome {
  const read = options.readText ?? readText;
  const files = [...new Set([...(options.files ?? []), ...findings.map((f) => f.file)])].sort();
  const byTarget = new Map<string, Directive[]>();
  const directives: Directive[] = [];
  for (const file of files) {
    const text = read(path.join(options.root, file));
    if (text === undefined) continue;
    for (const d of findDirectives(file, text, options.knownRules)) {
      directives.push(d);
      if (d.problems.length > 0) continue;
      const key = `${file}\0${d.target}`;
      byTarget.set(key, [...(byTarget.get(key) ?? []), d]);
    }
  }

  const used = new Map<Directive, Set<string>>();
  const kept: Finding[] = [];
  for (const f of findings) {
    const d = byTarget.get(`${f.file}\0${f.line}`)?.find((x) => x.rules.includes(f.ruleId));
    if (!d) {
      kept.push(f);
      continue;
    }
    const set = used.get(d) ?? new Set<string>();
    set.add(f.ruleId);
    used.set(d, set);
  }

  const problems: SuppressionProblem[] = [];
  for (const d of directives) {
    if (d.problems.length > 0) {
      for (const p of d.problems) {
        problems.push({ kind: 'invalid', file: d.file, line: d.line, message: `suppression comment ${p}; it suppresses nothing` });
      }
      continue;
    }
    const unused = d.rules.filter((r) => !used.get(d)?.has(r));
    if (unused.length > 0) {
      problems.push({
        kind: 'unused',
        file: d.file,
        line: d.line,
        message: `unused suppression of ${unused.join(', ')}: no such finding on line ${d.target}; remove it`,
      });
    }
  }
  return { findings: kept, suppressed: findings.length - kept.length, problems };
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function scriptKind(file: string): ts.ScriptKind {
  if (/\.[cm]?tsx$|\.tsx$/.test(file)) return ts.ScriptKind.TSX;
  if (/\.jsx$/.test(file)) return ts.ScriptKind.JSX;
  if (/\.[cm]?js$/.test(file)) return ts.ScriptKind.JS;
  return ts.ScriptKind.TS;
}
