/**
 * `@mcp-migrate-todo` markers: what `apply` could not rewrite safely, left as a greppable block
 * comment on its own line before the statement (or class member, property) that holds the state —
 * never inside a literal, and never twice for the same rule.
 */
import { Node } from 'ts-morph';

export const TODO_MARKER = '@mcp-migrate-todo';
export const RUNTIME_MODULE = '@mcp-migrate/runtime';

/** The comment text for a rule and a reason (a `*` `/` pair in the reason is broken up). */
export function todoComment(ruleId: string, reason: string): string {
  return `/* ${TODO_MARKER} ${ruleId}: ${reason.replace(/\*\//g, '* /')} */`;
}

/** The node a marker for `node` goes before: its statement, class member or object property. */
export function todoAnchor(node: Node): Node {
  let n: Node | undefined = node;
  while (n) {
    const parent: Node | undefined = n.getParent();
    if (!parent) return n;
    if (Node.isStatement(n) && (Node.isBlock(parent) || Node.isSourceFile(parent) || Node.isCaseClause(parent) || Node.isDefaultClause(parent) || Node.isModuleBlock(parent))) return n;
    if (Node.isPropertyDeclaration(n) || Node.isMethodDeclaration(n) || Node.isConstructorDeclaration(n)) return n;
    if ((Node.isPropertyAssignment(n) || Node.isShorthandPropertyAssignment(n)) && Node.isObjectLiteralExpression(parent)) return n;
    if (Node.isPropertySignature(n)) return n;
    n = parent;
  }
  return node;
}

/** Whether the anchor already carries a marker for `ruleId` in its leading comments. */
export function hasTodo(anchor: Node, ruleId: string): boolean {
  const leading = anchor.getFullText().slice(0, anchor.getStart() - anchor.getPos());
  return leading.includes(`${TODO_MARKER} ${ruleId}:`);
}

/** Whether a finding's node (in analyzed text) is covered by a marker for its rule. */
export function isMarkedTodo(node: Node, ruleId: string): boolean {
  return hasTodo(todoAnchor(node), ruleId);
}
