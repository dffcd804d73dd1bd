/**
 * Checks a migrated tree: which findings of given categories are neither rewritten nor covered by an
 * `@mcp-migrate-todo` marker for their rule (a covered finding: its cover's marker). `mcp-migrate apply` prints them; the tests assert there
 * are none.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Project } from 'ts-morph';
import { coverLookup } from '../analyzer/cover.js';
import type { AnalysisResult, Category, Finding } from '../analyzer/types.js';
import { isMarkedTodo } from './todo.js';

export function unmarkedFindings(result: AnalysisResult, categories: readonly Category[]): Finding[] {
  const project = new Project({ useInMemoryFileSystem: true, skipLoadingLibFiles: true, compilerOptions: { allowJs: true } });
  const out: Finding[] = [];
  // A covered finding is marked where its cover is (apply marks the cover only).
  const cover = coverLookup(result.findings);
  for (const found of result.findings) {
    if (!categories.includes(found.category) || found.dependency) continue; // bundled third-party code gets no marker
    const f = cover(found) ?? found;
    const file = path.resolve(result.root, f.file);
    const sf = project.getSourceFile(file) ?? project.createSourceFile(file, readFileSync(file, 'utf8'));
    const pos = sf.compilerNode.getPositionOfLineAndCharacter(f.line - 1, f.column - 1);
    const node = sf.getDescendantAtPos(pos) ?? sf;
    if (!isMarkedTodo(node, f.ruleId)) out.push(found);
  }
  return out;
}
