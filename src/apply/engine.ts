/**
 * `mcp-migrate apply`: plans the migration of the analyzed files and returns every change without
 * writing anything ({@link writeApply} writes). Analysis always finishes before code changes:
 *
 * 1. The analyzer runs on the original text; the rewriting transforms of `transforms/index.ts` (stage
 *    `rewrite`) run, in order, on its findings (`pass.ts`).
 * 2. The analyzer runs again, on the rewritten text. Each of its findings is offered to the same
 *    transforms, on that text: a finding a transform recognizes as already migrated (`skip`) is
 *    resolved; every other finding that breaks round-robin (any category but the informational
 *    `server-initiated-request`) **remains**.
 * 3. When the code has a runtime registry (rewritten now, or by an earlier run; with `transport-registry` or
 *    `owner-affinity` selected) and some of what remains is state owner affinity
 *    makes correct (per-session timers, closures, session-keyed live values: `owner-affinity.ts`),
 *    `transforms/owner-affinity.ts` gives the registry `{ affinity: 'owner' }` and those findings are
 *    **resolved by owner affinity** (listed apart, with an informational `@mcp-migrate-owner` marker).
 * 4. `todo-markers` marks what still remains and has no marker yet.
 *
 * A covered finding (`coveredBy`, the same state as another finding) is handed to no transform in any
 * step: it is resolved, owned or remaining exactly as its cover is.
 *
 * The result says what was rewritten, what remains (file:line in the migrated text, and why) and
 * whether the server is ready for any number of replicas behind a round-robin load balancer.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ts } from 'ts-morph';
import { analyze } from '../analyzer/engine.js';
import { coverLookup, describeCover } from '../analyzer/cover.js';
import { decidesVerdict } from '../analyzer/verdict.js';
import { UsageError, type AnalysisResult, type Finding } from '../analyzer/types.js';
import { transforms as allTransforms } from '../../transforms/index.js';
import ownerAffinity from '../../transforms/owner-affinity.js';
import type { Transform } from '../../transforms/define-transform.js';
import { packageJsonChange } from './package-json.js';
import { lineOf, offsetOf, runPass, type PassResult } from './pass.js';
import { RUNTIME_MODULE } from './todo.js';

export type StoreKind = 'redis' | 'memory';

export interface ApplyOptions {
  paths: string[];
  cwd: string;
  store: StoreKind;
  /** Transform ids to run (default: all, in registry order). */
  transforms?: string[];
}

export interface FileChange {
  /** Relative to the root, POSIX separators. */
  file: string;
  absolute: string;
  before: string;
  after: string;
}

export interface ApplyNote {
  file: string;
  /** Line in the original text for `changed` notes, in the migrated text for `todo` notes. */
  line: number;
  transform: string;
  kind: 'changed' | 'todo';
  ruleId: string;
  symbol: string;
  message: string;
}

/** A finding of the migrated text that still breaks round-robin. */
export interface RemainingFinding {
  file: string;
  /** 1-based line in the migrated text. */
  line: number;
  ruleId: string;
  symbol: string;
  /** Why it remains: the transform's reason for not rewriting it, or the analyzer's message. */
  why: string;
}

/** A finding of the migrated code left in process that owner affinity makes correct. */
export interface OwnedFinding {
  file: string;
  /** 1-based line in the migrated text. */
  line: number;
  ruleId: string;
  symbol: string;
  /** What stays in the process that opened the session. */
  stays: string;
}

export interface ApplyResult {
  root: string;
  /** The analysis of the original text. */
  analysis: AnalysisResult;
  /** The analysis of the migrated text (before markers; markers do not change findings). */
  after: AnalysisResult;
  changes: FileChange[];
  notes: ApplyNote[];
  /** What still breaks behind a round-robin load balancer; empty means ready for any number of replicas. */
  remaining: RemainingFinding[];
  /**
   * `owner` when the migrated registry serves each session on the replica that opened it (`{ affinity:
   * 'owner' }`), because `owned` is not empty; `replay` otherwise (sessions restored on any replica).
   */
  affinity: 'owner' | 'replay';
  /** Findings resolved by owner affinity: correct only while the session's replica runs (then 404, the client re-initializes). */
  owned: OwnedFinding[];
  /** package.json with `@mcp-migrate/runtime` added (only when rewritten code imports it). */
  packageJson?: FileChange;
}

