/**
 * One pass of transforms over a set of texts: each transform, in order, gets the findings that name it
 * located in the current text (positions mapped through the edits of the transforms before it), a
 * fresh read-only ts-morph view of that text, and returns splices. Nothing is re-printed, so code
 * outside the edited ranges keeps its formatting and comments.
 *
 * `mcp-migrate apply` runs passes on texts whose findings were computed, by a finished analysis, on
 * exactly those texts (see `engine.ts`).
 */
import path from 'node:path';
import { Node, Project, ts, type SourceFile } from 'ts-morph';
import type { Finding } from '../analyzer/types.js';
import type { LocatedFinding, Transform, TransformContext } from '../../transforms/define-transform.js';
import { applyEdits, indentOf, mapPosition, type Edit } from './edits.js';
import { RUNTIME_MODULE, hasTodo, todoAnchor, todoComment } from './todo.js';

/** What a transform did with a finding. */
/** `owner`: left in process, made correct by the registry's owner affinity (`transforms/owner-affinity.ts`). */
export type Outcome = 'changed' | 'todo' | 'skipped' | 'owner';

export interface PassNote {
  /** The finding, as the analysis of the pass's input reported it. */
  finding: Finding;
  transform: string;
  kind: 'changed' | 'todo';
  message: string;
}

export interface PassResult {
  /** The texts after the pass (absolute path → text), every file of the input. */
  texts: Map<string, string>;
  notes: PassNote[];
  /** Per finding (by identity), what the first transform that handled it did. */
  outcomes: Map<Finding, { outcome: Outcome; transform: string; message?: string }>;
  /** Maps a position of a file's input text to the output (`undefined`: inside a replaced range). */
  mapPosition(file: string, pos: number): number | undefined;
}

interface Tracked {
  finding: Finding;
  file: string;
  start: number;
  end: number;
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  allowJs: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  skipLibCheck: true,
  types: [],
};

/**
 * Runs `transforms` in order on `texts`. `findings` are positioned in `texts` (the analysis of exactly
 * these texts); a transform with `receives: 'all'` (`todo-markers`, `owner-affinity`) gets every finding no earlier transform of the pass handled, the others
 * the findings whose `fix` names them. A covered finding (`coveredBy`) goes to no transform: `engine.ts`
 * gives it its cover's outcome.
 */
export function runPass(root: string, input: ReadonlyMap<string, string>, findings: readonly Finding[], transforms: readonly Transform[]): PassResult {
  const texts = new Map(input);
  const applied = new Map<string, Edit[][]>();
  const tracked: Tracked[] = [];
  for (const f of findings) {
    if (f.dependency) continue; // bundled third-party code: never rewritten, never marked
    if (f.coveredBy) continue; // the same state as its cover, whose rewrite (or marker) is this finding's too
    const file = path.resolve(root, f.file);
    const text = texts.get(file);
    if (text === undefined) continue;
    tracked.push({ finding: f, file, start: offsetOf(text, f.line, f.column), end: offsetOf(text, f.endLine, f.endColumn) });
  }
  const notes: PassNote[] = [];
  const outcomes: PassResult['outcomes'] = new Map();
  const mapThrough = (file: string, pos: number): number | undefined => {
    let p: number | undefined = pos;
    for (const batch of applied.get(file) ?? []) p = p === undefined ? undefined : mapPosition(p, batch);
    return p;
  };

  for (const transform of transforms) {
    const project = new Project({ useInMemoryFileSystem: true, compilerOptions: COMPILER_OPTIONS, skipLoadingLibFiles: true });
    for (const [file, text] of texts) project.createSourceFile(file, text, { overwrite: true });
    const located = new Map<LocatedFinding, Tracked>();
    const all: LocatedFinding[] = [];
    for (const t of tracked) {
      const start = mapThrough(t.file, t.start);
      const end = mapThrough(t.file, t.end);
      const sf = project.getSourceFile(t.file);
      const node = start === undefined || end === undefined || !sf ? undefined : nodeAt(sf, start, end);
      if (!sf || !node) continue;
      const lf: LocatedFinding = { finding: t.finding, sourceFile: sf, node };
      located.set(lf, t);
      all.push(lf);
    }
    const mine = all.filter((lf) => !outcomes.has(lf.finding) && (transform.receives === 'all' || lf.finding.fix === `transform:${transform.id}`));
    const edits = new Map<string, Edit[]>();
    const imports = new Map<string, Set<string>>();
    const add = (sf: SourceFile, e: Edit): void => {
      const list = edits.get(sf.getFilePath()) ?? [];
      list.push(e);
      edits.set(sf.getFilePath(), list);
    };
    const note = (lf: LocatedFinding, outcome: Outcome, message?: string): void => {
      outcomes.set(lf.finding, { outcome, transform: transform.id, message });
      if (outcome === 'changed' || outcome === 'todo') notes.push({ finding: lf.finding, transform: transform.id, kind: outcome, message: message ?? '' });
    };
    const ctx: TransformContext = {
      root,
      project,
      findings: mine,
      allFindings: all,
      replace: (sf, start, end, text) => add(sf, { start, end, text }),
      insert: (sf, pos, text) => add(sf, { start: pos, end: pos, text }),
      importRuntime: (sf, name) => {
        const set = imports.get(sf.getFilePath()) ?? new Set<string>();
        set.add(name);
        imports.set(sf.getFilePath(), set);
      },
      changed: (lf, what) => note(lf, 'changed', what),
      todo: (lf, reason) => {
        const anchor = todoAnchor(lf.node);
        if (!hasTodo(anchor, lf.finding.ruleId)) {
          add(lf.sourceFile, { start: anchor.getStart(), end: anchor.getStart(), text: todoComment(lf.finding.ruleId, reason) + '\n' + indentOf(lf.sourceFile.getFullText(), anchor.getStart()) });
        }
        note(lf, 'todo', reason);
      },
      skip: (lf) => note(lf, 'skipped'),
      owned: (lf, what) => note(lf, 'owner', what),
      isHandled: (lf) => outcomes.has(lf.finding),
      isTypeScript: (sf) => /\.[cm]?tsx?$/.test(sf.getFilePath()),
    };
    transform.run(ctx);
    for (const [file, names] of imports) {
      const e = importEdit(project.getSourceFileOrThrow(file), [...names]);
      if (e) add(project.getSourceFileOrThrow(file), e);
    }
    for (const [file, list] of edits) {
      const key = path.resolve(file);
      const batch = dedupe(list);
      texts.set(key, applyEdits(texts.get(key)!, batch));
      applied.set(key, [...(applied.get(key) ?? []), batch]);
    }
  }
  return { texts, notes, outcomes, mapPosition: (file, pos) => mapThrough(path.resolve(file), pos) };
}

