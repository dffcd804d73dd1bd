/**
 * `mcp-migrate apply`: runs the analyzer once, then the transforms of `transforms/index.ts` in order
 * on the analyzed files, and returns every change without writing anything ({@link writeApply} writes).
 *
 * Analysis before manipulation: the findings are computed on the original text, before any
 * transform runs; each transform then gets the findings that name it, located in the current text
 * (positions are mapped through the edits of the transforms before it), a fresh read-only ts-morph
 * view of that text, and returns splices. Nothing is re-printed, so code outside the edited ranges
 * keeps its formatting and comments.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Node, Project, ts, type SourceFile } from 'ts-morph';
import { analyze } from '../analyzer/engine.js';
import { loadProject } from '../analyzer/project.js';
import { UsageError, type AnalysisResult, type Finding } from '../analyzer/types.js';
import { transforms as allTransforms } from '../../transforms/index.js';
import type { LocatedFinding, Transform, TransformContext } from '../../transforms/define-transform.js';
import { applyEdits, indentOf, mapPosition, type Edit } from './edits.js';
import { RUNTIME_MODULE, todoAnchor, todoComment, hasTodo } from './todo.js';

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
  line: number;
  transform: string;
  kind: 'changed' | 'todo' | 'unchanged';
  ruleId: string;
  symbol: string;
  message: string;
}

export interface ApplyResult {
  root: string;
  analysis: AnalysisResult;
  changes: FileChange[];
  notes: ApplyNote[];
  /** package.json with the runtime's dependencies added (only when code changed). */
  packageJson?: FileChange;
}

