/**
 * `@mcp-migrate-todo` markers: what `apply` could not rewrite safely, left as a greppable block
 * comment on its own line before the statement (or class member, property) that holds the state —
 * never inside a literal, and never twice for the same rule.
 */
import { Node } from 'ts-morph';

export const TODO_MARKER = '@mcp-migrate-todo';
/** An informational marker: state left in process that owner affinity makes correct (no action needed). */
export const OWNER_MARKER = '@mcp-migrate-owner';
export const RUNTIME_MODULE = '@mcp-migrate/runtime';

/** The comment text for a rule and a reason (a `*` `/` pair in the reason is broken up). */
export function todoComment(ruleId: string, reason: string): string {
  return `/* ${TODO_MARKER} ${ruleId}: ${reason.replace(/\*\//g, '* /')} */`;
}

/** The informational comment for state that owner affinity keeps correct (docs/apply.md "Owner affinity"). */
export function ownerComment(ruleId: string, what: string): string {
  const text = `${what}; every request of its session is served by the replica that opened it (owner affinity), and the session ends with 404 (the client re-initializes) when that replica stops`;
  return `/* ${OWNER_MARKER} ${ruleId}: ${text.replace(/\*\//g, '* /')} */`;
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

/** Whether the anchor already carries an owner-affinity marker for `ruleId`. */
export function hasOwnerMarker(anchor: Node, ruleId: string): boolean {
  return leadingText(anchor).includes(`${OWNER_MARKER} ${ruleId}:`);
}

/** The `[start, end)` of the anchor's `@mcp-migrate-todo` comment for `ruleId`, if it has one. */
export function todoRange(anchor: Node, ruleId: string): [number, number] | undefined {
  const start = anchor.getPos() + leadingText(anchor).indexOf(`/* ${TODO_MARKER} ${ruleId}:`);
  if (start < anchor.getPos()) return undefined;
  const end = anchor.getSourceFile().getFullText().indexOf('*/', start);
  return end === -1 || end > anchor.getStart() ? undefined : [start, end + 2];
}

/** Whether a finding's node (in analyzed text) is covered by a marker for its rule (a todo, or the owner-affinity note). */
export function isMarkedTodo(node: Node, ruleId: string): boolean {
  const anchor = todoAnchor(node);
  return hasTodo(anchor, ruleId) || hasOwnerMarker(anchor, ruleId);
}

function leadingText(anchor: Node): string {
  return anchor.getFullText().slice(0, anchor.getStart() - anchor.getPos());
}