function dedupe(list: Edit[]): Edit[] {
  const seen = new Set<string>();
  return list.filter((e) => {
    const k = `${e.start}:${e.end}:${e.text}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function nodeAt(sf: SourceFile, start: number, end: number): Node | undefined {
  let node: Node | undefined = sf.getDescendantAtPos(start);
  let best = node;
  while (node && node.getStart() === start) {
    best = node;
    if (node.getEnd() >= end) break;
    node = node.getParent();
  }
  return best;
}

/** The offset of a 1-based line and column in `text`. */
export function offsetOf(text: string, line: number, column: number): number {
  let pos = 0;
  for (let l = 1; l < line; l += 1) {
    const nl = text.indexOf('\n', pos);
    if (nl === -1) return text.length;
    pos = nl + 1;
  }
  return pos + column - 1;
}

/** The 1-based line of an offset in `text`. */
export function lineOf(text: string, pos: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < pos; i = text.indexOf('\n', i + 1)) line += 1;
  return line;
}

/** One edit that imports `names` from `@mcp-migrate/runtime` (merging into an existing import). */
function importEdit(sf: SourceFile, names: string[]): Edit | undefined {
  const existing = sf.getImportDeclarations().find((d) => d.getModuleSpecifierValue() === RUNTIME_MODULE);
  if (existing) {
    const have = new Set(existing.getNamedImports().map((n) => n.getName()));
    const missing = names.filter((n) => !have.has(n)).sort();
    if (missing.length === 0) return undefined;
    const last = existing.getNamedImports().at(-1);
    if (!last) return undefined;
    return { start: last.getEnd(), end: last.getEnd(), text: missing.map((n) => `, ${n}`).join('') };
  }
  const imports = sf.getImportDeclarations();
  const sample = imports[0]?.getModuleSpecifier() ?? sf.getFirstDescendantByKind(ts.SyntaxKind.StringLiteral);
  const quote = sample ? (sample.getText().startsWith('"') ? '"' : "'") : "'";
  const semi = imports[0] && !imports[0].getText().trimEnd().endsWith(';') ? '' : ';';
  const line = `import { ${[...names].sort().join(', ')} } from ${quote}${RUNTIME_MODULE}${quote}${semi}\n`;
  // Before the first import: never inside a range a transform replaced (it may drop the last import).
  const firstImport = imports[0];
  if (firstImport) return { start: firstImport.getStart(), end: firstImport.getStart(), text: line };
  // No imports: at the very top (after a shebang), so no leading comment is separated from its statement.
  const text = sf.getFullText();
  const at = text.startsWith('#!') ? text.indexOf('\n') + 1 : 0;
  return { start: at, end: at, text: line };
}