interface Tracked {
  id: number;
  finding: Finding;
  file: string;
  start: number;
  end: number;
  handled: boolean;
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

/** Plans the migration; writes nothing. @throws UsageError for unknown transform ids or paths. */
export async function planApply(options: ApplyOptions): Promise<ApplyResult> {
  const selected = selectTransforms(options.transforms);
  const analysis = await analyze({ paths: options.paths, cwd: options.cwd });
  const root = analysis.root;
  const loaded = loadProject(options.paths, options.cwd);
  const texts = new Map<string, string>();
  for (const sf of loaded.files) texts.set(path.resolve(sf.fileName), sf.text);
  const original = new Map(texts);
  const applied = new Map<string, Edit[][]>();

  let nextId = 0;
  const tracked: Tracked[] = [];
  for (const f of analysis.findings) {
    const file = path.resolve(root, f.file);
    const text = texts.get(file);
    if (text === undefined) continue;
    tracked.push({ id: nextId++, finding: f, file, start: offsetOf(text, f.line, f.column), end: offsetOf(text, f.endLine, f.endColumn), handled: false });
  }
  const notes: ApplyNote[] = [];

  for (const transform of selected) {
    const project = new Project({ useInMemoryFileSystem: true, compilerOptions: COMPILER_OPTIONS, skipLoadingLibFiles: true });
    for (const [file, text] of texts) project.createSourceFile(file, text, { overwrite: true });
    const located = new Map<LocatedFinding, Tracked>();
    const locate = (t: Tracked): LocatedFinding | undefined => {
      let start: number | undefined = t.start;
      let end: number | undefined = t.end;
      for (const batch of applied.get(t.file) ?? []) {
        start = start === undefined ? undefined : mapPosition(start, batch);
        end = end === undefined ? undefined : mapPosition(end, batch);
      }
      if (start === undefined || end === undefined) return undefined;
      const sf = project.getSourceFile(t.file);
      const node = sf && nodeAt(sf, start, end);
      if (!sf || !node) return undefined;
      const lf: LocatedFinding = { finding: t.finding, sourceFile: sf, node };
      located.set(lf, t);
      return lf;
    };
    const all = tracked.map(locate).filter((x): x is LocatedFinding => !!x);
    const mine = all.filter((lf) => {
      const t = located.get(lf)!;
      if (t.handled) return false;
      return transform.id === 'todo-markers' || lf.finding.fix === `transform:${transform.id}`;
    });
    const edits = new Map<string, Edit[]>();
    const imports = new Map<string, Set<string>>();
    const add = (sf: SourceFile, e: Edit): void => {
      const list = edits.get(sf.getFilePath()) ?? [];
      list.push(e);
      edits.set(sf.getFilePath(), list);
    };
    const note = (lf: LocatedFinding, kind: ApplyNote['kind'], message: string): void => {
      located.get(lf)!.handled = true;
      notes.push({ file: lf.finding.file, line: lf.finding.line, transform: transform.id, kind, ruleId: lf.finding.ruleId, symbol: lf.finding.symbol, message });
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
      skip: (lf) => {
        located.get(lf)!.handled = true;
      },
      isHandled: (lf) => located.get(lf)?.handled ?? false,
      isTypeScript: (sf) => /\.[cm]?tsx?$/.test(sf.getFilePath()),
    };
    transform.run(ctx);
    for (const [file, names] of imports) {
      const sf = project.getSourceFileOrThrow(file);
      const e = importEdit(sf, [...names]);
      if (e) add(sf, e);
    }
    for (const [file, list] of edits) {
      const key = path.resolve(file);
      const dedup = dedupe(list);
      texts.set(key, applyEdits(texts.get(key)!, dedup));
      const batches = applied.get(key) ?? [];
      batches.push(dedup);
      applied.set(key, batches);
    }
  }

  const changes: FileChange[] = [];
  for (const [file, after] of texts) {
    const before = original.get(file)!;
    if (after !== before) changes.push({ file: relPath(root, file), absolute: file, before, after });
  }
  changes.sort((a, b) => a.file.localeCompare(b.file));
  notes.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  const usesRuntime = changes.some((c) => c.after.includes(RUNTIME_MODULE));
  return { root, analysis, changes, notes, packageJson: usesRuntime ? packageJsonChange(root, options.store) : undefined };
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

function offsetOf(text: string, line: number, column: number): number {
  let pos = 0;
  for (let l = 1; l < line; l += 1) {
    const nl = text.indexOf('\n', pos);
    if (nl === -1) return text.length;
    pos = nl + 1;
  }
  return pos + column - 1;
}

function relPath(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
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

/** package.json of the analyzed server with `@mcp-migrate/runtime` (and `ioredis` for `--store redis`) added. */
function packageJsonChange(root: string, store: StoreKind): FileChange | undefined {
  let dir = root;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const before = readFileSync(candidate, 'utf8');
      let pkg: { dependencies?: Record<string, string> };
      try {
        pkg = JSON.parse(before) as typeof pkg;
      } catch {
        return undefined;
      }
      const deps = { ...(pkg.dependencies ?? {}) };
      deps[RUNTIME_MODULE] ??= `^${runtimeVersion()}`;
      if (store === 'redis') deps.ioredis ??= ownIoredisRange();
      pkg.dependencies = Object.fromEntries(Object.entries(deps).sort(([a], [b]) => a.localeCompare(b)));
      const indent = /\n([ \t]+)"/.exec(before)?.[1] ?? '  ';
      const after = JSON.stringify(pkg, null, indent) + (before.endsWith('\n') ? '\n' : '');
      return after === before ? undefined : { file: relPath(root, candidate), absolute: candidate, before, after };
    }
    const parent = path.dirname(dir);
    if (parent === dir || existsSync(path.join(dir, '.git'))) return undefined;
    dir = parent;
  }
}

/** The version of the runtime package this CLI runs with (`@mcp-migrate/runtime`, a dependency of the CLI). */
function runtimeVersion(): string {
  const pkg = createRequire(import.meta.url)(`${RUNTIME_MODULE}/package.json`) as { version: string };
  return pkg.version;
}

function ownIoredisRange(): string {
  try {
    const own = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { dependencies?: Record<string, string> };
    return own.dependencies?.ioredis ?? '^5.0.0';
  } catch {
    return '^5.0.0';
  }
}