/** Plans the migration; writes nothing. @throws UsageError for unknown transform ids or paths. */
export async function planApply(options: ApplyOptions): Promise<ApplyResult> {
  const selected = selectTransforms(options.transforms);
  const rewriting = selected.filter((t) => (t.stage ?? 'rewrite') === 'rewrite');
  const markers = selected.filter((t) => t.stage === 'migrated' && t.id !== ownerAffinity.id);
  const analysis = await analyze({ paths: options.paths, cwd: options.cwd });
  const root = analysis.root;
  // The analyzed files' texts, read as the compiler read them (a UTF-8 BOM dropped), so the findings'
  // offsets hold; no second program is built for them.
  const original = new Map<string, string>();
  for (const f of analysis.files ?? []) {
    const absolute = path.resolve(root, f);
    const text = ts.sys.readFile(absolute);
    if (text !== undefined) original.set(absolute, text);
  }

  // 1. Rewrite.
  const first = runPass(root, original, analysis.findings, rewriting);
  const rewritten = first.texts;
  // 2. Analyze the result; what the transforms recognize as migrated is resolved, the rest remains.
  const changedFiles = [...rewritten].filter(([f, t]) => original.get(f) !== t);
  const after = changedFiles.length === 0 ? analysis : await analyze({ paths: options.paths, cwd: options.cwd, texts: new Map(changedFiles) });
  const check = runPass(root, rewritten, after.findings, rewriting);
  // A covered finding goes to no transform: it stands or falls with its cover (itself when the cover is gone).
  const cover = coverLookup(after.findings);
  const through = (f: Finding): Finding => cover(f) ?? f;
  const breaking = after.findings.filter((f) => decidesVerdict(f) && check.outcomes.get(through(f))?.outcome !== 'skipped');
  // 3. Owner affinity for what stays in process per session (with the registry rewrite), 4. markers for what
  // remains and has none yet.
  const unmarked = new Set(breaking.filter((f) => check.outcomes.get(f)?.outcome !== 'todo'));
  // Only where a runtime registry was written and some finding may be owned: the step parses every file once more.
  const candidate = breaking.some((f) => ownerAffinity.fixes.includes(f.ruleId)) && [...rewritten.values()].some((t) => t.includes(RUNTIME_MODULE));
  const owner = candidate && selected.some((t) => t.id === 'transport-registry' || t.id === ownerAffinity.id) ? [ownerAffinity] : [];
  const marking = markers.map((m): Transform => ({ ...m, run: (ctx) => m.run({ ...ctx, findings: ctx.findings.filter((lf) => unmarked.has(lf.finding)) }) }));
  const last = runPass(root, rewritten, breaking, [...owner, ...marking]);
  const final = last.texts;
  const isOwned = (f: Finding): boolean => last.outcomes.get(through(f))?.outcome === 'owner';
  const remainingFindings = breaking.filter((f) => !isOwned(f));

  const changes: FileChange[] = [];
  for (const [file, text] of final) {
    const before = original.get(file)!;
    if (text !== before) changes.push({ file: rel(root, file), absolute: file, before, after: text });
  }
  changes.sort((a, b) => a.file.localeCompare(b.file));
  const lineAfter = (f: Finding): number => finalLine(root, rewritten, final, last, f);
  const notes: ApplyNote[] = [
    ...first.notes.map((n) => ({ ...noteOf(n.finding, n.transform, n.kind, n.message), line: n.kind === 'todo' ? mappedLine(root, original, final, first, last, n.finding) : n.finding.line })),
    ...last.notes.map((n) => ({ ...noteOf(n.finding, n.transform, n.kind, n.message), line: lineAfter(n.finding) })),
  ].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  const remaining = remainingFindings
    .map((f): RemainingFinding => {
      const o = check.outcomes.get(through(f)) ?? last.outcomes.get(through(f));
      const own = o?.outcome === 'todo' && o.message ? o.message : f.message;
      const prefix = `\`${f.symbol}\`: `;
      const bare = own.startsWith(prefix) ? own.slice(prefix.length) : own;
      const why = f.coveredBy ? `the same state as ${describeCover(f.coveredBy)}, which remains: ${bare}` : bare;
      return { file: f.file, line: lineAfter(f), ruleId: f.ruleId, symbol: f.symbol, why };
    })
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  const owned = breaking
    .filter(isOwned)
    .map((f): OwnedFinding => ({ file: f.file, line: lineAfter(f), ruleId: f.ruleId, symbol: f.symbol, stays: last.outcomes.get(through(f))?.message ?? '' }))
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  const affinity = owned.length > 0 ? 'owner' : 'replay';
  return { root, analysis, after, changes, notes, remaining, affinity, owned, packageJson: packageJsonChange(root, changes) };
}

/** Writes the planned changes. */
export async function writeApply(result: ApplyResult): Promise<void> {
  for (const c of [...result.changes, ...(result.packageJson ? [result.packageJson] : [])]) {
    await writeFile(c.absolute, c.after, 'utf8');
  }
}

export function selectTransforms(ids: string[] | undefined): Transform[] {
  if (!ids || ids.length === 0) return [...allTransforms];
  const known = new Set(allTransforms.map((t) => t.id));
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length > 0) throw new UsageError(`unknown transform${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
  return allTransforms.filter((t) => ids.includes(t.id));
}

function noteOf(f: Finding, transform: string, kind: 'changed' | 'todo', message: string): ApplyNote {
  return { file: f.file, line: f.line, transform, kind, ruleId: f.ruleId, symbol: f.symbol, message };
}

/** The line, in the final text, of a finding of the rewritten text (before markers). */
function finalLine(root: string, rewritten: Map<string, string>, final: Map<string, string>, last: PassResult, f: Finding): number {
  const file = path.resolve(root, f.file);
  // One character in, so a marker inserted right before the finding's node counts as before it.
  const pos = offsetOf(rewritten.get(file) ?? '', f.line, f.column) + 1;
  const mapped = last.mapPosition(file, pos);
  return mapped === undefined ? f.line : lineOf(final.get(file) ?? '', mapped - 1);
}

/** The line, in the final text, of a finding of the original text (through both passes). */
function mappedLine(root: string, original: Map<string, string>, final: Map<string, string>, first: PassResult, last: PassResult, f: Finding): number {
  const file = path.resolve(root, f.file);
  const a = first.mapPosition(file, offsetOf(original.get(file) ?? '', f.line, f.column) + 1);
  const b = a === undefined ? undefined : last.mapPosition(file, a);
  return b === undefined ? f.line : lineOf(final.get(file) ?? '', b - 1);
}

function rel(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}
