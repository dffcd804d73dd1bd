/**
 * Transform definition. A transform is `transforms/<id>.ts` + `fixtures/transforms/<id>/<case>/` +
 * its entry in `transforms/index.ts`. It never analyzes on its own: `mcp-migrate apply` runs the
 * analyzer once, before any change, and hands each transform the findings whose `fix` names it
 * (`ctx.findings`). A transform reads a fresh, read-only ts-morph view of the current text and
 * returns text edits through `ctx` (see `src/apply/engine.ts`).
 */
import type { Node, Project, SourceFile } from 'ts-morph';
import type { Finding } from '../src/analyzer/types.js';

/** A finding located in the current text (positions mapped through earlier transforms' edits). */
export interface LocatedFinding {
  finding: Finding;
  sourceFile: SourceFile;
  /** The finding's node in the current text. */
  node: Node;
}

export interface TransformContext {
  /** The analyzed root (absolute). */
  root: string;
  project: Project;
  /** Findings this transform is asked to fix (`fix: transform:<id>`, or every one for a transform that `receives: 'all'`). */
  findings: LocatedFinding[];
  /** Every finding of the analysis, located (for transforms that look at related findings). */
  allFindings: LocatedFinding[];
  /** Replaces `[start, end)` of a file's current text. */
  replace(sf: SourceFile, start: number, end: number, text: string): void;
  insert(sf: SourceFile, pos: number, text: string): void;
  /** Adds a named import from `@mcp-migrate/runtime` (merged, once per name). */
  importRuntime(sf: SourceFile, name: string): void;
  /** The finding was rewritten: say what changed (shown in the summary). */
  changed(f: LocatedFinding, what: string): void;
  /** The finding cannot be rewritten safely: leave an `@mcp-migrate-todo` marker with the reason. */
  todo(f: LocatedFinding, reason: string): void;
  /** A finding this transform looked at and left as it is (already migrated): no marker, no change. */
  skip(f: LocatedFinding): void;
  /** The finding stays in process and is made correct by owner affinity (`what`: what stays, for the summary). */
  owned(f: LocatedFinding, what: string): void;
  /** True once a finding was rewritten, marked or skipped by some transform. */
  isHandled(f: LocatedFinding): boolean;
  /** Whether the file is an ES module in TypeScript (type annotations allowed). */
  isTypeScript(sf: SourceFile): boolean;
}

export interface Transform {
  /** kebab-case; equals the file name and the fixture folder, and appears in findings as `transform:<id>`. */
  id: string;
  title: string;
  /** Rule ids whose findings this transform fixes. */
  fixes: readonly string[];
  /** `all`: gets every finding no earlier transform of the pass handled, not only those whose `fix` names it. */
  receives?: 'all';
  /**
   * `rewrite` (default): runs on the analysis of the original code. `migrated`: runs on the analysis of
   * the rewritten code, on what still breaks round-robin (`owner-affinity`, `todo-markers`).
   */
  stage?: 'rewrite' | 'migrated';
  run(ctx: TransformContext): void;
}

export function defineTransform(t: Transform): Transform {
  return t;
}
