/**
 * Rule definition. A rule is three files with one name: `src/rules/<id>.ts`, `test/rules/<id>.test.ts`
 * (with fixtures under `fixtures/rules/<id>/`) and `docs/rules/<id>.md`.
 *
 * `create(ctx)` returns visitors keyed by `ts.SyntaxKind`; the engine walks every file once and
 * dispatches each node to every rule that asked for its kind (ts-morph navigation docs: one walk,
 * many visitors). `end()` runs after the walk, for rules that decide on whole-program facts.
 */
import type { ts } from 'ts-morph';
import type { Dependency } from '../analyzer/bundle.js';
import type { SessionContainer } from '../analyzer/containers.js';
import type { SessionFlow } from '../analyzer/session-flow.js';
import type { FindingRef, Fix, RuleMeta, Severity } from '../analyzer/types.js';

export const DOCS_BASE_URL = 'https://github.com/mcp-migrate/mcp-migrate/blob/main/docs/rules/';

export interface Report {
  /** The node whose span the finding covers (any analyzed file, not only the one being walked). */
  node: ts.Node;
  /** The declared name of the state or the API called. */
  symbol: string;
  /** What is wrong, why it breaks behind a round-robin load balancer, what to do. */
  message: string;
  /** Narrows the rule's default fix. */
  fix?: Fix;
  severity?: Severity;
  /**
   * The finding this one is the same piece of state as (what an earlier `report` returned): the new
   * finding takes its fix and points at it (`Finding.coveredBy`). A cover that is itself covered is
   * followed to its own cover.
   */
  coveredBy?: FindingRef;
}

export interface RuleContext {
  flow: SessionFlow;
  checker: ts.TypeChecker;
  /** Session-keyed containers of the whole program; available in `end()`. */
  containers(): SessionContainer[];
  /** True for files the analyzer was asked to analyze (findings are only reported there). */
  isAnalyzed(file: ts.SourceFile): boolean;
  /** The third-party package a node's code was bundled from, when it is inside a bundle (see `src/analyzer/bundle.ts`). */
  dependencyAt(node: ts.Node): Dependency | undefined;
  /**
   * Records a finding; returns a reference to it (to the finding already recorded for the same rule and
   * node, when there is one), or `undefined` when the node is outside the analyzed files.
   */
  report(report: Report): FindingRef | undefined;
}

export type Visitors = Partial<Record<ts.SyntaxKind, (node: ts.Node) => void>> & { end?: () => void };

export interface Rule {
  meta: RuleMeta;
  create(ctx: RuleContext): Visitors;
}

export function createRule(rule: { meta: Omit<RuleMeta, 'docsUrl'>; create: Rule['create'] }): Rule {
  return { meta: { ...rule.meta, docsUrl: `${DOCS_BASE_URL}${rule.meta.id}.md` }, create: rule.create };
}
